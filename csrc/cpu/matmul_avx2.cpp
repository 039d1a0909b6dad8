// AVX2/FMA/F16C kernels; this file alone is compiled with -mavx2 -mfma -mf16c
// and only runs when cpu_features() reports all three.
//
// Quantised weights: each 32-value chunk is unpacked once into 32 int8 codes
// in a register, then multiplied with up to kCols activation rows by
// maddubs/madd (int8 x int8 -> int16 pair sums -> int32). 32-value block
// types scale each block's sums in float; K-quants weight the int16 pair sums
// by their integer sub-block scales and go to float once per super-block.
#include <immintrin.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "avx2_blocks.h"
#include "matmul_kernels.h"

namespace hi {

namespace {

using namespace avx2;

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Where a kernel gets a weight row's codes and scales from. Decode (a few
// activation rows) unpacks each block as it goes; prefill unpacks the row once
// into a buffer that every group of activation rows then reads.
template <typename Block>
struct DirectSource {
  const Block* row;
  __m256i codes_of(int64_t b, int k) const { return codes(row[b], k); }
  BlockScale scale_of(int64_t b) const { return block_scale(row[b]); }
  KScalesV kscales_of(int64_t b) const { return kscales(row[b]); }
};

struct UnpackedRow {
  std::vector<__m256i> q;      // (k/32,) codes per chunk
  std::vector<BlockScale> bs;  // (k/32,) 32-value blocks: scale and offset
  std::vector<KScalesV> ks;    // (k/256,) K-quants: sub-block scales
};

template <typename Block>
void unpack_row(const Block* row, int64_t k, UnpackedRow& u) {
  using T = BlockTraits<Block>;
  const int64_t n_blocks = k / T::values;
  const DirectSource<Block> src{row};
  u.q.resize(size_t(k / QK));
  if constexpr (T::values == QK_K) u.ks.resize(size_t(n_blocks));
  else u.bs.resize(size_t(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) {
    if constexpr (T::values == QK_K) u.ks[size_t(b)] = src.kscales_of(b);
    else u.bs[size_t(b)] = src.scale_of(b);
    for (int k8 = 0; k8 < T::chunks; ++k8) u.q[size_t(b * T::chunks + k8)] = src.codes_of(b, k8);
  }
}

struct BufferSource {
  const UnpackedRow& u;
  int64_t chunks;  // per block: 1 or 8
  __m256i codes_of(int64_t b, int k) const { return u.q[size_t(b * chunks + k)]; }
  BlockScale scale_of(int64_t b) const { return u.bs[size_t(b)]; }
  const KScalesV& kscales_of(int64_t b) const { return u.ks[size_t(b)]; }
};

// y[i0 .. i0+NC, r] for one row of 32-value blocks: a float scale per block.
template <typename Block, int NC, typename Src>
void block32_row(const MatmulArgs& a, const Src& src, int64_t r, int64_t i0) {
  const int64_t n_blocks = a.k / QK;
  const ActBlock* act = a.act + i0 * n_blocks;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[NC];     // (NC,) float accumulators
  float offsets[NC];  // (NC,) sum of d_x * m * sum(x codes)
  for (int c = 0; c < NC; ++c) {
    acc[c] = _mm256_setzero_ps();
    offsets[c] = 0.0f;
  }
  for (int64_t b = 0; b < n_blocks; ++b) {
    const WeightChunk<Block> w(src.codes_of(b, 0));
    const BlockScale sc = src.scale_of(b);
    for (int c = 0; c < NC; ++c) {
      const ActBlock& x = act[c * n_blocks + b];
      const __m256i sums = _mm256_madd_epi16(w.pair_sums(x.qs), ones);
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(sc.s * x.d), acc[c]);
      if (has_offsets<Block>()) offsets[c] += sc.m * x.d * float(x.sum[0] + x.sum[1]);
    }
  }
  for (int c = 0; c < NC; ++c) a.y[(i0 + c) * a.rows + r] = hsum(acc[c]) - offsets[c];
}

// y[i0 .. i0+NC, r] for one row of K-quant super-blocks: the integer sub-block
// scales multiply int16 pair sums, and floats are touched once per 256 values.
template <typename Block, int NC, typename Src>
void kquant_row(const MatmulArgs& a, const Src& src, int64_t r, int64_t i0) {
  const int64_t n_blocks = a.k / QK_K;
  const ActBlockK* act = a.act_k + i0 * n_blocks;
  __m256 acc[NC];  // (NC,) float accumulators of d * d_x * sum(sc * q . x)
  __m256 off[NC];  // (NC,) float accumulators of dmin * d_x * (mn . x code sums)
  for (int c = 0; c < NC; ++c) acc[c] = off[c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const KScalesV& ks = src.kscales_of(b);
    __m256i isum[NC];  // (NC,) int32 sums of sc * (q . x) over the super-block
    for (int c = 0; c < NC; ++c) isum[c] = _mm256_setzero_si256();
    for (int k = 0; k < QK_K / QK; ++k) {
      const WeightChunk<Block> w(src.codes_of(b, k));
      const __m256i scale = chunk_scale(ks, k);
      for (int c = 0; c < NC; ++c)
        isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(w.pair_sums(act[c * n_blocks + b].qs + QK * k), scale));
    }
    for (int c = 0; c < NC; ++c) {
      const ActBlockK& x = act[c * n_blocks + b];
      const __m256i x_sums = load32(x.sum);
      if constexpr (bias_shift<Block>() >= 0)  // codes carry +2^shift: remove it exactly, in int32
        isum[c] = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(_mm256_madd_epi16(ks.sc, x_sums), bias_shift<Block>()));
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(ks.d * x.d), acc[c]);
      if constexpr (has_offsets<Block>())
        off[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(ks.mn, x_sums)), _mm256_set1_ps(ks.dmin * x.d),
                                 off[c]);
    }
  }
  for (int c = 0; c < NC; ++c) a.y[(i0 + c) * a.rows + r] = hsum(_mm256_sub_ps(acc[c], off[c]));
}

