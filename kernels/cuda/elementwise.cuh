// Activations, gating and element-wise updates (csrc/cpu/ops.cpp semantics).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "op_types.h"

namespace hi::cuda {

// out = act(gate) * up over n values; out may be gate.
void gated_activation(const float* gate, const float* up, float* out, int64_t n, Activation act,
                      cudaStream_t stream);
void add(float* x, const float* y, int64_t n, cudaStream_t stream);                         // x += y, (n,)
void add_bias(float* y, const float* b, int64_t rows, int64_t cols, cudaStream_t stream);  // y (rows, cols) += b (cols,)
void softcap(float* x, int64_t n, float cap, cudaStream_t stream);                         // x = cap tanh(x / cap)

}  // namespace hi::cuda
