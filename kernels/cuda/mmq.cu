// Tiled matmul for prefill (mmq.cuh): y (n, rows) = x W^T for many tokens.
//
// Kernels (13): mmq_quant<T> for T in block_q4_0 block_q4_1 block_q5_0
// block_q5_1 block_q8_0 block_q2_K block_q3_K block_q4_K block_q5_K block_q6_K
// (integer tensor cores), mmq_float<T> for T in f32_t f16_t bf16_t (FMA tiles).
//
// ---- quantised weights: mma.sync m16n8k16 s8 x s8 -> s32 -----------------
// Block: 64 rows x 64 tokens, 128 threads = 4 warps as 2 (rows) x 2 (tokens),
// each warp 32 rows x 32 tokens = 2 x 4 MMA tiles of 16 rows x 8 tokens. Per
// step of kKC = 4 chunks (128 values) of k:
//   - 128 threads unpack the 64 x 4 weight chunks (unpack_row_chunk, two each)
//     into shared memory as int8 codes plus (s0, s1, m0, m1) per chunk;
//   - they copy the 64 tokens' activation codes (4-byte words) and
//     (d, sum0, sum1) per chunk;
//   - each warp, per chunk in order and per 16-value half, runs one MMA per
//     16x8 tile with a zero accumulator, giving every (row, token) its own
//     int32 sum of that half: exactly the CPU's isum[h]. The chunk's float
//     value (chunk_value: chunk_result's float ops) is added to the output's
//     float accumulator, chunks in order from 0.0f, as the CPU's scalar
//     kernel does (csrc/cpu/matmul_scalar.cpp), so y is the CPU's bit for bit.
// Static shared memory 27,648 bytes; at most 128 registers (launch bounds: 4
// blocks, 16 warps, per SM). Grid: one dimension, token tile fastest.
// m16n8k32 would sum both halves into one int32, losing the per-half sums
// that per-16 scales and per-half offsets need: hence k16, one MMA per half.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 with integer
// type"; g = lane >> 2, t = lane % 4; a byte's position in its .b32 register,
// low to high, is the column (A) / row (B) offset 0..3):
//   A (16 x 16 s8, .row) = weight codes [row][k]: a0 = A[g][4t .. 4t+3],
//                                                 a1 = A[g+8][4t .. 4t+3]
//   B (16 x 8 s8, .col)  = activation codes [k][token]: b0 = B[4t .. 4t+3][g]
//   C/D (16 x 8 s32): d0 = D[g][2t], d1 = D[g][2t+1], d2 = D[g+8][2t], d3 = D[g+8][2t+1]
// With codes stored row-major (4 codes per word, low byte first) a0 is word t
// of weight row g's half and b0 is word t of token g's half: plain 32-bit
// shared loads, no ldmatrix. Rows are padded to 36 words so the 8 rows x 4
// words of one fragment load fall on 32 distinct banks.
//
// ---- float weights (f32, f16, bf16: small tensors) ------------------------
// The SYCL FloatTiles scheme: 64 rows x 64 tokens per block, 256 threads of
// 4 x 4 outputs, k in steps of 32 through shared memory (16,896 bytes), FMA
// dot products.
#include <type_traits>

#include "act_rows.cuh"
#include "cuda_common.cuh"
#include "mmq.cuh"
#include "weight_types.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "mmq.cu needs sm_80 or newer: mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32"
#endif

