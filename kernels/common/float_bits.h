// Half and bfloat16 <-> float conversions by bit manipulation.
//
// Why software: dequantisation must equal numpy (gguf.quants) bit for bit,
// NaN payloads included, and numpy's half->float keeps a signalling NaN
// signalling where F16C would quieten it. These are used on every backend;
// hot CPU paths may use F16C where only values (not NaN bits) matter.
#pragma once
#include <cstdint>
#include <cstring>

#ifndef HI_HD
#if defined(__CUDACC__)
#define HI_HD __host__ __device__ __forceinline__
#else
#define HI_HD inline
#endif
#endif

namespace hi {

HI_HD float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

HI_HD uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Same mapping as numpy's npy_halfbits_to_floatbits.
HI_HD float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = h & 0x7c00u;
  uint32_t mant = h & 0x03ffu;
  if (exp == 0x7c00u) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp != 0) return bits_to_float(sign | (((exp >> 10) + 112u) << 23) | (mant << 13));
  if (mant == 0) return bits_to_float(sign);  // signed zero
  // Subnormal half: normalise the mantissa.
  int e = -1;
  do {
    ++e;
    mant <<= 1;
  } while ((mant & 0x0400u) == 0);
  return bits_to_float(sign | (uint32_t(112 - e) << 23) | ((mant & 0x03ffu) << 13));
}

// Round to nearest even, like numpy's astype(float16).
HI_HD uint16_t float_to_half(float f) {
  const uint32_t x = float_to_bits(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or NaN
    if (absx == 0x7f800000u) return sign | 0x7c00u;
    uint16_t m = uint16_t((absx & 0x007fffffu) >> 13);
    return sign | 0x7c00u | (m ? m : 1u);  // keep it a NaN
  }
  if (absx >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  if (absx < 0x38800000u) {                        // result is subnormal or zero
    if (absx < 0x33000000u) return sign;           // below half the smallest subnormal
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x007fffffu) | 0x00800000u;
    const uint32_t shift = 126u - e;               // 14..24
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return sign | uint16_t(q);
  }
  uint32_t r = absx - 0x38000000u;  // rebias exponent 127 -> 15
  const uint32_t rem = r & 0x1fffu;
  r >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return sign | uint16_t(r);
}

HI_HD float bf16_to_float(uint16_t b) { return bits_to_float(uint32_t(b) << 16); }

// Same as ggml_compute_fp32_to_bf16: NaN forced quiet, round to nearest even.
HI_HD uint16_t float_to_bf16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 64u);
  return uint16_t((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

}  // namespace hi
