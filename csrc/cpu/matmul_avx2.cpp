// AVX2/FMA/F16C kernels; this file alone is compiled with -mavx2 -mfma -mf16c
// and only runs when cpu_features() reports all three.
//
// Quantised weights: each 32-value chunk is unpacked once into 32 int8 codes
// in a register, then multiplied with up to kCols activation rows by
// maddubs/madd (int8 x int8 -> int32 per 16-value half) and scaled in float.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "matmul_kernels.h"

namespace hi {

namespace {

constexpr int kCols = 4;  // activation rows per pass over a weight row

struct Unpacked {
  __m256i q;   // (32,) int8 codes
  float s[2];  // (2,) scale per half
  float m[2];  // (2,) offset per half
};

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

inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
// Bits [shift, shift+width) of every byte of p[0..32).
inline __m256i field(const uint8_t* p, int shift, int mask) {
  return _mm256_and_si256(_mm256_srli_epi16(load32(p), shift), _mm256_set1_epi8(char(mask)));
}

inline void same_scale(Unpacked& u, float s, float m) {
  u.s[0] = u.s[1] = s;
  u.m[0] = u.m[1] = m;
}

inline void unpack(const block_q4_0& b, int, Unpacked& u) {
  u.q = _mm256_sub_epi8(nibbles(b.qs), _mm256_set1_epi8(8));
  same_scale(u, _cvtsh_ss(b.d), 0.0f);
}
inline void unpack(const block_q4_1& b, int, Unpacked& u) {
  u.q = nibbles(b.qs);
  same_scale(u, _cvtsh_ss(b.d), -_cvtsh_ss(b.m));
}
inline void unpack(const block_q5_0& b, int, Unpacked& u) {
  u.q = _mm256_sub_epi8(_mm256_or_si256(nibbles(b.qs), bits_to_0x10(load_u32(b.qh))), _mm256_set1_epi8(16));
  same_scale(u, _cvtsh_ss(b.d), 0.0f);
}
inline void unpack(const block_q5_1& b, int, Unpacked& u) {
  u.q = _mm256_or_si256(nibbles(b.qs), bits_to_0x10(load_u32(b.qh)));
  same_scale(u, _cvtsh_ss(b.d), -_cvtsh_ss(b.m));
}
inline void unpack(const block_q8_0& b, int, Unpacked& u) {
  u.q = load32(reinterpret_cast<const uint8_t*>(b.qs));
  same_scale(u, _cvtsh_ss(b.d), 0.0f);
}
inline void unpack(const block_q2_K& b, int k, Unpacked& u) {
  u.q = field(b.qs + 32 * (k / 4), 2 * (k % 4), 3);
  const float d = _cvtsh_ss(b.d), dmin = _cvtsh_ss(b.dmin);
  for (int h = 0; h < 2; ++h) {
    u.s[h] = d * float(b.scales[2 * k + h] & 0x0f);
    u.m[h] = dmin * float(b.scales[2 * k + h] >> 4);
  }
}
inline void unpack(const block_q3_K& b, int k, Unpacked& u) {
  // code = low2 - 4 + 4 * hmask bit
  const __m256i low = field(b.qs + 32 * (k / 4), 2 * (k % 4), 3);
  const __m256i high = _mm256_slli_epi16(field(b.hmask, k, 1), 2);
  u.q = _mm256_sub_epi8(_mm256_add_epi8(low, high), _mm256_set1_epi8(4));
  const float d = _cvtsh_ss(b.d);
  for (int h = 0; h < 2; ++h) {
    u.s[h] = d * float(q3_K_scale(b.scales, 2 * k + h));
    u.m[h] = 0.0f;
  }
}
inline void k4_scales(uint16_t d, uint16_t dmin, const uint8_t* scales, int k, Unpacked& u) {
  int sc, mn;
  k4_scale_min(scales, k, sc, mn);
  same_scale(u, _cvtsh_ss(d) * float(sc), _cvtsh_ss(dmin) * float(mn));
}
inline void unpack(const block_q4_K& b, int k, Unpacked& u) {
  u.q = field(b.qs + 32 * (k / 2), 4 * (k % 2), 0x0f);
  k4_scales(b.d, b.dmin, b.scales, k, u);
}
inline void unpack(const block_q5_K& b, int k, Unpacked& u) {
  const __m256i high = _mm256_slli_epi16(field(b.qh, k, 1), 4);
  u.q = _mm256_or_si256(field(b.qs + 32 * (k / 2), 4 * (k % 2), 0x0f), high);
  k4_scales(b.d, b.dmin, b.scales, k, u);
}
inline void unpack(const block_q6_K& b, int k, Unpacked& u) {
  const int h = k / 4, j = k % 4;
  const __m256i low = field(b.ql + 64 * h + 32 * (j % 2), 4 * (j / 2), 0x0f);
  const __m256i high = _mm256_slli_epi16(field(b.qh + 32 * h, 2 * j, 3), 4);
  u.q = _mm256_sub_epi8(_mm256_or_si256(low, high), _mm256_set1_epi8(32));
  const float d = _cvtsh_ss(b.d);
  for (int s = 0; s < 2; ++s) {
    u.s[s] = d * float(b.scales[2 * k + s]);
    u.m[s] = 0.0f;
  }
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <typename Block>
constexpr bool has_offsets() {
  return std::is_same<Block, block_q4_1>::value || std::is_same<Block, block_q5_1>::value ||
         std::is_same<Block, block_q2_K>::value || std::is_same<Block, block_q4_K>::value ||
         std::is_same<Block, block_q5_K>::value;
}

// y[i0 .. i0+NC, r] for one weight row.
template <typename Block, int NC>
void quant_row(const MatmulArgs& a, const Block* wr, int64_t r, int64_t i0) {
  using T = BlockTraits<Block>;
  const int64_t n_blocks = a.k / T::values, n_chunks = a.k / QK;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[NC];      // (NC,) per-row float accumulators
  float offsets[NC];   // (NC,) sum of d_x * m * sum(x codes)
  for (int c = 0; c < NC; ++c) {
    acc[c] = _mm256_setzero_ps();
    offsets[c] = 0.0f;
  }
  Unpacked u;
  for (int64_t b = 0; b < n_blocks; ++b) {
    for (int ch = 0; ch < T::chunks; ++ch) {
      unpack(wr[b], ch, u);
      const __m256i abs_q = _mm256_sign_epi8(u.q, u.q);
      const __m256 scale = _mm256_setr_ps(u.s[0], u.s[0], u.s[0], u.s[0], u.s[1], u.s[1], u.s[1], u.s[1]);
      const int64_t col = b * T::chunks + ch;
      for (int c = 0; c < NC; ++c) {
        const ActBlock& x = a.act[(i0 + c) * n_chunks + col];
        const __m256i signed_x = _mm256_sign_epi8(load32(reinterpret_cast<const uint8_t*>(x.qs)), u.q);
        const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(abs_q, signed_x), ones);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(scale, _mm256_set1_ps(x.d)), acc[c]);
        if (has_offsets<Block>()) offsets[c] += x.d * (u.m[0] * float(x.sum[0]) + u.m[1] * float(x.sum[1]));
      }
    }
  }
  for (int c = 0; c < NC; ++c) a.y[(i0 + c) * a.rows + r] = hsum(acc[c]) - offsets[c];
}

// 8 weights -> floats
inline __m256 load8(F32Tag, const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
inline __m256 load8(F16Tag, const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load8(BF16Tag, const uint8_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
inline float load1(F32Tag, const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline float load1(F16Tag, const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}
inline float load1(BF16Tag, const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return bf16_to_float(h);
}
template <typename Tag> constexpr int elem_bytes() { return std::is_same<Tag, F32Tag>::value ? 4 : 2; }

template <typename Tag, int NC>
void float_row(Tag tag, const MatmulArgs& a, const uint8_t* wr, int64_t r, int64_t i0) {
  constexpr int eb = elem_bytes<Tag>();
  __m256 acc[NC];  // (NC,) accumulators
  for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= a.k; j += 8) {
    const __m256 w = load8(tag, wr + j * eb);
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_fmadd_ps(w, _mm256_loadu_ps(a.x + (i0 + c) * a.k + j), acc[c]);
  }
  for (int c = 0; c < NC; ++c) {
    float tail = 0.0f;
    for (int64_t t = j; t < a.k; ++t) tail += load1(tag, wr + t * eb) * a.x[(i0 + c) * a.k + t];
    a.y[(i0 + c) * a.rows + r] = hsum(acc[c]) + tail;
  }
}

// Runs the NC-column body for full groups of kCols, then the remainder.
template <typename Body>
void for_column_groups(int64_t n, Body&& body) {
  int64_t i = 0;
  for (; i + kCols <= n; i += kCols) body(i, std::integral_constant<int, kCols>{});
  switch (n - i) {
    case 1: body(i, std::integral_constant<int, 1>{}); break;
    case 2: body(i, std::integral_constant<int, 2>{}); break;
    case 3: body(i, std::integral_constant<int, 3>{}); break;
    default: break;
  }
}

template <typename Tag>
void float_rows(Tag tag, const MatmulArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* wr = a.w + size_t(r) * a.row_bytes;
    for_column_groups(a.n, [&](int64_t i0, auto nc) { float_row<Tag, decltype(nc)::value>(tag, a, wr, r, i0); });
  }
}
void rows_any(F32Tag t, const MatmulArgs& a, int64_t r0, int64_t r1) { float_rows(t, a, r0, r1); }
void rows_any(F16Tag t, const MatmulArgs& a, int64_t r0, int64_t r1) { float_rows(t, a, r0, r1); }
void rows_any(BF16Tag t, const MatmulArgs& a, int64_t r0, int64_t r1) { float_rows(t, a, r0, r1); }

template <typename Block>
void rows_any(Block, const MatmulArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const Block* wr = reinterpret_cast<const Block*>(a.w + size_t(r) * a.row_bytes);
    for_column_groups(a.n, [&](int64_t i0, auto nc) { quant_row<Block, decltype(nc)::value>(a, wr, r, i0); });
  }
}

}  // namespace

void matmul_rows_avx2(const MatmulArgs& a, int64_t r0, int64_t r1) {
  visit_qtype(a.type, [&](auto tag) { rows_any(tag, a, r0, r1); });
}

}  // namespace hi
