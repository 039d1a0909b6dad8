// The per-thread halves of an RMS norm row, shared by the CUDA and SYCL norm
// kernels (kernels/cuda/norm.cu, kernels/sycl/elementwise.cpp), each thread
// taking the elements first, first + step, ... of a row and only those, so a
// norm may write over its input. Compiles as CUDA and as SYCL device code.
#pragma once
#include <cstdint>

#include "float_bits.h"

namespace hi {

// Sum of squares of the thread's elements of row xr (dim,). With a delta row
// dr (add_rms_norm), each element is first x + delta, stored back to xr: one
// rounding, as an add before the norm gives.
HI_HD float add_sum_squares(float* xr, const float* dr, int64_t dim, int64_t first, int64_t step) {
  float s = 0.0f;
  for (int64_t i = first; i < dim; i += step) {
    float v = xr[i];
    if (dr) {
      v = v + dr[i];
      xr[i] = v;
    }
    s += v * v;
  }
  return s;
}

// yr = xr * inv * w over the thread's elements; w (dim,) or null.
HI_HD void scale_row(const float* xr, const float* w, float* yr, float inv, int64_t dim, int64_t first, int64_t step) {
  for (int64_t i = first; i < dim; i += step) yr[i] = xr[i] * inv * (w ? w[i] : 1.0f);
}

}  // namespace hi
