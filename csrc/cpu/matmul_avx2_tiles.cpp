// Prefill (many activation rows) for the 32-value block types: eight weight
// rows at a time, their codes interleaved four bytes per row, so one maddubs
// multiplies four values of all eight rows with the same four activation
// values (broadcast). The lanes are then the eight rows: block scales apply to
// eight rows in one multiply, and the unpacking (codes, signs, scales) is done
// once per tile instead of once per row and group of activation rows.
//
// Bit-for-bit equal to block32_row in matmul_avx2.cpp, so a batch gives the
// same logits as token-by-token decoding: step s of a block is that kernel's
// int32 lane s (values 4s..4s+3), each step keeps its own float accumulator,
// the offsets are summed as it sums them, and the steps are added in hsum's
// order. Compiled with -mavx2.
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
constexpr bool tiled() {
  return std::is_same<Block, block_q4_0>::value || std::is_same<Block, block_q4_1>::value ||
         std::is_same<Block, block_q5_0>::value || std::is_same<Block, block_q5_1>::value ||
         std::is_same<Block, block_q8_0>::value;
}

// Eight weight rows, unpacked and interleaved.
struct Tile {
  std::vector<__m256i> u;     // (k/32, kSteps) step s of a block: bytes 4s..4s+3 of each row's maddubs codes
  std::vector<__m256i> sign;  // (k/32, kSteps) the same layout of signed codes; signed types only
  std::vector<__m256> s, m;   // (k/32,) per block, lane j = row j: value = s * code - m
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
      const Block& blk = reinterpret_cast<const Block*>(a.w + size_t(r + j) * a.row_stride)[b];
      const WeightChunk<Block> w(codes(blk, 0));
      u[j] = w.u;
      q[j] = w.q;
      const BlockScale bs = block_scale(blk);
      s[j] = bs.s;
      m[j] = bs.m;
    }
    transpose8x8_epi32(u);
    std::memcpy(&t.u[size_t(b * kSteps)], u, sizeof u);
    if (signed_codes<Block>()) {
      transpose8x8_epi32(q);
      std::memcpy(&t.sign[size_t(b * kSteps)], q, sizeof q);
    }
    t.s[size_t(b)] = _mm256_load_ps(s);
    t.m[size_t(b)] = _mm256_load_ps(m);
  }
}

inline __m256i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
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
  // hsum's order: (0 + 4) + (2 + 6), then (1 + 5) + (3 + 7).
  const __m256 even = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
  const __m256 odd = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
  _mm256_storeu_ps(a.y + i * a.rows + r, _mm256_sub_ps(_mm256_add_ps(even, odd), off));
}

template <typename Block>
int64_t tiles(const MatmulArgs& a, int64_t r0, int64_t r1) {
  thread_local Tile t;  // reused across calls: no allocation per tile
  int64_t r = r0;
  for (; r + kRows <= r1; r += kRows) {
    pack<Block>(a, r, t);
    for (int64_t i = 0; i < a.n; ++i) tile_row<Block>(a, t, r, i);
  }
  return r;
}

}  // namespace

int64_t matmul_tiles_avx2(const MatmulArgs& a, int64_t r0, int64_t r1) {
  return visit_qtype(a.type, [&](auto tag) -> int64_t {
    if constexpr (tiled<decltype(tag)>()) return tiles<decltype(tag)>(a, r0, r1);
    else return r0;
  });
}

}  // namespace hi
