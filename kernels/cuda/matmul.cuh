// y = x W^T for every weight type on a CUDA stream: activations are rounded to
// the CPU's 8-bit blocks (act_q8.cuh), then few tokens go to the matvec
// (mmvq.cuh) and many to the tiled matmul (mmq.cuh).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "quant_blocks.h"

namespace hi::cuda {

// Tokens up to which the matvec runs (decode and small parallel batches).
constexpr int64_t kMatvecTokens = 8;

// w: (rows, k) of `type`, rows packed, quantised rows planar (planar_blocks.h)
// when `planar`; x: (n, k) floats; y: (n, rows) floats. scratch:
// matmul_scratch_bytes(type, n, k) bytes of device memory (the activation
// blocks), 16-byte aligned, unused for float types.
void matmul(QType type, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y,
            void* scratch, bool planar, cudaStream_t stream);

}  // namespace hi::cuda
