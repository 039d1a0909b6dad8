// The per-path row kernels behind matmul_rounded(); internal to the CPU backend.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../qtypes.h"
#include "act_q8.h"

namespace hi {

struct MatmulArgs {
  QType type;
  const uint8_t* w;    // (rows, row_stride) weights; row r starts at w + r * row_stride
  size_t row_stride;   // bytes from one weight row to the next (>= the row's own size)
  int64_t k;           // values per row
  const ActBlock* act;     // (n, k/32) quantised activations; 32-value block types only
  const ActBlockK* act_k;  // (n, k/256) quantised activations; K-quant types only
  const float* x;      // (n, k) float activations; float types only
  int64_t n;           // activation rows
  float* y;            // (n, rows) output
  int64_t rows;        // weight rows (the stride of y)
};

// The quantised activations a kernel for weight blocks paired with Act reads.
template <typename Act> const Act* activations(const MatmulArgs& a);
template <> inline const ActBlock* activations<ActBlock>(const MatmulArgs& a) { return a.act; }
template <> inline const ActBlockK* activations<ActBlockK>(const MatmulArgs& a) { return a.act_k; }

// Computes y[:, r0:r1].
void matmul_rows_scalar(const MatmulArgs& a, int64_t r0, int64_t r1);
void matmul_rows_avx2(const MatmulArgs& a, int64_t r0, int64_t r1);
// Prefill tiles of eight rows for the quantised block types (matmul_avx2_tiles.cpp):
// computes y[:, r0:r] for the largest r <= r1 it can and returns r (r0 for other types).
int64_t matmul_tiles_avx2(const MatmulArgs& a, int64_t r0, int64_t r1);

}  // namespace hi
