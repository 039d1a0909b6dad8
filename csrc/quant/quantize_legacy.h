// Quantisers for the 32-value block types. They follow ggml's reference
// rounding (the one gguf.quants.quantize reproduces), so their bytes equal
// gguf.quants.quantize's: tests check that bit for bit.
#pragma once
#include <cstdint>

#include "../../kernels/common/quant_blocks.h"

namespace hi {

// x: (n_blocks * 32,) floats -> y: (n_blocks,) blocks.
void quantize_blocks(const float* x, block_q4_0* y, int64_t n_blocks);
void quantize_blocks(const float* x, block_q4_1* y, int64_t n_blocks);
void quantize_blocks(const float* x, block_q5_0* y, int64_t n_blocks);
void quantize_blocks(const float* x, block_q5_1* y, int64_t n_blocks);
void quantize_blocks(const float* x, block_q8_0* y, int64_t n_blocks);

}  // namespace hi