namespace hi::cuda {
namespace {

// ---- quantised weights ------------------------------------------------------

constexpr int kBM = 64, kBN = 64;       // rows, tokens per block
constexpr int kKC = 4;                  // chunks per step of k
constexpr int kWarpRows = 32, kWarpToks = 32;
constexpr int kQThreads = (kBM / kWarpRows) * (kBN / kWarpToks) * kWarp;  // 128
constexpr int kWords = kKC * QK / 4;    // 32 words of 4 codes per row per step
constexpr int kStride = kWords + 4;     // 36 (see the bank note above)
constexpr int kMi = kWarpRows / 16, kNi = kWarpToks / 8;  // 2 x 4 MMA tiles per warp

struct QuantTiles {
  int32_t wq[kBM][kStride];  // (64 rows, 32 words) weight codes
  int32_t xq[kBN][kStride];  // (64 tokens, 32 words) activation codes
  float4 ws[kBM][kKC];       // (64 rows, 4 chunks): s0, s1, m0, m1
  float4 xs[kBN][kKC + 1];   // (64 tokens, 4 chunks): d, float(sum0), float(sum1), 0; +1: the 4 tokens
                             // 2t of one load fall on distinct banks
};
static_assert(sizeof(int32_t) * kBM * kStride % 16 == 0, "float4 members stay 16-byte aligned");

// Types whose chunks carry an offset (m != 0). For the others unpack_chunk
// sets m = 0.0f, so chunk_result's offset term is +-0 and w - off == w except
// possibly for the sign of a zero; the product d * (w - off) is then a zero of
// either sign, and adding it to the accumulator (which starts at +0.0f and so
// is never -0.0f) changes nothing. Dropping the term leaves y bit-identical.
template <typename T>
struct HasOffset
    : std::integral_constant<bool, std::is_same<T, block_q4_1>::value || std::is_same<T, block_q5_1>::value ||
                                       std::is_same<T, block_q2_K>::value || std::is_same<T, block_q4_K>::value ||
                                       std::is_same<T, block_q5_K>::value> {};

// float(i), exactly, for |i| < 2^22 (a half's sum is at most 16*128*127):
// 1.5*2^23 has ulp 1, so adding i to its bits adds i to its value. An integer
// add and a float subtract instead of I2F, which runs at a quarter rate.
__device__ __forceinline__ float small_int_to_float(int i) {
  return __fsub_rn(__int_as_float(0x4B400000 + i), 12582912.0f);
}

// chunk_result (cuda_common.cuh) with the activation sums given as floats:
// ws = (s0, s1, m0, m1), xs = (d, float(sum0), float(sum1), -).
template <bool kOffset>
__device__ __forceinline__ float chunk_value(const float4& ws, const float4& xs, int i0, int i1) {
  const float wsum = __fadd_rn(__fmul_rn(ws.x, small_int_to_float(i0)), __fmul_rn(ws.y, small_int_to_float(i1)));
  if constexpr (kOffset) {
    const float off = __fadd_rn(__fmul_rn(ws.z, xs.y), __fmul_rn(ws.w, xs.z));
    return __fmul_rn(xs.x, __fsub_rn(wsum, off));
  } else {
    return __fmul_rn(xs.x, wsum);
  }
}

// d = A (16x16, row) * B (16x8, col), s8 x s8, zero accumulator.
__device__ __forceinline__ void mma_s8(int (&d)[4], int a0, int a1, int b0) {
#ifdef HI_CUDA_EMULATOR  // tests/cuda_emulator: the same operation from the PTX fragment tables, on the CPU
  hi_emu_mma_m16n8k16_s8(d, a0, a1, b0);
#else
  asm("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%7, %7, %7, %7};"
      : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
      : "r"(a0), "r"(a1), "r"(b0), "r"(0));
#endif
}

// Block b: token tile b % token_tiles, row tile b / token_tiles (neighbouring
// blocks share a row tile, so the weights come from DRAM about once).
template <typename T>
__global__ void __launch_bounds__(kQThreads, 4)  // <= 128 registers: 4 blocks (16 warps) per SM
    mmq_quant(const uint8_t* __restrict__ w, int64_t rows, int64_t k, const uint8_t* __restrict__ act, int64_t n,
              float* __restrict__ y, bool planar, int64_t token_tiles) {
  constexpr int V = kActValues<T>;
  constexpr bool kOffset = HasOffset<T>::value;
  __shared__ __align__(16) QuantTiles tiles;

  const int64_t t0 = (int64_t(blockIdx.x) % token_tiles) * kBN, r0 = (int64_t(blockIdx.x) / token_tiles) * kBM;
  const int tid = int(threadIdx.x), lane = tid % kWarp, warp = tid / kWarp;
  const int g = lane / 4, t = lane % 4;
  const int wm0 = (warp % (kBM / kWarpRows)) * kWarpRows, wn0 = (warp / (kBM / kWarpRows)) * kWarpToks;
  const int ntok = int(n - t0 < kBN ? n - t0 : kBN);  // tokens of this tile (>= 1)
  const int64_t rb = row_bytes<T>(k), stride = act_row_stride(V, k), nc = n_chunks(k);

  float acc[kMi][kNi][4];
#pragma unroll
  for (int mi = 0; mi < kMi; ++mi)
#pragma unroll
    for (int ni = 0; ni < kNi; ++ni)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[mi][ni][j] = 0.0f;

  for (int64_t c0 = 0; c0 < nc; c0 += kKC) {
    const int kc = int(nc - c0 < kKC ? nc - c0 : kKC);  // chunks in this step

    // Weight chunk (row wr, chunk c0 + wc): 4 neighbouring threads read 4
    // neighbouring chunks of one row.
    for (int p = tid; p < kBM * kKC; p += kQThreads) {
      const int wr = p / kKC, wc = p % kKC;
      int32_t q[QK / 4] = {};
      float4 sm = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (r0 + wr < rows && wc < kc) {
        const int64_t c = c0 + wc;
        Chunk ch;
        unpack_row_chunk<T>(w + (r0 + wr) * rb, k, c, planar, ch);
        load_words(ch.q, q);
        sm = make_float4(ch.s[0], ch.s[1], ch.m[0], ch.m[1]);
      }
      int4* dst = reinterpret_cast<int4*>(&tiles.wq[wr][wc * (QK / 4)]);  // 16-byte aligned: 144*wr + 32*wc
      dst[0] = make_int4(q[0], q[1], q[2], q[3]);
      dst[1] = make_int4(q[4], q[5], q[6], q[7]);
      tiles.ws[wr][wc] = sm;
    }
    // Activation codes: a warp copies one token's 32 words (4 chunks).
    for (int e = tid; e < kBN * kWords; e += kQThreads) {
      const int tt = e / kWords, wi = e % kWords, cc = wi / (QK / 4);
      int32_t v = 0;
      if (tt < ntok && cc < kc) {
        const int8_t* qs = ActChunkAt<V>(k, c0 + cc).codes_in(act + (t0 + tt) * stride);
        v = reinterpret_cast<const int32_t*>(qs)[wi % (QK / 4)];  // activation codes are 16-byte aligned
      }
      tiles.xq[tt][wi] = v;
    }
    for (int p = tid; p < kBN * kKC; p += kQThreads) {
      const int tt = p / kKC, cc = p % kKC;
      float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (tt < ntok && cc < kc) {
        const ActChunkAt<V> at(k, c0 + cc);
        const uint8_t* row = act + (t0 + tt) * stride;
        int s0, s1;
        at.sums_in(row, s0, s1);
        v = make_float4(at.scale_in(row), float(s0), float(s1), 0.0f);
      }
      tiles.xs[tt][cc] = v;
    }
    __syncthreads();

    for (int cc = 0; cc < kc; ++cc) {  // chunks in order: each output sums them as the CPU does
      const int w0 = cc * (QK / 4) + t;  // word t of half 0; half 1 is 4 words on
      int32_t a[kMi][2][2];              // [mi][half][a0, a1]
      float4 ws[kMi][2];                 // [mi][rows g, g+8]
#pragma unroll
      for (int mi = 0; mi < kMi; ++mi) {
        const int ra = wm0 + mi * 16 + g;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          a[mi][h][0] = tiles.wq[ra][w0 + 4 * h];
          a[mi][h][1] = tiles.wq[ra + 8][w0 + 4 * h];
        }
        ws[mi][0] = tiles.ws[ra][cc];
        ws[mi][1] = tiles.ws[ra + 8][cc];
      }
#pragma unroll
      for (int ni = 0; ni < kNi; ++ni) {
        if (wn0 + ni * 8 >= ntok) continue;  // warp-uniform: no token of this tile is real
        const int tb = wn0 + ni * 8;
        const int32_t b0 = tiles.xq[tb + g][w0], b1 = tiles.xq[tb + g][w0 + 4];
        const float4 xs0 = tiles.xs[tb + 2 * t][cc], xs1 = tiles.xs[tb + 2 * t + 1][cc];
#pragma unroll
        for (int mi = 0; mi < kMi; ++mi) {
          int d0[4], d1[4];  // half 0, half 1 sums: [row g tok 2t, g 2t+1, g+8 2t, g+8 2t+1]
          mma_s8(d0, a[mi][0][0], a[mi][0][1], b0);
          mma_s8(d1, a[mi][1][0], a[mi][1][1], b1);
#pragma unroll
          for (int j = 0; j < 4; ++j)
            acc[mi][ni][j] = __fadd_rn(acc[mi][ni][j],
                                       chunk_value<kOffset>(ws[mi][j / 2], (j % 2) ? xs1 : xs0, d0[j], d1[j]));
        }
      }
    }
    __syncthreads();
  }

#pragma unroll
  for (int mi = 0; mi < kMi; ++mi)
#pragma unroll
    for (int ni = 0; ni < kNi; ++ni)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t r = r0 + wm0 + mi * 16 + g + 8 * (j / 2);
        const int64_t tok = t0 + wn0 + ni * 8 + 2 * t + (j % 2);
        if (r < rows && tok < n) y[tok * rows + r] = acc[mi][ni][j];
      }
}

