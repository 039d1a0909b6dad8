// AVX2 unpacking of GGUF weight blocks into what the integer kernels consume:
// 32 codes per chunk in a register, a float scale per 32-value block, and a
// K-quant super-block's integer sub-block scales as vectors. Include only from
// files compiled with -mavx2 -mfma -mf16c (see CMakeLists.txt).
//
// Codes are unsigned wherever the format allows, because maddubs multiplies
// unsigned by signed bytes directly; only Q4_0, Q5_0 and Q8_0 keep signed codes
// (and pay two sign ops per product). Q3_K and Q6_K store code + 2^bias_shift:
// the kernels subtract 2^bias_shift * (scale . activation sums) per super-block
// in int32, which gives the same integer sums as signed codes would.
#pragma once
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "../../kernels/common/quant_blocks.h"

namespace hi {
namespace avx2 {

inline __m256i load32(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

inline __m256i nibbles(const uint8_t* qs16) {  // 16 bytes -> 32 codes: low nibbles, then high
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs16));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Bits 0..31 of `bits` -> bytes of 0x10 (bit set) or 0.
inline __m256i bits_to_0x10(uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(bits)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Bits [shift, shift + width) of each of the 32 bytes at p (mask = 2^width - 1).
inline __m256i field(const uint8_t* p, int shift, int mask) {
  return _mm256_and_si256(_mm256_srli_epi16(load32(p), shift), _mm256_set1_epi8(char(mask)));
}

// ---- which codes are signed, and the bias of the unsigned K-quant codes ----

template <typename Block>
constexpr bool signed_codes() {
  return std::is_same<Block, block_q4_0>::value || std::is_same<Block, block_q5_0>::value ||
         std::is_same<Block, block_q8_0>::value;
}

template <typename Block>
constexpr int bias_shift() {  // stored code = signed code + 2^bias_shift; -1 = no bias
  return std::is_same<Block, block_q3_K>::value ? 2 : std::is_same<Block, block_q6_K>::value ? 5 : -1;
}

template <typename Block>
constexpr bool has_offsets() {
  return std::is_same<Block, block_q4_1>::value || std::is_same<Block, block_q5_1>::value ||
         std::is_same<Block, block_q2_K>::value || std::is_same<Block, block_q4_K>::value ||
         std::is_same<Block, block_q5_K>::value;
}

// ---- the 32 int8 codes of chunk k (the SIMD twin of unpack_chunk) ----------

inline __m256i codes(const block_q4_0& b, int) { return _mm256_sub_epi8(nibbles(b.qs), _mm256_set1_epi8(8)); }
inline __m256i codes(const block_q4_1& b, int) { return nibbles(b.qs); }
inline __m256i codes(const block_q5_0& b, int) {
  return _mm256_sub_epi8(_mm256_or_si256(nibbles(b.qs), bits_to_0x10(load_u32(b.qh))), _mm256_set1_epi8(16));
}
inline __m256i codes(const block_q5_1& b, int) { return _mm256_or_si256(nibbles(b.qs), bits_to_0x10(load_u32(b.qh))); }
inline __m256i codes(const block_q8_0& b, int) { return load32(b.qs); }
inline __m256i codes(const block_q2_K& b, int k) { return field(b.qs + 32 * (k / 4), 2 * (k % 4), 3); }
inline __m256i codes(const block_q3_K& b, int k) {  // low2 + 4 * hmask bit, bias 4
  const __m256i low = field(b.qs + 32 * (k / 4), 2 * (k % 4), 3);
  return _mm256_add_epi8(low, _mm256_slli_epi16(field(b.hmask, k, 1), 2));
}
inline __m256i codes(const block_q4_K& b, int k) { return field(b.qs + 32 * (k / 2), 4 * (k % 2), 0x0f); }
inline __m256i codes(const block_q5_K& b, int k) {
  const __m256i high = _mm256_slli_epi16(field(b.qh, k, 1), 4);
  return _mm256_or_si256(field(b.qs + 32 * (k / 2), 4 * (k % 2), 0x0f), high);
}
inline __m256i codes(const block_q6_K& b, int k) {  // low4 | high2 << 4, bias 32
  const int h = k / 4, j = k % 4;
  const __m256i low = field(b.ql + 64 * h + 32 * (j % 2), 4 * (j / 2), 0x0f);
  return _mm256_or_si256(low, _mm256_slli_epi16(field(b.qh + 32 * h, 2 * j, 3), 4));
}

// A weight chunk in maddubs form: unsigned magnitudes, and for signed types
// the signs, which move onto the activation codes.
template <typename Block>
struct WeightChunk {
  __m256i u;  // (32,) uint8 |code| (signed types) or code
  __m256i q;  // (32,) int8 code; signed types only
  explicit WeightChunk(__m256i c) : u(signed_codes<Block>() ? _mm256_sign_epi8(c, c) : c), q(c) {}
  // code . x as 16 int16 pair sums (lanes 0-7: values 0-15, lanes 8-15: values 16-31).
  __m256i pair_sums(const int8_t* x) const {
    if constexpr (signed_codes<Block>()) return _mm256_maddubs_epi16(u, _mm256_sign_epi8(load32(x), q));
    else return _mm256_maddubs_epi16(u, load32(x));
  }
};

// ---- scales ----------------------------------------------------------------

// Scale and offset of a 32-value block: value = s * q - m.
struct BlockScale {
  float s, m;
};
inline BlockScale block_scale(const block_q4_0& b) { return {_cvtsh_ss(b.d), 0.0f}; }
inline BlockScale block_scale(const block_q4_1& b) { return {_cvtsh_ss(b.d), -_cvtsh_ss(b.m)}; }
inline BlockScale block_scale(const block_q5_0& b) { return {_cvtsh_ss(b.d), 0.0f}; }
inline BlockScale block_scale(const block_q5_1& b) { return {_cvtsh_ss(b.d), -_cvtsh_ss(b.m)}; }
inline BlockScale block_scale(const block_q8_0& b) { return {_cvtsh_ss(b.d), 0.0f}; }

// A super-block's sub-block scales: value = d * sc * q - dmin * mn per 16 values.
struct KScalesV {
  __m256i sc;        // (16,) int16 scale per 16 values, in value order
  __m256i mn;        // (16,) int16 offset code per 16 values; zero for symmetric types
  __m256i by_chunk;  // (16,) sc regrouped: lane k = sc[2k], lane 8+k = sc[2k+1] (see chunk_scale)
  float d, dmin;
};

inline KScalesV make_kscales(__m256i sc, __m256i mn, float d, float dmin) {
  // Even halves to the low 128 bits, odd halves to the high: one in-lane byte
  // shuffle, then qwords 0 2 1 3.
  const __m256i evens_odds = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,  //
                                              0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  const __m256i grouped = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(sc, evens_odds), 0xD8);
  return {sc, mn, grouped, d, dmin};
}

// int16 scales for chunk k: sc[2k] on lanes 0-7 (values 0-15), sc[2k+1] on 8-15.
inline __m256i chunk_scale(const KScalesV& ks, int k) {
  return _mm256_shuffle_epi8(ks.by_chunk, _mm256_set1_epi16(short(0x0100 + 0x0202 * k)));
}

// Q4_K / Q5_K: 8 pairs of 6-bit (scale, min) in 12 bytes, one pair per 32 values.
inline KScalesV k4_kscales(uint16_t d, uint16_t dmin, const uint8_t* s12) {
  uint32_t u[3];
  std::memcpy(u, s12, sizeof u);
  constexpr uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, low2 = 0x03030303;
  // The same bit moves as k4_scale_min, four sub-blocks per 32-bit word.
  const uint32_t sc03 = u[0] & low6, mn03 = u[1] & low6;
  const uint32_t sc47 = (u[2] & low4) | (((u[0] >> 6) & low2) << 4);
  const uint32_t mn47 = ((u[2] >> 4) & low4) | (((u[1] >> 6) & low2) << 4);
  const __m128i v = _mm_setr_epi32(int(sc03), int(sc47), int(mn03), int(mn47));  // 8 scales, 8 mins
  // Each per-32 value covers two 16-value halves: duplicate every byte.
  return make_kscales(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v, v)), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(v, v)),
                      _cvtsh_ss(d), _cvtsh_ss(dmin));
}

