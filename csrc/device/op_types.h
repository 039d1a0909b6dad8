// The argument types of the device op set (device.h), shared by every backend.
#pragma once
#include <cstdint>

#include "../qtypes.h"

namespace hi {

enum class RopeStyle {
  Normal,  // rotates pairs (x[2i], x[2i+1]) - llama
  Neox,    // rotates pairs (x[i], x[i + n_rot/2]) - qwen2, qwen3, gemma3
};

enum class Activation { Silu, GeluTanh };

// What a get_rows table holds: weights placed with Device::place_weights (in
// the device's weight layout), or rows a KV cache wrote with set_rows.
enum class Table { Weights, Cache };

// A cache tensor in device memory: (n_cells, n_head_kv, head_dim) values of
// `type`; each head vector is row_bytes(type, head_dim) bytes.
struct KVView {
  QType type;
  const uint8_t* data;
  int64_t n_cells, n_head_kv, head_dim;
};

// Which cells each query token attends to, in device memory: query t sees
// cells[begin[t] .. end[t]) in that order (see VisibleCells).
struct AttnCells {
  const int32_t* cells;  // (cells of the batch's sequences,)
  const int64_t* begin;  // (n_q,)
  const int64_t* end;    // (n_q,)
};

// A decode step's attention may split each query's cells among up to
// kAttnSplits blocks (split-KV: a GPU's SMs share a long context instead of
// one block per query head walking all of it) and merge their partial
// results, which it keeps in `parts` (Device::attention).
constexpr int64_t kAttnSplitTokens = 16;  // steps of up to this many queries may split
constexpr int64_t kAttnSplits = 8;
// Floats of `parts` for n_q queries of n_head heads and d_v-value outputs: per
// (query, head, split) the d_v unnormalised sums, the softmax sum and its max.
inline int64_t attention_parts_floats(int64_t n_q, int64_t n_head, int64_t d_v) {
  return (n_q < kAttnSplitTokens ? n_q : kAttnSplitTokens) * n_head * kAttnSplits * (d_v + 2);
}

// One table of Device::set_rows_pair: src (n, cols) quantised into rows of
// table (f32, f16, q8_0, q4_0).
struct RowsTarget {
  QType type;
  uint8_t* table;
  int64_t cols;
  const float* src;
};

// One product of a matmul group (Device::matmuls): y (n, rows) = x (n, k) @ w^T,
// w: (rows, k) of `type`, placed (Device::place_weights).
struct MatmulOut {
  QType type;
  const uint8_t* w;
  int64_t rows;
  float* y;  // (n, rows)
};

}  // namespace hi
