// Activations quantised to 8-bit blocks, the right-hand side of the integer
// dot products in the CPU matmul kernels. The block layouts (ActBlock,
// ActBlockK), the block quantiser and the chunk view live in
// kernels/common/act_blocks.h, shared with the device kernels so every
// backend rounds activations identically.
#pragma once
#include <cstdint>

#include "../../kernels/common/act_blocks.h"

namespace hi {

// x: (k,) floats -> out: (k/32,) or (k/256,) blocks; k a multiple of the block.
void quantize_activations(const float* x, ActBlock* out, int64_t k);
void quantize_activations(const float* x, ActBlockK* out, int64_t k);

}  // namespace hi
