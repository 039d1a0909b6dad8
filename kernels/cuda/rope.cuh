// Rotary position embedding, in place.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "op_types.h"

namespace hi::cuda {

// x: (n_tokens, n_heads, head_dim) and, unless x2 is null, x2 (n_tokens,
// n_heads2, head_dim), in one launch; pos: (n_tokens,) device memory. The
// first n_rot dims of each head rotate (csrc/cpu/ops.h semantics).
void rope(float* x, int64_t n_heads, float* x2, int64_t n_heads2, const int32_t* pos, int64_t n_tokens,
          int64_t head_dim, int64_t n_rot, float base, float freq_scale, RopeStyle style, cudaStream_t stream);

}  // namespace hi::cuda
