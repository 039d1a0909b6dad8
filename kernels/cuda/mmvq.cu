// Matvec for decode (mmvq.cuh): y (n, rows) = x W^T for a few tokens.
//
// Kernels (30): mmvq_kernel<T, L> for
//   T in f32_t f16_t bf16_t, L Blocks (float rows have one layout);
//   T in block_q4_0 block_q4_1 block_q5_0 block_q5_1 block_q8_0 block_q2_K
//     block_q3_K block_q4_K block_q5_K block_q6_K, L Blocks and Planar;
//   T in block_q4_0 block_q8_0 block_q4_K block_q6_K, L Planar16
// (chunk_words.cuh: the row layouts and what each reads with 16-byte loads).
//
// One warp per output row, kRowsPerBlock rows (warps) per block; the grid runs
// over the rows of every product of the launch, one after the other. Quantised
// weights: lane l takes the row's 32-value chunks l, l+32, ... (a warp reads
// neighbouring chunks), reads each once as code words (ChunkReader) and dots
// it with every token's activation chunk by dp4a, adding chunk_result (the
// CPU's chunk_dot float ops) per token; one warp_sum per token. The integer
// sums and every float op are the same in all layouts, so y is too. Float
// weights: lane l takes elements l, l+32, ... (fully coalesced) with FMAs.
// Tokens go in batches of kTok with a fixed-size accumulator array, so n >
// kTok also works: a pass per 8 tokens, the row's weights read again (from
// cache) for the next (the caller sends n <= 16).
#include "chunk_words.cuh"
#include "cuda_common.cuh"
#include "mmvq.cuh"
#include "weight_types.cuh"

namespace hi::cuda {
namespace {

constexpr int kRowsPerBlock = 4;  // 128 threads
constexpr int kTok = 8;           // tokens per pass

// The products of one launch, their rows one after the other in the grid.
struct MatvecOuts {
  const uint8_t* w[kMatvecOuts];
  float* y[kMatvecOuts];
  int64_t end[kMatvecOuts];  // one past each product's last row in the grid
  int count;