inline KScalesV kscales(const block_q2_K& b) {
  const __m256i bytes = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  return make_kscales(_mm256_and_si256(bytes, _mm256_set1_epi16(0x0f)), _mm256_srli_epi16(bytes, 4), _cvtsh_ss(b.d),
                      _cvtsh_ss(b.dmin));
}
inline KScalesV kscales(const block_q3_K& b) {  // rare enough for the shared scalar decode
  KScales k;
  kquant_scales(b, k);
  return make_kscales(load32(k.sc), _mm256_setzero_si256(), k.d, 0.0f);
}
inline KScalesV kscales(const block_q4_K& b) { return k4_kscales(b.d, b.dmin, b.scales); }
inline KScalesV kscales(const block_q5_K& b) { return k4_kscales(b.d, b.dmin, b.scales); }
inline KScalesV kscales(const block_q6_K& b) {
  const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  return make_kscales(sc, _mm256_setzero_si256(), _cvtsh_ss(b.d), 0.0f);
}

// ---- activation rows in groups ----------------------------------------------

constexpr int kCols = 4;  // activation rows per pass over weights (accumulators stay in registers)

// Runs the NC-column body for full groups of kCols, then the remainder.
template <typename Body>
inline void for_column_groups(int64_t n, Body&& body) {
  int64_t i = 0;
  for (; i + kCols <= n; i += kCols) body(i, std::integral_constant<int, kCols>{});
  switch (n - i) {
    case 1: body(i, std::integral_constant<int, 1>{}); break;
    case 2: body(i, std::integral_constant<int, 2>{}); break;
    case 3: body(i, std::integral_constant<int, 3>{}); break;
    default: break;
  }
}

}  // namespace avx2
}  // namespace hi
