// Activations quantised to 8-bit blocks, the right-hand side of the integer
// dot products in the CPU matmul kernels.
#pragma once
#include <cstdint>

#include "../../kernels/common/quant_blocks.h"

namespace hi {

struct ActBlock {
  float d;         // scale: x ~= d * qs
  int16_t sum[2];  // (2,) sum of qs over each 16-value half, for the weight offsets
  int8_t qs[QK];   // (32,) codes in [-127, 127]
};
static_assert(sizeof(ActBlock) == 40, "ActBlock layout");

// x: (k,) floats, k a multiple of 32 -> out: (k/32,) blocks.
void quantize_activations(const float* x, ActBlock* out, int64_t k);

}  // namespace hi
