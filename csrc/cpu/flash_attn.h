// Attention over a KV cache on the CPU, flash style: scores for a tile of
// cells at a time, an online softmax across tiles, and K/V read in their cache
// type (f32, f16, q8_0, q4_0) without materialising a float copy of the cache.
#pragma once
#include <cstdint>

#include "../qtypes.h"

namespace hi {

// A cache tensor: (n_cells, n_head_kv, head_dim) values of `type`; each head
// vector is row_bytes(type, head_dim) bytes.
struct KVView {
  QType type;
  const uint8_t* data;
  int64_t n_cells, n_head_kv, head_dim;
};

// Which cells a query token may see: same sequence, not in its future, and
// (with a sliding window w > 0) fewer than w positions back.
struct AttnMask {
  const int32_t* q_seq;     // (n_q,) sequence id of each query token
  const int32_t* q_pos;     // (n_q,) position of each query token
  const int32_t* cell_seq;  // (n_cells,) sequence id per cell; -1 = empty
  const int32_t* cell_pos;  // (n_cells,) position per cell
  int32_t window;           // 0 = no sliding window
};

// q: (n_q, n_head, k.head_dim) -> out: (n_q, n_head, v.head_dim).
// Query head h reads KV head h / (n_head / n_head_kv) (GQA). softcap 0 = none.
// A query that sees no cell gets zeros. Runs on the CPU pool.
void flash_attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                     const AttnMask& mask, float scale, float softcap, float* out);

}  // namespace hi
