// Quantised weight x float activation products on the CPU: y = x @ W^T.
#pragma once
#include <cstdint>

#include "../qtypes.h"

namespace hi {

// w: (rows, k) in `type`, rows packed back to back, 2-byte aligned;
// x: (n, k) float32; y: (n, rows) float32. n = 1 is decode, n > 1 prefill.
// Quantised types quantise x to 8-bit blocks and use integer dot products;
// F32/F16/BF16 weights multiply x in float. Runs on the CPU pool with the
// kernel path from cpu_features.h. act_scratch: matmul_scratch_bytes(type, n, k)
// bytes for the quantised activations, or null to allocate them per call.
void matmul(QType type, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y,
            void* act_scratch = nullptr);

// Bytes of quantised activations matmul needs for (n, k) inputs and `type` weights.
size_t matmul_scratch_bytes(QType type, int64_t n, int64_t k);

}  // namespace hi
