// y = x W^T for every weight type on a CUDA stream: activations are rounded to
// the CPU's 8-bit blocks (act_q8.cuh), then few tokens go to the matvec
// (mmvq.cuh) and many to the tiled matmul (mmq.cuh).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "quant_blocks.h"

namespace hi::cuda {

// Tokens up to which the matvec runs (decode and parallel batches of up to 16
// sequences). It takes tokens 8 a pass, each warp re-reading its row from
// L1/L2 for the second; the tiled matmul would give a 4096-row matrix only 64
// blocks of 128 threads for 132 SMs at these sizes (64 rows a block).
constexpr int64_t kMatvecTokens = 16;

// w: (rows, k) of `type`, rows packed, quantised rows planar (planar_blocks.h)
// when `planar`; x: (n, k) floats; y: (n, rows) floats. scratch:
// matmul_scratch_bytes(type, n, k) bytes of device memory (the activation
// blocks), 16-byte aligned, unused for float types.
void matmul(QType type, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y,
            void* scratch, bool planar, cudaStream_t stream);

}  // namespace hi::cuda
