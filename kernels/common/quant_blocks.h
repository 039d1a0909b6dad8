// GGUF quantisation block layouts and the per-block math every backend shares.
//
// Every quantised type is described the same way: a block is cut into 32-value
// chunks, and each chunk unpacks to
//   q[32]  small signed integers (the stored codes, offset removed),
//   s[2]   a float scale for each 16-value half,
//   m[2]   a float offset for each half,
// so that value[i] = s[i / 16] * q[i] - m[i / 16].
// That one form drives dequantisation (bit-exact with gguf.quants: the same
// float32 products in the same order; compile with -ffp-contract=off) and the
// integer dot products (sum q*x in int32, scaled once per half).
#pragma once
#include <cstdint>
#include <type_traits>

#include "float_bits.h"

namespace hi {

// Numbers are ggml's type ids, as stored in GGUF tensor infos.
enum class QType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30,
};

constexpr int QK = 32;     // values per legacy block and per chunk
constexpr int QK_K = 256;  // values per K-quant super-block

struct block_q4_0 { uint16_t d; uint8_t qs[QK / 2]; };
struct block_q4_1 { uint16_t d, m; uint8_t qs[QK / 2]; };
struct block_q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; };
struct block_q5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; };
struct block_q8_0 { uint16_t d; int8_t qs[QK]; };
struct block_q2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; };
struct block_q3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct block_q4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; };
struct block_q5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct block_q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };

static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
static_assert(sizeof(block_q4_1) == 20, "q4_1 layout");
static_assert(sizeof(block_q5_0) == 22, "q5_0 layout");
static_assert(sizeof(block_q5_1) == 24, "q5_1 layout");
static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
static_assert(sizeof(block_q2_K) == 84, "q2_K layout");
static_assert(sizeof(block_q3_K) == 110, "q3_K layout");
static_assert(sizeof(block_q4_K) == 144, "q4_K layout");
static_assert(sizeof(block_q5_K) == 176, "q5_K layout");
static_assert(sizeof(block_q6_K) == 210, "q6_K layout");

// unpack_chunk takes a block, or a view of one with the same member names
// whose arrays are pointers (planar_blocks.h: Planar<T>, a block of a row whose
// fields are stored apart): IfBlock<B, T> picks T's overload for both.
template <typename T>
struct Planar;
template <typename B>
struct BlockOf { using type = B; };
template <typename T>
struct BlockOf<Planar<T>> { using type = T; };
template <typename B, typename T>
using IfBlock = typename std::enable_if<std::is_same<typename BlockOf<B>::type, T>::value>::type;

// One 32-value chunk in the common form described at the top of this file.
struct Chunk {
  int8_t q[QK];  // (32,) codes
  float s[2];    // (2,) scale per 16-value half
  float m[2];    // (2,) offset per 16-value half
};

// ---- legacy 32-value blocks: one chunk per block -------------------------

template <class B>
HI_HD IfBlock<B, block_q4_0> unpack_chunk(const B& b, int, Chunk& c) {
  for (int j = 0; j < QK / 2; ++j) {
    c.q[j] = int8_t((b.qs[j] & 0x0f) - 8);
    c.q[j + 16] = int8_t((b.qs[j] >> 4) - 8);
  }
  c.s[0] = c.s[1] = half_to_float(b.d);
  c.m[0] = c.m[1] = 0.0f;
}

// The offset of Q4_1/Q5_1, which gguf.quants adds (d*q + m): subtracting -m
// rounds identically, and a NaN m keeps its sign so NaN bits match too.
HI_HD float added_offset(uint16_t m16) {
  const float m = half_to_float(m16);
  return m != m ? m : -m;
}

template <class B>
HI_HD IfBlock<B, block_q4_1> unpack_chunk(const B& b, int, Chunk& c) {
  for (int j = 0; j < QK / 2; ++j) {
    c.q[j] = int8_t(b.qs[j] & 0x0f);
    c.q[j + 16] = int8_t(b.qs[j] >> 4);
  }
  c.s[0] = c.s[1] = half_to_float(b.d);
  c.m[0] = c.m[1] = added_offset(b.m);
}

HI_HD uint32_t load_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

HI_HD void unpack5(const uint8_t* qs, const uint8_t* qh4, int offset, Chunk& c) {
  const uint32_t qh = load_u32(qh4);
  for (int j = 0; j < QK / 2; ++j) {
    c.q[j] = int8_t(((qs[j] & 0x0f) | ((qh >> j) & 1u) << 4) - offset);
    c.q[j + 16] = int8_t(((qs[j] >> 4) | ((qh >> (j + 16)) & 1u) << 4) - offset);
  }
}