// ---- float weights ----------------------------------------------------------

constexpr int kFT = 64;                  // rows and tokens per block
constexpr int kFK = 32;                  // values of k per step
constexpr int kFThreads = 256;           // 16 x 16 threads of 4 x 4 outputs
constexpr int kFPer = kFT / 16;          // 4

// Thread (tx, ty) = (tid % 16, tid / 16) owns rows tx + 16*i and tokens
// ty + 16*j. Block b: token tile b % token_tiles, row tile b / token_tiles.
template <typename T>
__global__ void __launch_bounds__(kFThreads)
    mmq_float(const uint8_t* __restrict__ w, int64_t rows, int64_t k, const float* __restrict__ x, int64_t n,
              float* __restrict__ y, int64_t token_tiles) {
  __shared__ float wt[kFT][kFK + 1];  // +1: a column read hits 16 distinct banks
  __shared__ float xt[kFT][kFK + 1];
  const int64_t t0 = (int64_t(blockIdx.x) % token_tiles) * kFT, r0 = (int64_t(blockIdx.x) / token_tiles) * kFT;
  const int tid = int(threadIdx.x), tx = tid % 16, ty = tid / 16;
  const int64_t rb = row_bytes<T>(k);
  float acc[kFPer][kFPer];
#pragma unroll
  for (int i = 0; i < kFPer; ++i)
#pragma unroll
    for (int j = 0; j < kFPer; ++j) acc[i][j] = 0.0f;

  for (int64_t k0 = 0; k0 < k; k0 += kFK) {
    for (int e = tid; e < kFT * kFK; e += kFThreads) {  // a warp reads 32 neighbouring values of one row
      const int rr = e / kFK, kk = e % kFK;
      const int64_t col = k0 + kk;
      const bool in_k = col < k;
      wt[rr][kk] = (in_k && r0 + rr < rows) ? load_value(reinterpret_cast<const T*>(w + (r0 + rr) * rb), col) : 0.0f;
      xt[rr][kk] = (in_k && t0 + rr < n) ? x[(t0 + rr) * k + col] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kFK; ++kk) {
      float wv[kFPer], xv[kFPer];
#pragma unroll
      for (int i = 0; i < kFPer; ++i) {
        wv[i] = wt[tx + 16 * i][kk];
        xv[i] = xt[ty + 16 * i][kk];
      }
#pragma unroll
      for (int i = 0; i < kFPer; ++i)
#pragma unroll
        for (int j = 0; j < kFPer; ++j) acc[i][j] = fmaf(wv[i], xv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < kFPer; ++j)
#pragma unroll
    for (int i = 0; i < kFPer; ++i) {
      const int64_t r = r0 + tx + 16 * i, tok = t0 + ty + 16 * j;
      if (r < rows && tok < n) y[tok * rows + r] = acc[i][j];
    }
}

}  // namespace

void mmq(QType type, const uint8_t* w, int64_t rows, int64_t k, const float* x, const uint8_t* act, int64_t n,
         float* y, bool planar, cudaStream_t stream) {
  with_weight_type(type, "mmq", [&](auto tag, const char* name) {
    using T = WeightOf<decltype(tag)>;
    if (rows <= 0 || n <= 0) return;
    constexpr int64_t tile = TypeInfo<T>::is_float ? kFT : kBN;
    static_assert(kFT == kBM && kBN == kBM, "one tile size for the grid arithmetic");
    const int64_t token_tiles = (n + tile - 1) / tile, row_tiles = (rows + tile - 1) / tile;
    if (row_tiles > int64_t(0x7fffffff) / token_tiles) throw std::invalid_argument("mmq: too many tiles");
    const unsigned grid = unsigned(row_tiles * token_tiles);
    if constexpr (TypeInfo<T>::is_float) {
      mmq_float<T><<<grid, kFThreads, 0, stream>>>(w, rows, k, x, n, y, token_tiles);
    } else {
      mmq_quant<T><<<grid, kQThreads, 0, stream>>>(w, rows, k, act, n, y, planar, token_tiles);
    }
    check_launch((std::string("mmq ") + name).c_str());
  });
}

}  // namespace hi::cuda
