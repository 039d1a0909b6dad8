// Row gather (embedding lookup, cache read) and row scatter (KV cache write).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "op_types.h"

namespace hi::cuda {

// out (n, cols) = dequantised rows ids[i] of table (any type) * scale.
// planar: the table's quantised rows are planar rows (placed weights on a
// device that holds them so, planar_blocks.h); a cache's never are.
void get_rows(QType type, const uint8_t* table, int64_t cols, const int32_t* ids, int64_t n, float scale, float* out,
              bool planar, cudaStream_t stream);
// Quantises a.src (n, a.cols) into rows ids[i] of a.table (f32, f16, q8_0,
// q4_0), byte-identical to the CPU's quantisers, and b's the same way when b
// is not null, in one launch (a layer's keys and values).
void set_rows(const RowsTarget& a, const RowsTarget* b, const int32_t* ids, int64_t n, cudaStream_t stream);

}  // namespace hi::cuda