template <class B>
HI_HD IfBlock<B, block_q5_0> unpack_chunk(const B& b, int, Chunk& c) {
  unpack5(b.qs, b.qh, 16, c);
  c.s[0] = c.s[1] = half_to_float(b.d);
  c.m[0] = c.m[1] = 0.0f;
}

template <class B>
HI_HD IfBlock<B, block_q5_1> unpack_chunk(const B& b, int, Chunk& c) {
  unpack5(b.qs, b.qh, 0, c);
  c.s[0] = c.s[1] = half_to_float(b.d);
  c.m[0] = c.m[1] = added_offset(b.m);
}

template <class B>
HI_HD IfBlock<B, block_q8_0> unpack_chunk(const B& b, int, Chunk& c) {
  // One copy, not a byte loop: over a planar row's codes the SYCL CPU device's
  // vectorizer made the loop 32 masked byte loads per work-item (1.75x slower).
  __builtin_memcpy(c.q, b.qs, QK);
  c.s[0] = c.s[1] = half_to_float(b.d);
  c.m[0] = c.m[1] = 0.0f;
}

// ---- K-quant super-blocks: eight chunks per block --------------------------

template <class B>
HI_HD IfBlock<B, block_q2_K> unpack_chunk(const B& b, int chunk, Chunk& c) {
  // Chunk k holds 2-bit field (k % 4) of bytes qs[32*(k/4) .. +32].
  const uint8_t* qs = b.qs + 32 * (chunk / 4);
  const int shift = 2 * (chunk % 4);
  for (int l = 0; l < QK; ++l) c.q[l] = int8_t((qs[l] >> shift) & 3);
  const float d = half_to_float(b.d), dmin = half_to_float(b.dmin);
  for (int h = 0; h < 2; ++h) {
    const uint8_t sc = b.scales[2 * chunk + h];
    c.s[h] = d * float(sc & 0x0f);
    c.m[h] = dmin * float(sc >> 4);
  }
}

// 6-bit scale j (0..15) of a Q3_K block, offset removed.
HI_HD int q3_K_scale(const uint8_t* sc, int j) {
  const int lo = j < 8 ? (sc[j] & 0x0f) : (sc[j - 8] >> 4);
  const int hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | hi << 4) - 32;
}

template <class B>
HI_HD IfBlock<B, block_q3_K> unpack_chunk(const B& b, int chunk, Chunk& c) {
  const uint8_t* qs = b.qs + 32 * (chunk / 4);
  const int shift = 2 * (chunk % 4);
  for (int l = 0; l < QK; ++l) {
    const int low = (qs[l] >> shift) & 3;
    const int high_bit_set = (b.hmask[l] >> chunk) & 1;  // set bit: no -4 offset
    c.q[l] = int8_t(low - (high_bit_set ? 0 : 4));
  }
  const float d = half_to_float(b.d);
  for (int h = 0; h < 2; ++h) {
    c.s[h] = d * float(q3_K_scale(b.scales, 2 * chunk + h));
    c.m[h] = 0.0f;
  }
}

// 6-bit scale and min j (0..7) of a Q4_K/Q5_K block.
HI_HD void k4_scale_min(const uint8_t* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 2) & 0x30);
    mn = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
  }
}

HI_HD void set_k4_scales(uint16_t d16, uint16_t dmin16, const uint8_t* scales, int chunk, Chunk& c) {
  int sc, mn;
  k4_scale_min(scales, chunk, sc, mn);
  c.s[0] = c.s[1] = half_to_float(d16) * float(sc);
  c.m[0] = c.m[1] = half_to_float(dmin16) * float(mn);
}

template <class B>
HI_HD IfBlock<B, block_q4_K> unpack_chunk(const B& b, int chunk, Chunk& c) {
  // Chunk k: nibble (k % 2) of bytes qs[32*(k/2) .. +32].
  const uint8_t* qs = b.qs + 32 * (chunk / 2);
  const int shift = 4 * (chunk % 2);
  for (int l = 0; l < QK; ++l) c.q[l] = int8_t((qs[l] >> shift) & 0x0f);
  set_k4_scales(b.d, b.dmin, b.scales, chunk, c);
}

template <class B>
HI_HD IfBlock<B, block_q5_K> unpack_chunk(const B& b, int chunk, Chunk& c) {
  const uint8_t* qs = b.qs + 32 * (chunk / 2);
  const int shift = 4 * (chunk % 2);
  for (int l = 0; l < QK; ++l)
    c.q[l] = int8_t(((qs[l] >> shift) & 0x0f) | ((b.qh[l] >> chunk) & 1) << 4);
  set_k4_scales(b.d, b.dmin, b.scales, chunk, c);
}

