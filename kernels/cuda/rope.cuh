// Rotary position embedding, in place.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "op_types.h"

namespace hi::cuda {

// x: (n_tokens, n_heads, head_dim); pos: (n_tokens,) device memory. The
// first n_rot dims of each head rotate (csrc/cpu/ops.h semantics).
void rope(float* x, const int32_t* pos, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t n_rot,
          float base, float freq_scale, RopeStyle style, cudaStream_t stream);

}  // namespace hi::cuda
