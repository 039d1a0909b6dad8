// RMSNorm, alone or after a residual add.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace hi::cuda {

// y (rows, dim) = x / sqrt(mean(x^2) + eps) * w; w: (dim,) or null. x may be y.
void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps, cudaStream_t stream);
// x (rows, dim) += delta, then y = rms_norm(x) * w, as add then rms_norm give it. y may not be x.
void add_rms_norm(float* x, const float* delta, const float* w, float* y, int64_t rows, int64_t dim, float eps,
                  cudaStream_t stream);

}  // namespace hi::cuda
