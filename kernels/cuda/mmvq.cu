// Matvec for decode (mmvq.cuh): y (n, rows) = x W^T for a few tokens.
//
// Kernels (13): mmvq_kernel<T> for T in f32_t f16_t bf16_t block_q4_0 block_q4_1
// block_q5_0 block_q5_1 block_q8_0 block_q2_K block_q3_K block_q4_K block_q5_K
// block_q6_K.
//
// One warp per output row, kRowsPerBlock rows (warps) per block. Quantised
// weights: lane l takes the row's 32-value chunks l, l+32, ... (a warp reads
// neighbouring chunks), unpacks each once (unpack_chunk: byte reads, so any
// row alignment is fine) and dots it with every token's activation chunk by
// dp4a, adding chunk_result (the CPU's chunk_dot float ops) per token; one
// warp_sum per token. Float weights: lane l takes elements l, l+32, ... (fully
// coalesced) with FMAs. Tokens go in batches of kTok with a fixed-size
// accumulator array, so n > kTok also works (the caller sends n <= 8).
#include "cuda_common.cuh"
#include "mmvq.cuh"
#include "weight_types.cuh"

namespace hi::cuda {
namespace {

constexpr int kRowsPerBlock = 4;  // 128 threads
constexpr int kTok = 8;           // tokens per pass, = kMatvecTokens

template <typename T>
__global__ void __launch_bounds__(kRowsPerBlock* kWarp)
    mmvq_kernel(const uint8_t* __restrict__ w, int64_t rows, int64_t k, const float* __restrict__ x,
                const uint8_t* __restrict__ act, int64_t n, float* __restrict__ y) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  if (r >= rows) return;  // the whole warp leaves: warp_sum stays full-warp
  const int lane = threadIdx.x % kWarp;
  const uint8_t* row = w + r * row_bytes<T>(k);
  for (int64_t t0 = 0; t0 < n; t0 += kTok) {
    const int nt = int(n - t0 < kTok ? n - t0 : kTok);  // warp-uniform
    float acc[kTok];
#pragma unroll
    for (int t = 0; t < kTok; ++t) acc[t] = 0.0f;
    if constexpr (TypeInfo<T>::is_float) {
      const T* p = reinterpret_cast<const T*>(row);
      const float* xt = x + t0 * k;
      for (int64_t j = lane; j < k; j += kWarp) {
        const float wv = load_value(p, j);
#pragma unroll
        for (int t = 0; t < kTok; ++t)
          if (t < nt) acc[t] = fmaf(wv, xt[t * k + j], acc[t]);
      }
    } else {
      using A = ActFor<T>;
      constexpr int C = TypeInfo<T>::chunks;
      const T* blocks = reinterpret_cast<const T*>(row);
      const int64_t nc = n_chunks(k), arb = act_row_bytes<T>(k);
      const uint8_t* act0 = act + t0 * arb;
      for (int64_t c = lane; c < nc; c += kWarp) {
        Chunk ch;
        unpack_chunk(blocks[c / C], int(c % C), ch);
        int32_t wq[QK / 4];
        load_words(ch.q, wq);
#pragma unroll
        for (int t = 0; t < kTok; ++t) {
          if (t < nt) {
            const ActChunk a = act_chunk(reinterpret_cast<const A*>(act0 + t * arb), c);
            int32_t xq[QK / 4];
            load_words(a.qs, xq);
            int i0 = 0, i1 = 0;
#pragma unroll
            for (int i = 0; i < QK / 8; ++i) {
              i0 = __dp4a(wq[i], xq[i], i0);
              i1 = __dp4a(wq[i + QK / 8], xq[i + QK / 8], i1);
            }
            acc[t] = __fadd_rn(acc[t], chunk_result(a.d, ch.s, ch.m, i0, i1, a.sum[0], a.sum[1]));
          }
        }
      }
    }
#pragma unroll
    for (int t = 0; t < kTok; ++t) {
      if (t < nt) {
        const float s = warp_sum(acc[t]);
        if (lane == 0) y[(t0 + t) * rows + r] = s;
      }
    }
  }
}

}  // namespace

void mmvq(QType type, const uint8_t* w, int64_t rows, int64_t k, const float* x, const uint8_t* act, int64_t n,
          float* y, cudaStream_t stream) {
  with_weight_type(type, "mmvq", [&](auto tag, const char* name) {
    using T = WeightOf<decltype(tag)>;
    if (rows <= 0 || n <= 0) return;
    const int64_t grid = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    if (grid > int64_t(0x7fffffff)) throw std::invalid_argument("mmvq: too many rows");
    mmvq_kernel<T><<<unsigned(grid), kRowsPerBlock * kWarp, 0, stream>>>(w, rows, k, x, act, n, y);
    check_launch((std::string("mmvq ") + name).c_str());
  });
}

}  // namespace hi::cuda
