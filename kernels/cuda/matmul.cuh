// y = x W^T for every weight type on a CUDA stream, from activations rounded
// to the CPU's 8-bit blocks (act_q8.cuh): few tokens go to the matvec
// (mmvq.cuh), many to the tiled matmul (mmq.cuh).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "op_types.h"

namespace hi::cuda {

// Tokens up to which the matvec runs (decode and parallel batches of up to 16
// sequences). It takes tokens 8 a pass, each warp re-reading its row from
// L1/L2 for the second; the tiled matmul would give a 4096-row matrix only 64
// blocks of 128 threads for 132 SMs at these sizes (64 rows a block).
constexpr int64_t kMatvecTokens = 16;

// y_i (n, rows_i) = x (n, k) W_i^T for outs[0 .. n_outs) (Device::matmuls),
// whose weights all pair with one activation kind: act holds x's activation
// blocks of it (quantize_act: device memory, 16-byte aligned), or is null when
// the weights are floats (f32, f16, bf16). Quantised rows are planar rows
// (planar_blocks.h) when `planar`. The matvec runs neighbouring products of
// one type in one launch (q, k and v), the tiled matmul one product at a time.
void matmul(const MatmulOut* outs, size_t n_outs, int64_t k, const float* x, const uint8_t* act, int64_t n,
            bool planar, cudaStream_t stream);

}  // namespace hi::cuda
