// Matvec for decode: y (n, rows) = x W^T for n <= kMatvecTokens tokens.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "op_types.h"
#include "quant_blocks.h"

namespace hi::cuda {

// Products of one input that one launch runs: q, k and v.
constexpr int kMatvecOuts = 3;

// y_i (n, rows_i) = x W_i^T for outs[0 .. count) (count <= kMatvecOuts), all
// of one type and width k, as one launch. act: x's activation blocks
// (act_q8.cuh) for quantised types, else null. planar: quantised rows are
// planar rows (planar_blocks.h); read with 16-byte loads where
// chunk_words.cuh says they can be.
void mmvq(const MatmulOut* outs, int count, int64_t k, const float* x, const uint8_t* act, int64_t n, bool planar,
          cudaStream_t stream);

}  // namespace hi::cuda
