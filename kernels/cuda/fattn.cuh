// Flash attention over the KV cache, for decode and prefill
// (csrc/cpu/flash_attn.cpp semantics).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "op_types.h"

namespace hi::cuda {

// q (n_q, n_head, k.head_dim) -> out (n_q, n_head, v.head_dim): query t sees
// cells.cells[begin[t] .. end[t]) in that order (device memory). K and V are
// f32, f16, q8_0 or q4_0; head sizes up to 256; n_head a multiple of
// n_head_kv (the caller checks these). parts: attention_parts_floats(n_q,
// n_head, v.head_dim) floats (op_types.h) for a split step, or null: a decode
// step over a cache of more than 512 cells splits each query's cells among up
// to kAttnSplits blocks, whose partial results a second kernel merges.
void attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v, const AttnCells& cells,
               float scale, float softcap, float* out, float* parts, cudaStream_t stream);

}  // namespace hi::cuda
