// RMSNorm (csrc/cpu/ops.cpp semantics; the CPU sums squares in double, here
// in float, so results agree to float reduction order).
//
// Two shapes: rows of up to kWarpDim values (the per-head q/k norms: dim =
// head size, rows = tokens x heads) take one warp each, 8 rows per block, so
// no lane idles and no block barrier is paid; longer rows (the hidden-state
// norms: few rows in decode, thousands of values each) take a block of 256
// threads each. Every thread rereads and writes only the elements it summed,
// after the reduction, so y may be x.
//
// add_rms_norm is the same kernels with a residual to add first: each thread
// adds delta to the elements it sums and stores them back to x, so the sum and
// y are the ones rms_norm gives after add (x + delta, one rounding), in one
// launch instead of two; where a block's output joins the residual stream
// and the next block's norm reads it, twice a layer.
#include "norm.cuh"

#include <climits>

#include "cuda_common.cuh"
#include "norm_rows.h"

namespace hi::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / kWarp;
constexpr int64_t kWarpDim = 1024;

__device__ __forceinline__ float inv_rms(float sum_sq, int64_t dim, float eps) {
  return __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(sum_sq, float(dim)), eps)));
}

// delta: (rows, dim) added to x and stored there first (add_rms_norm), or
// null: x is only read.
__global__ void __launch_bounds__(kThreads) rms_norm_warp_kernel(float* x, const float* delta, const float* w,
                                                                 float* y, int64_t rows, int64_t dim, float eps) {
  const int lane = int(threadIdx.x) % kWarp;
  const int64_t step = int64_t(gridDim.x) * kRowsPerBlock;
  for (int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp; r < rows; r += step) {  // warp-uniform
    float* xr = x + r * dim;
    const float s = add_sum_squares(xr, delta ? delta + r * dim : nullptr, dim, lane, kWarp);
    scale_row(xr, w, y + r * dim, inv_rms(warp_sum(s), dim, eps), dim, lane, kWarp);
  }
}

__global__ void __launch_bounds__(kThreads) rms_norm_block_kernel(float* x, const float* delta, const float* w,
                                                                  float* y, int64_t rows, int64_t dim, float eps) {
  __shared__ float red[kWarp];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // block-uniform
    float* xr = x + r * dim;
    const float s = add_sum_squares(xr, delta ? delta + r * dim : nullptr, dim, threadIdx.x, kThreads);
    scale_row(xr, w, y + r * dim, inv_rms(block_sum(s, red), dim, eps), dim, threadIdx.x, kThreads);
  }
}

unsigned grid_for(int64_t blocks) { return unsigned(blocks < INT_MAX ? blocks : INT_MAX); }

void launch_norm(float* x, const float* delta, const float* w, float* y, int64_t rows, int64_t dim, float eps,
                 cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  if (dim <= kWarpDim)
    rms_norm_warp_kernel<<<grid_for((rows + kRowsPerBlock - 1) / kRowsPerBlock), kThreads, 0, stream>>>(
        x, delta, w, y, rows, dim, eps);
  else
    rms_norm_block_kernel<<<grid_for(rows), kThreads, 0, stream>>>(x, delta, w, y, rows, dim, eps);
  check_launch(delta ? "add_rms_norm" : "rms_norm");
}

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps, cudaStream_t stream) {
  launch_norm(const_cast<float*>(x), nullptr, w, y, rows, dim, eps, stream);  // written only with a delta
}

void add_rms_norm(float* x, const float* delta, const float* w, float* y, int64_t rows, int64_t dim, float eps,
                  cudaStream_t stream) {
  launch_norm(x, delta, w, y, rows, dim, eps, stream);
}

}  // namespace hi::cuda
