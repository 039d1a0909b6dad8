// The per-path row kernels behind matmul(); internal to the CPU backend.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../qtypes.h"
#include "act_q8.h"

namespace hi {

struct MatmulArgs {
  QType type;
  const uint8_t* w;    // (rows, row_bytes) weights
  size_t row_bytes;    // bytes of one weight row
  int64_t k;           // values per row
  const ActBlock* act; // (n, k/32) quantised activations; quantised types only
  const float* x;      // (n, k) float activations; float types only
  int64_t n;           // activation rows
  float* y;            // (n, rows) output
  int64_t rows;        // weight rows (the stride of y)
};

// Computes y[:, r0:r1].
void matmul_rows_scalar(const MatmulArgs& a, int64_t r0, int64_t r1);
void matmul_rows_avx2(const MatmulArgs& a, int64_t r0, int64_t r1);

}  // namespace hi
