// K-quant quantisers: each searches the scales (and mins) of every sub-block
// for the smallest squared error rather than taking max/min as they come.
#pragma once
#include <cstdint>

#include "../../kernels/common/quant_blocks.h"

namespace hi {

// x: (n_blocks * 256,) floats -> y: (n_blocks,) blocks.
void quantize_blocks(const float* x, block_q2_K* y, int64_t n_blocks);
void quantize_blocks(const float* x, block_q3_K* y, int64_t n_blocks);
void quantize_blocks(const float* x, block_q4_K* y, int64_t n_blocks);
void quantize_blocks(const float* x, block_q5_K* y, int64_t n_blocks);
void quantize_blocks(const float* x, block_q6_K* y, int64_t n_blocks);

}  // namespace hi
