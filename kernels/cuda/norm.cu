// RMSNorm (csrc/cpu/ops.cpp semantics; the CPU sums squares in double, here
// in float, so results agree to float reduction order).
//
// Two shapes: rows of up to kWarpDim values (the per-head q/k norms: dim =
// head size, rows = tokens x heads) take one warp each, 8 rows per block, so
// no lane idles and no block barrier is paid; longer rows (the hidden-state
// norms: few rows in decode, thousands of values each) take a block of 256
// threads each. Every thread rereads and writes only the elements it summed,
// after the reduction, so y may be x.
#include "norm.cuh"

#include <climits>

#include "cuda_common.cuh"

namespace hi::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / kWarp;
constexpr int64_t kWarpDim = 1024;

__device__ __forceinline__ float inv_rms(float sum_sq, int64_t dim, float eps) {
  return __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(sum_sq, float(dim)), eps)));
}

__global__ void __launch_bounds__(kThreads) rms_norm_warp_kernel(const float* x, const float* w, float* y,
                                                                 int64_t rows, int64_t dim, float eps) {
  const int lane = int(threadIdx.x) % kWarp;
  const int64_t step = int64_t(gridDim.x) * kRowsPerBlock;
  for (int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp; r < rows; r += step) {  // warp-uniform
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float s = 0.0f;
    for (int64_t i = lane; i < dim; i += kWarp) s += xr[i] * xr[i];
    const float inv = inv_rms(warp_sum(s), dim, eps);
    for (int64_t i = lane; i < dim; i += kWarp) yr[i] = xr[i] * inv * (w ? w[i] : 1.0f);
  }
}

__global__ void __launch_bounds__(kThreads) rms_norm_block_kernel(const float* x, const float* w, float* y,
                                                                  int64_t rows, int64_t dim, float eps) {
  __shared__ float red[kWarp];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // block-uniform
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) s += xr[i] * xr[i];
    const float inv = inv_rms(block_sum(s, red), dim, eps);
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) yr[i] = xr[i] * inv * (w ? w[i] : 1.0f);
  }
}

unsigned grid_for(int64_t blocks) { return unsigned(blocks < INT_MAX ? blocks : INT_MAX); }

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps, cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  if (dim <= kWarpDim)
    rms_norm_warp_kernel<<<grid_for((rows + kRowsPerBlock - 1) / kRowsPerBlock), kThreads, 0, stream>>>(x, w, y, rows,
                                                                                                       dim, eps);
  else
    rms_norm_block_kernel<<<grid_for(rows), kThreads, 0, stream>>>(x, w, y, rows, dim, eps);
  check_launch("rms_norm");
}

}  // namespace hi::cuda