template <class B>
HI_HD IfBlock<B, block_q6_K> unpack_chunk(const B& b, int chunk, Chunk& c) {
  // Value i = 128*h + 32*k + l (h = half, k = 0..3, l = 0..31): low nibble from
  // ql[64*h + 32*(k%2) + l] (shift 4*(k/2)), high 2 bits from qh[32*h + l] (shift 2*k).
  const int h = chunk / 4, k = chunk % 4;
  const uint8_t* ql = b.ql + 64 * h + 32 * (k % 2);
  const uint8_t* qh = b.qh + 32 * h;
  for (int l = 0; l < QK; ++l) {
    const int lo = (ql[l] >> (4 * (k / 2))) & 0x0f;
    const int hi = (qh[l] >> (2 * k)) & 3;
    c.q[l] = int8_t((lo | hi << 4) - 32);
  }
  const float d = half_to_float(b.d);
  for (int s = 0; s < 2; ++s) {
    c.s[s] = d * float(b.scales[2 * chunk + s]);
    c.m[s] = 0.0f;
  }
}

// ---- K-quant scales as integers -------------------------------------------
// value = d * sc[h] * q - dmin * mn[h] for 16-value half h of a super-block.
// Integer scales let dot products sum sc * (q . x) in int32 over a whole
// super-block and touch floats once per 256 values.
struct KScales {
  int16_t sc[QK_K / 16];  // (16,) scale code per half
  int16_t mn[QK_K / 16];  // (16,) offset code per half (zero for symmetric types)
  float d, dmin;
};

HI_HD void kquant_scales(const block_q2_K& b, KScales& k) {
  for (int h = 0; h < QK_K / 16; ++h) {
    k.sc[h] = int16_t(b.scales[h] & 0x0f);
    k.mn[h] = int16_t(b.scales[h] >> 4);
  }
  k.d = half_to_float(b.d);
  k.dmin = half_to_float(b.dmin);
}

HI_HD void kquant_scales(const block_q3_K& b, KScales& k) {
  for (int h = 0; h < QK_K / 16; ++h) {
    k.sc[h] = int16_t(q3_K_scale(b.scales, h));
    k.mn[h] = 0;
  }
  k.d = half_to_float(b.d);
  k.dmin = 0.0f;
}

HI_HD void k4_kquant_scales(uint16_t d, uint16_t dmin, const uint8_t* scales, KScales& k) {
  for (int j = 0; j < QK_K / QK; ++j) {
    int sc, mn;
    k4_scale_min(scales, j, sc, mn);
    k.sc[2 * j] = k.sc[2 * j + 1] = int16_t(sc);
    k.mn[2 * j] = k.mn[2 * j + 1] = int16_t(mn);
  }
  k.d = half_to_float(d);
  k.dmin = half_to_float(dmin);
}
HI_HD void kquant_scales(const block_q4_K& b, KScales& k) { k4_kquant_scales(b.d, b.dmin, b.scales, k); }
HI_HD void kquant_scales(const block_q5_K& b, KScales& k) { k4_kquant_scales(b.d, b.dmin, b.scales, k); }

HI_HD void kquant_scales(const block_q6_K& b, KScales& k) {
  for (int h = 0; h < QK_K / 16; ++h) {
    k.sc[h] = b.scales[h];
    k.mn[h] = 0;
  }
  k.d = half_to_float(b.d);
  k.dmin = 0.0f;
}

// value = s*q - m for one chunk; the float ops gguf.quants does, in its order.
HI_HD void chunk_to_float(const Chunk& c, float* out /* (32,) */) {
  for (int i = 0; i < QK; ++i) out[i] = c.s[i / 16] * float(c.q[i]) - c.m[i / 16];
}

template <typename Block>
struct BlockTraits;
#define HI_BLOCK_TRAITS(BLOCK, VALUES)                   \
  template <>                                            \
  struct BlockTraits<BLOCK> {                            \
    static constexpr int values = VALUES;                \
    static constexpr int chunks = VALUES / QK;           \
    static constexpr int bytes = int(sizeof(BLOCK));     \
  };
HI_BLOCK_TRAITS(block_q4_0, QK)
HI_BLOCK_TRAITS(block_q4_1, QK)
HI_BLOCK_TRAITS(block_q5_0, QK)
HI_BLOCK_TRAITS(block_q5_1, QK)
HI_BLOCK_TRAITS(block_q8_0, QK)
HI_BLOCK_TRAITS(block_q2_K, QK_K)
HI_BLOCK_TRAITS(block_q3_K, QK_K)
HI_BLOCK_TRAITS(block_q4_K, QK_K)
HI_BLOCK_TRAITS(block_q5_K, QK_K)
HI_BLOCK_TRAITS(block_q6_K, QK_K)
#undef HI_BLOCK_TRAITS

}  // namespace hi
