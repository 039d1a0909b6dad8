// Prefill (many activation rows): eight weight rows at a time, their codes
// interleaved four bytes per row, so one maddubs multiplies four values of all
// eight rows with the same four activation values (broadcast). The lanes are
// then the eight rows: scales apply to eight rows in one multiply, the
// unpacking (codes, signs, scales) is done once per tile instead of once per
// row and group of activation rows, and each activation row is read once per
// eight weight rows instead of once per row.
//
// Bit-for-bit equal to block32_row and kquant_row in matmul_avx2.cpp, so a
// batch gives the same logits as token-by-token decoding: step s of a chunk is
// those kernels' int32 lane s (values 4s..4s+3), each step keeps its own float
// accumulator, offsets and K-quant biases are applied as they apply them, and
// the steps are added in hsum's order. Compiled with -mavx2.
#include <immintrin.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "avx2_blocks.h"
#include "matmul_kernels.h"

namespace hi {

namespace {

using namespace avx2;

constexpr int kRows = 8;   // weight rows per tile: one int32 lane each
constexpr int kSteps = 8;  // four-value steps per 32-value block

template <typename Block>
constexpr bool kquant() {
  return std::is_same<Block, block_q2_K>::value || std::is_same<Block, block_q3_K>::value ||
         std::is_same<Block, block_q4_K>::value || std::is_same<Block, block_q5_K>::value ||
         std::is_same<Block, block_q6_K>::value;
}

template <typename Block>
constexpr bool tiled() {
  return kquant<Block>() || std::is_same<Block, block_q4_0>::value || std::is_same<Block, block_q4_1>::value ||
         std::is_same<Block, block_q5_0>::value || std::is_same<Block, block_q5_1>::value ||
         std::is_same<Block, block_q8_0>::value;
}

// Eight weight rows, unpacked and interleaved.
struct Tile {
  std::vector<__m256i> u;     // (k/32, kSteps) step s of a block: bytes 4s..4s+3 of each row's maddubs codes
  std::vector<__m256i> sign;  // (k/32, kSteps) the same layout of signed codes; signed types only
  std::vector<__m256> s, m;   // (k/32,) per block, lane j = row j: value = s * code - m
};

constexpr int kChunks = QK_K / QK;  // 32-value chunks per K-quant super-block

// Eight weight rows of K-quant super-blocks, unpacked and interleaved.
struct KTile {
  std::vector<__m256i> u;      // (k/256, kChunks, kSteps) step s of chunk c: bytes 4s..4s+3 of each row's codes
  std::vector<__m256i> scale;  // (k/256, kChunks, 2) int16, dword j = row j's scale of values 0-15 / 16-31 of chunk c
  std::vector<__m256i> bias;   // (k/256, kSteps) int16, dword j = row j's sc[2s], sc[2s+1] << bias_shift; Q3_K/Q6_K
  std::vector<__m256i> mins;   // (k/256, kSteps) int16, dword j = row j's mn[2s], mn[2s+1]; types with offsets
  std::vector<__m256> d, dmin; // (k/256,) per super-block, lane j = row j
};

// rows[j] holds eight dwords; afterwards rows[s] holds dword s of every row.
inline void transpose8x8_epi32(__m256i* rows) {
  __m256i t[8], u[8];  // (8,) stages of the transpose
  for (int j = 0; j < 8; j += 2) {
    t[j] = _mm256_unpacklo_epi32(rows[j], rows[j + 1]);
    t[j + 1] = _mm256_unpackhi_epi32(rows[j], rows[j + 1]);
  }
  for (int j = 0; j < 8; j += 4) {
    u[j] = _mm256_unpacklo_epi64(t[j], t[j + 2]);
    u[j + 1] = _mm256_unpackhi_epi64(t[j], t[j + 2]);
    u[j + 2] = _mm256_unpacklo_epi64(t[j + 1], t[j + 3]);
    u[j + 3] = _mm256_unpackhi_epi64(t[j + 1], t[j + 3]);
  }
  for (int s = 0; s < 4; ++s) {
    rows[s] = _mm256_permute2x128_si256(u[s], u[s + 4], 0x20);
    rows[s + 4] = _mm256_permute2x128_si256(u[s], u[s + 4], 0x31);
  }
}

// Stores dword s of every row's v[j] as dst[s] (lane j = row j); v is clobbered.
inline void interleave(__m256i* v, __m256i* dst) {
  transpose8x8_epi32(v);
  std::memcpy(dst, v, kRows * sizeof(__m256i));
}

template <typename Block>
const Block& block_of(const MatmulArgs& a, int64_t row, int64_t b) {
  return reinterpret_cast<const Block*>(a.w + size_t(row) * a.row_stride)[b];
}

template <typename Block>
void pack(const MatmulArgs& a, int64_t r, Tile& t) {
  const int64_t n_blocks = a.k / QK;
  t.u.resize(size_t(n_blocks * kSteps));
  if (signed_codes<Block>()) t.sign.resize(size_t(n_blocks * kSteps));
  t.s.resize(size_t(n_blocks));
  t.m.resize(size_t(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) {
    __m256i u[kRows], q[kRows];  // (8,) maddubs codes and signed codes of block b per row
    alignas(32) float s[kRows], m[kRows];
    for (int j = 0; j < kRows; ++j) {
      const Block& blk = block_of<Block>(a, r + j, b);
      const WeightChunk<Block> w(codes(blk, 0));
      u[j] = w.u;
      q[j] = w.q;
      const BlockScale bs = block_scale(blk);
      s[j] = bs.s;
      m[j] = bs.m;
    }
    interleave(u, &t.u[size_t(b * kSteps)]);
    if (signed_codes<Block>()) interleave(q, &t.sign[size_t(b * kSteps)]);
    t.s[size_t(b)] = _mm256_load_ps(s);
    t.m[size_t(b)] = _mm256_load_ps(m);
  }
}

template <typename Block>
void pack(const MatmulArgs& a, int64_t r, KTile& t) {
  const int64_t n_blocks = a.k / QK_K;
  t.u.resize(size_t(n_blocks * kChunks * kSteps));
  t.scale.resize(size_t(n_blocks * kChunks * 2));
  if (bias_shift<Block>() >= 0) t.bias.resize(size_t(n_blocks * kSteps));
  if (has_offsets<Block>()) t.mins.resize(size_t(n_blocks * kSteps));
  t.d.resize(size_t(n_blocks));
  t.dmin.resize(size_t(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) {
    KScalesV ks[kRows];  // (8,) sub-block scales of super-block b per row
    alignas(32) float d[kRows], dmin[kRows];
    for (int j = 0; j < kRows; ++j) {
      ks[j] = kscales(block_of<Block>(a, r + j, b));
      d[j] = ks[j].d;
      dmin[j] = ks[j].dmin;
    }
    __m256i v[kRows];  // (8,) one vector per row, interleaved into the tile
    for (int c = 0; c < kChunks; ++c) {
      for (int j = 0; j < kRows; ++j) v[j] = codes(block_of<Block>(a, r + j, b), c);
      interleave(v, &t.u[size_t((b * kChunks + c) * kSteps)]);
    }
    // Steps 0-3 of chunk c take sc[2c], steps 4-7 sc[2c+1] (as chunk_scale): after
    // one transpose, dword j of v[c] holds row j's (sc[2c], sc[2c+1]); copy either word.
    for (int j = 0; j < kRows; ++j) v[j] = ks[j].sc;
    transpose8x8_epi32(v);
    const __m256i low_word = _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13,  //
                                              0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13);
    const __m256i high_word = _mm256_add_epi8(low_word, _mm256_set1_epi8(2));
    for (int c = 0; c < kChunks; ++c) {
      t.scale[size_t((b * kChunks + c) * 2)] = _mm256_shuffle_epi8(v[c], low_word);
      t.scale[size_t((b * kChunks + c) * 2 + 1)] = _mm256_shuffle_epi8(v[c], high_word);
    }
    if constexpr (bias_shift<Block>() >= 0) {  // the shift is exact in int16: |sc| <= 128, shift <= 5
      for (int j = 0; j < kRows; ++j) v[j] = _mm256_slli_epi16(ks[j].sc, bias_shift<Block>());
      interleave(v, &t.bias[size_t(b * kSteps)]);
    }
    if constexpr (has_offsets<Block>()) {
      for (int j = 0; j < kRows; ++j) v[j] = ks[j].mn;
      interleave(v, &t.mins[size_t(b * kSteps)]);
    }
    t.d[size_t(b)] = _mm256_load_ps(d);
    t.dmin[size_t(b)] = _mm256_load_ps(dmin);
  }
}

inline __m256i broadcast4(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// The eight steps in hsum's order: (0 + 4) + (2 + 6), then (1 + 5) + (3 + 7).
inline __m256 sum_steps(const __m256* v) {
  const __m256 even = _mm256_add_ps(_mm256_add_ps(v[0], v[4]), _mm256_add_ps(v[2], v[6]));
  const __m256 odd = _mm256_add_ps(_mm256_add_ps(v[1], v[5]), _mm256_add_ps(v[3], v[7]));
  return _mm256_add_ps(even, odd);
}

// y[i, r .. r+8] from one packed tile.
template <typename Block>
void tile_row(const MatmulArgs& a, const Tile& t, int64_t r, int64_t i) {
  const int64_t n_blocks = a.k / QK;
  const ActBlock* act = a.act + i * n_blocks;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[kSteps];  // (kSteps,) lane j = row r+j: sum of s * d_x * (code . x) over values 4s..4s+3
  __m256 off = _mm256_setzero_ps();  // lane j: sum of m * d_x * sum(x codes)
  for (int s = 0; s < kSteps; ++s) acc[s] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const ActBlock& x = act[b];
    const __m256i* w = &t.u[size_t(b * kSteps)];
    const __m256 scale = _mm256_mul_ps(t.s[size_t(b)], _mm256_set1_ps(x.d));
    for (int s = 0; s < kSteps; ++s) {
      __m256i xs = broadcast4(x.qs + 4 * s);
      if constexpr (signed_codes<Block>()) xs = _mm256_sign_epi8(xs, t.sign[size_t(b * kSteps + s)]);
      const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(w[s], xs), ones);
      acc[s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[s]);
    }
    if constexpr (has_offsets<Block>())
      off = _mm256_add_ps(off, _mm256_mul_ps(_mm256_mul_ps(t.m[size_t(b)], _mm256_set1_ps(x.d)),
                                             _mm256_set1_ps(float(x.sum[0] + x.sum[1]))));
  }
  _mm256_storeu_ps(a.y + i * a.rows + r, _mm256_sub_ps(sum_steps(acc), off));
}

// y[i, r .. r+8] from one packed K-quant tile: kquant_row's integer sums per
// step, then its float accumulation, with rows as lanes.
template <typename Block>
void tile_row(const MatmulArgs& a, const KTile& t, int64_t r, int64_t i) {
  const int64_t n_blocks = a.k / QK_K;
  const ActBlockK* act = a.act_k + i * n_blocks;
  __m256 acc[kSteps];  // (kSteps,) lane j = row r+j: kquant_row's acc lane s
  __m256 off[kSteps];  // (kSteps,) lane j = row r+j: kquant_row's off lane s
  for (int s = 0; s < kSteps; ++s) acc[s] = off[s] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const ActBlockK& x = act[b];
    __m256i isum[kSteps];  // (kSteps,) lane j: int32 sum of sc * (q . x) over the super-block's step s values
    for (int s = 0; s < kSteps; ++s) isum[s] = _mm256_setzero_si256();
    for (int c = 0; c < kChunks; ++c) {
      const __m256i* w = &t.u[size_t((b * kChunks + c) * kSteps)];
      const __m256i* scale = &t.scale[size_t((b * kChunks + c) * 2)];
      for (int s = 0; s < kSteps; ++s) {
        const __m256i pairs = _mm256_maddubs_epi16(w[s], broadcast4(x.qs + QK * c + 4 * s));
        isum[s] = _mm256_add_epi32(isum[s], _mm256_madd_epi16(pairs, scale[s / 4]));
      }
    }
    const __m256 d = _mm256_mul_ps(t.d[size_t(b)], _mm256_set1_ps(x.d));
    const __m256 dmin = _mm256_mul_ps(t.dmin[size_t(b)], _mm256_set1_ps(x.d));
    for (int s = 0; s < kSteps; ++s) {
      const __m256i x_sums = broadcast4(x.sum + 2 * s);  // sums of the 16-value halves 2s and 2s+1
      if constexpr (bias_shift<Block>() >= 0)
        isum[s] = _mm256_sub_epi32(isum[s], _mm256_madd_epi16(t.bias[size_t(b * kSteps + s)], x_sums));
      acc[s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[s]), d, acc[s]);
      if constexpr (has_offsets<Block>())
        off[s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(t.mins[size_t(b * kSteps + s)], x_sums)), dmin,
                                 off[s]);
    }
  }
  for (int s = 0; s < kSteps; ++s) acc[s] = _mm256_sub_ps(acc[s], off[s]);
  _mm256_storeu_ps(a.y + i * a.rows + r, sum_steps(acc));
}

template <typename Block>
int64_t tiles(const MatmulArgs& a, int64_t r0, int64_t r1) {
  thread_local typename std::conditional<kquant<Block>(), KTile, Tile>::type t;  // reused: no allocation per tile
  int64_t r = r0;
  for (; r + kRows <= r1; r += kRows) {
    pack<Block>(a, r, t);
    for (int64_t i = 0; i < a.n; ++i) tile_row<Block>(a, t, r, i);
  }
  return r;
}

}  // namespace

// K-quant tiles pay for their packing (a transpose per chunk) only with this
// many activation rows; below it the unpacked-row kernel is faster (n = 9-32:
// 1.1-1.5x slower with tiles, 2-core EPYC VM).
constexpr int64_t kKTileMinRows = 64;

int64_t matmul_tiles_avx2(const MatmulArgs& a, int64_t r0, int64_t r1) {
  return visit_qtype(a.type, [&](auto tag) -> int64_t {
    using Block = decltype(tag);
    if constexpr (tiled<Block>()) return kquant<Block>() && a.n < kKTileMinRows ? r0 : tiles<Block>(a, r0, r1);
    else return r0;
  });
}

}  // namespace hi
