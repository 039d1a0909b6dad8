// A stage's activations for a batch of up to max_tokens tokens, carved from
// one device buffer allocated when the stage is built, so a forward pass
// allocates nothing and the planner knows the compute-buffer size exactly.
#pragma once
#include <cstddef>
#include <cstdint>

#include "block_config.h"

namespace hi {

// Distinct attention windows a stage may have (gemma3: global and one sliding size).
constexpr int kMaxWindows = 2;

// A step's token metadata (pos, cells, begin, end, visible) lies in that order
// at the buffer's start, so one copy uploads it (Stage::upload_step).
struct Workspace {
  float* hidden;  // (n, n_embd) the residual stream, copied in and out of the stage
  float* normed;  // (n, n_embd) the normed residual stream
  float* delta;   // (n, n_embd) a block's output before it joins the residual
  // Attention phase.
  float* q;       // (n, n_head, head_dim_k)
  float* k;       // (n, n_head_kv, head_dim_k); also key rows re-rotated by a context shift
  float* v;       // (n, n_head_kv, head_dim_v)
  float* attn;    // (n, n_head, head_dim_v)
  float* attn_parts;  // attention_parts_floats(n, n_head, head_dim_v): a split decode step's partial results
  // Feed-forward phase, sharing the attention phase's bytes.
  float* gate;    // (n, n_ff)
  float* up;      // (n, n_ff)
  void* act;      // matmul_scratch_bytes for the widest input: quantised activations
  // A step's token metadata, uploaded before the layers run.
  int32_t* pos;      // (n,) positions; the rotation by a context shift's delta
  int32_t* cells;    // (n,) the KV cells the tokens are written to; a context shift's cells
  int32_t* visible;  // (n_cells,) the cells of the batch's sequences, in attention order
  int64_t* begin[kMaxWindows];  // (n,) per window: each query's first visible cell in `visible`
  int64_t* end[kMaxWindows];    // (n,) per window: one past its last

  // Offsets of each field from the buffer's start for max_tokens tokens and a
  // cache of n_cells cells; base null gives the layout's total size in `bytes`.
  static Workspace layout(const BlockConfig& cfg, int64_t max_tokens, int64_t n_cells, uint8_t* base,
                          size_t* bytes);
};

// Quantised activation bytes for the widest input any matmul of the block takes
// (n tokens): the matmul scratch of a stage, and of each device of a row split.
size_t act_scratch_bytes(const BlockConfig& cfg, int64_t n);

// Bytes of a stage's workspace (the planner's compute-buffer figure).
size_t stage_workspace_bytes(const BlockConfig& cfg, int64_t max_tokens, int64_t n_cells);

}  // namespace hi
