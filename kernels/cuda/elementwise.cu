// Activations, gating and element-wise updates (csrc/cpu/ops.cpp semantics;
// kernels/sycl/elementwise.cpp). One thread per element in a grid-stride
// loop over int64 indices. expf / tanhf are the accurate versions (this file
// must not be built with --use_fast_math).
#include "elementwise.cuh"

#include <climits>

#include "cuda_common.cuh"
#include "gating.cuh"

namespace hi::cuda {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return unsigned(blocks < INT_MAX ? blocks : INT_MAX);
}

#define HI_FOR_EACH(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < (n); i += int64_t(gridDim.x) * kThreads)

template <Activation A>
__global__ void __launch_bounds__(kThreads) gated_kernel(const float* gate, const float* up, float* out, int64_t n) {
  HI_FOR_EACH(i, n) {
    out[i] = gated_value(A, gate[i], up[i]);
  }
}

__global__ void __launch_bounds__(kThreads) add_kernel(float* x, const float* y, int64_t n) {
  HI_FOR_EACH(i, n) x[i] = __fadd_rn(x[i], y[i]);
}

__global__ void __launch_bounds__(kThreads) add_bias_kernel(float* y, const float* b, int64_t rows, int64_t cols) {
  HI_FOR_EACH(i, rows * cols) y[i] = __fadd_rn(y[i], b[i % cols]);
}

__global__ void __launch_bounds__(kThreads) softcap_kernel(float* x, int64_t n, float cap) {
  HI_FOR_EACH(i, n) x[i] = cap * tanhf(x[i] / cap);
}

#undef HI_FOR_EACH

}  // namespace

void gated_activation(const float* gate, const float* up, float* out, int64_t n, Activation act,
                      cudaStream_t stream) {
  if (n <= 0) return;
  if (act == Activation::Silu)
    gated_kernel<Activation::Silu><<<grid_for(n), kThreads, 0, stream>>>(gate, up, out, n);
  else
    gated_kernel<Activation::GeluTanh><<<grid_for(n), kThreads, 0, stream>>>(gate, up, out, n);
  check_launch("gated_activation");
}

void add(float* x, const float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, y, n);
  check_launch("add");
}

void add_bias(float* y, const float* b, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  add_bias_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(y, b, rows, cols);
  check_launch("add_bias");
}

void softcap(float* x, int64_t n, float cap, cudaStream_t stream) {
  if (n <= 0) return;
  softcap_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, n, cap);
  check_launch("softcap");
}

}  // namespace hi::cuda