  // The product grid row g belongs to (the last one past the end).
  __device__ __forceinline__ int product_of(int64_t g) const {
    int p = 0;
#pragma unroll
    for (int i = 1; i < kMatvecOuts; ++i) p += i < count && g >= end[i - 1];
    return p;
  }
};

#ifdef HI_CUDA_EMULATOR  // tests/cuda_emulator checks that a launch's pointers are device memory
inline std::vector<const void*> hi_emu_pointers(const MatvecOuts& o) {
  std::vector<const void*> p;
  for (int i = 0; i < o.count; ++i) p.insert(p.end(), {o.w[i], o.y[i]});
  return p;
}
#endif

// a[p] with constant indices only: the arguments stay in the constant bank (a
// computed index would copy them to local memory), and nothing of a product
// but its index is held in registers through the kernel's loops.
template <typename V>
__device__ __forceinline__ V pick(const V (&a)[kMatvecOuts], int p) {
  V v = a[0];
#pragma unroll
  for (int i = 1; i < kMatvecOuts; ++i)
    if (p == i) v = a[i];
  return v;
}

template <typename T, RowLayout L>
__global__ void __launch_bounds__(kRowsPerBlock* kWarp)
    mmvq_kernel(const MatvecOuts outs, int64_t k, const float* __restrict__ x, const uint8_t* __restrict__ act,
                int64_t n) {
  const int64_t g = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;  // row in the grid
  const int p = outs.product_of(g);
  const int64_t first = p ? pick(outs.end, p - 1) : 0;  // the product's first grid row
  const int64_t r = g - first, rows = pick(outs.end, p) - first;
  if (r >= rows) return;  // past the last product: the whole warp leaves, so warp_sum stays full-warp
  const int lane = threadIdx.x % kWarp;
  const uint8_t* row = pick(outs.w, p) + r * row_bytes<T>(k);
  for (int64_t t0 = 0; t0 < n; t0 += kTok) {
    const int nt = int(n - t0 < kTok ? n - t0 : kTok);  // warp-uniform
    float acc[kTok];
#pragma unroll
    for (int t = 0; t < kTok; ++t) acc[t] = 0.0f;
    if constexpr (TypeInfo<T>::is_float) {
      const T* wr = reinterpret_cast<const T*>(row);
      const float* xt = x + t0 * k;
      for (int64_t j = lane; j < k; j += kWarp) {
        const float wv = load_value(wr, j);
#pragma unroll
        for (int t = 0; t < kTok; ++t)
          if (t < nt) acc[t] = fmaf(wv, xt[t * k + j], acc[t]);
      }
    } else {
      using R = ChunkReader<T, L>;
      constexpr int V = kActValues<T>;
      const int64_t nc = n_chunks(k), stride = act_row_stride(V, k);
      const uint8_t* act0 = act + t0 * stride;
      for (int64_t c = lane; c < nc; c += kWarp) {
        ChunkWords wc;
        R::read(row, k, c, wc);
        const ActChunkAt<V> at(k, c);
#pragma unroll
        for (int t = 0; t < kTok; ++t) {
          if (t < nt) {
            ActWords a;
            read_act(act0 + t * stride, at, a);
            int i0 = 0, i1 = 0;
#pragma unroll
            for (int i = 0; i < QK / 8; ++i) {
              i0 = __dp4a(wc.q[i], a.q[i], i0);
              i1 = __dp4a(wc.q[i + QK / 8], a.q[i + QK / 8], i1);
            }
            if constexpr (R::kZero != 0) {
              i0 -= R::kZero * a.sum[0];
              i1 -= R::kZero * a.sum[1];
            }
            acc[t] = __fadd_rn(acc[t], chunk_result(a.d, wc.s, wc.m, i0, i1, a.sum[0], a.sum[1]));
          }
        }
      }
    }
#pragma unroll
    for (int t = 0; t < kTok; ++t) {
      if (t < nt) {
        const float s = warp_sum(acc[t]);
        if (lane == 0) pick(outs.y, p)[(t0 + t) * rows + r] = s;
      }
    }
  }
}

}  // namespace

void mmvq(const MatmulOut* outs, int count, int64_t k, const float* x, const uint8_t* act, int64_t n, bool planar,
          cudaStream_t stream) {
  if (count < 1 || count > kMatvecOuts)
    throw std::invalid_argument("mmvq: 1 to " + std::to_string(kMatvecOuts) + " products a launch, got " +
                                std::to_string(count));
  MatvecOuts run{};
  bool aligned = true;  // every product's weights start on a 16-byte boundary
  for (int i = 0; i < count; ++i) {
    if (outs[i].type != outs[0].type) throw std::invalid_argument("mmvq: the products of a launch differ in type");
    if (outs[i].rows < 0) throw std::invalid_argument("mmvq: negative rows");
    run.w[i] = outs[i].w;
    run.y[i] = outs[i].y;
    run.end[i] = (i ? run.end[i - 1] : 0) + outs[i].rows;
    aligned = aligned && reinterpret_cast<uintptr_t>(outs[i].w) % 16 == 0;
  }
  run.count = count;
  const int64_t rows = run.end[count - 1];
  with_weight_type(outs[0].type, "mmvq", [&](auto tag, const char* name) {
    using T = WeightOf<decltype(tag)>;
    if (rows <= 0 || n <= 0) return;
    const int64_t grid64 = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    if (grid64 > int64_t(0x7fffffff)) throw std::invalid_argument("mmvq: too many rows");
    const unsigned grid = unsigned(grid64), threads = kRowsPerBlock * kWarp;
    if constexpr (TypeInfo<T>::is_float) {
      mmvq_kernel<T, RowLayout::Blocks><<<grid, threads, 0, stream>>>(run, k, x, act, n);
    } else {
      if (reinterpret_cast<uintptr_t>(act) % 16 != 0)  // read_act's 16-byte loads
        throw std::invalid_argument("mmvq: activation rows not 16-byte aligned");
      const bool planes_16_aligned = (k / TypeInfo<T>::values) % wide_block_multiple<T>() == 0 && aligned;
      constexpr RowLayout kWide = has_wide_reader<T>() ? RowLayout::Planar16 : RowLayout::Planar;
      if (!planar)
        mmvq_kernel<T, RowLayout::Blocks><<<grid, threads, 0, stream>>>(run, k, x, act, n);
      else if (planes_16_aligned)
        mmvq_kernel<T, kWide><<<grid, threads, 0, stream>>>(run, k, x, act, n);
      else
        mmvq_kernel<T, RowLayout::Planar><<<grid, threads, 0, stream>>>(run, k, x, act, n);
    }
    check_launch((std::string("mmvq ") + name).c_str());
  });
}

}  // namespace hi::cuda