template <typename Block, int NC, typename Src>
void quant_row(const MatmulArgs& a, const Src& src, int64_t r, int64_t i0) {
  if constexpr (BlockTraits<Block>::values == QK_K)
    kquant_row<Block, NC>(a, src, r, i0);
  else
    block32_row<Block, NC>(a, src, r, i0);
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

template <typename Tag>
void float_rows(Tag tag, const MatmulArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* wr = a.w + size_t(r) * a.row_stride;
    for_column_groups(a.n, [&](int64_t i0, auto nc) { float_row<Tag, decltype(nc)::value>(tag, a, wr, r, i0); });
  }
}
void rows_any(F32Tag t, const MatmulArgs& a, int64_t r0, int64_t r1) { float_rows(t, a, r0, r1); }
void rows_any(F16Tag t, const MatmulArgs& a, int64_t r0, int64_t r1) { float_rows(t, a, r0, r1); }
void rows_any(BF16Tag t, const MatmulArgs& a, int64_t r0, int64_t r1) { float_rows(t, a, r0, r1); }

// Up to this many activation rows, each group of kCols rows streams the
// weights again, unpacking as it goes: a few rows (a server step decoding one
// token for each of several slots) are bound by reading the weights, and
// re-reading them costs less than unpacking rows into a buffer or tiling.
constexpr int64_t kDirectMaxRows = 8;

template <typename Block>
void rows_any(Block, const MatmulArgs& a, int64_t r0, int64_t r1) {
  thread_local UnpackedRow unpacked;  // reused across calls: no allocation per row
  if (a.n > kDirectMaxRows) r0 = matmul_tiles_avx2(a, r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const Block* wr = reinterpret_cast<const Block*>(a.w + size_t(r) * a.row_stride);
    if (a.n <= kDirectMaxRows) {
      const DirectSource<Block> src{wr};
      for_column_groups(a.n, [&](int64_t i0, auto nc) { quant_row<Block, decltype(nc)::value>(a, src, r, i0); });
    } else {
      unpack_row(wr, a.k, unpacked);
      const BufferSource src{unpacked, BlockTraits<Block>::chunks};
      for_column_groups(a.n, [&](int64_t i0, auto nc) { quant_row<Block, decltype(nc)::value>(a, src, r, i0); });
    }
  }
}

}  // namespace

void matmul_rows_avx2(const MatmulArgs& a, int64_t r0, int64_t r1) {
  visit_qtype(a.type, [&](auto tag) { rows_any(tag, a, r0, r1); });
}

}  // namespace hi
