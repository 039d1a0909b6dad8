// Attention over a KV cache on the CPU, flash style: scores for a tile of
// cells at a time, an online softmax across tiles, and K/V read in their cache
// type (f32, f16, q8_0, q4_0) without materialising a float copy of the cache.
#pragma once
#include <cstdint>
#include <vector>

#include "../device/op_types.h"

namespace hi {

// The cells of a batch's sequences in position order, and for each query
// token the slice of them it may see: same sequence, not in its future and
// (sliding window w > 0) fewer than w positions back. Attention visits a
// query's slice in order, in tiles counted from the slice's start, so a
// token's result depends only on its own sequence: not on where the cells lie
// in the cache nor on what else shares the batch. Batched requests therefore
// give bit-identical results to each request alone.
class VisibleCells {
 public:
  // cell_seq, cell_pos: (n_cells,) per cell, seq -1 = empty; q_seq: (n_q,).
  VisibleCells(const int32_t* cell_seq, const int32_t* cell_pos, int64_t n_cells, const int32_t* q_seq,
               int64_t n_q);
  // Sets each query's slice for a sliding window (0 = none). q_pos: (n_q,).
  void select(const int32_t* q_seq, const int32_t* q_pos, int32_t window);

  int64_t n_cells() const { return int64_t(cells_.size()); }
  int64_t n_q() const { return int64_t(begin_.size()); }
  // The current selection in host memory.
  AttnCells slices() const { return {cells_.data(), begin_.data(), end_.data()}; }

 private:
  struct Run {  // one sequence's cells: cells_[first, last)
    int32_t seq;
    int64_t first, last;
  };
  std::vector<int32_t> cells_, pos_;  // (cells of the batch's sequences,) sorted by (seq, pos, cell)
  std::vector<Run> runs_;             // sorted by seq
  std::vector<int64_t> begin_, end_;  // (n_q,) each query's slice of cells_
};

// q: (n_q, n_head, k.head_dim) -> out: (n_q, n_head, v.head_dim).
// Query head h reads KV head h / (n_head / n_head_kv) (GQA). softcap 0 = none.
// A query that sees no cell gets zeros. Runs on the CPU pool.
void flash_attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                     const AttnCells& cells, float scale, float softcap, float* out);

}  // namespace hi
