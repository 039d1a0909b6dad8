// Tiled matmul for prefill: y (n, rows) = x W^T for many tokens.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "quant_blocks.h"

namespace hi::cuda {

// act: x's activation blocks (act_q8.cuh) for quantised types, else null.
// planar: quantised rows of w are planar rows (planar_blocks.h).
void mmq(QType type, const uint8_t* w, int64_t rows, int64_t k, const float* x, const uint8_t* act, int64_t n,
         float* y, bool planar, cudaStream_t stream);

}  // namespace hi::cuda
