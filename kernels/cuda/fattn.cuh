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
// n_head_kv (the caller checks these).
void attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v, const AttnCells& cells,
               float scale, float softcap, float* out, cudaStream_t stream);

}  // namespace hi::cuda
