#include "workspace.h"

#include <algorithm>

#include "../cpu/matmul.h"
#include "../device/device.h"

namespace hi {

namespace {

// Hands out consecutive 64-byte aligned pieces of a buffer (or just counts them).
struct Carver {
  uint8_t* base;
  size_t offset = 0;
  void* take(size_t bytes) {
    void* p = base ? base + offset : nullptr;
    offset += align_up(bytes);
    return p;
  }
  float* floats(int64_t n) { return static_cast<float*>(take(size_t(n) * sizeof(float))); }
  int32_t* int32s(int64_t n) { return static_cast<int32_t*>(take(size_t(n) * sizeof(int32_t))); }
  int64_t* int64s(int64_t n) { return static_cast<int64_t*>(take(size_t(n) * sizeof(int64_t))); }
};

}  // namespace

size_t act_scratch_bytes(const BlockConfig& c, int64_t n) {
  size_t most = 0;
  for (int64_t k : {c.n_embd, c.n_head * c.head_dim_v, c.n_ff})
    most = std::max({most, matmul_scratch_bytes(QType::Q8_0, n, k), matmul_scratch_bytes(QType::Q4_K, n, k)});
  return most;
}

Workspace Workspace::layout(const BlockConfig& c, int64_t n, int64_t n_cells, uint8_t* base, size_t* bytes) {
  Workspace w{};
  Carver carve{base};
  // A step's token metadata first, visible last, so one copy from pos to the
  // used part of visible uploads it all (Stage::upload_step); hidden, whose
  // max_tokens rows such a copy would mostly carry for nothing, goes on its own.
  w.pos = carve.int32s(n);
  w.cells = carve.int32s(n);
  for (int i = 0; i < kMaxWindows; ++i) {
    w.begin[i] = carve.int64s(n);
    w.end[i] = carve.int64s(n);
  }
  w.visible = carve.int32s(n_cells);
  w.hidden = carve.floats(n * c.n_embd);
  w.normed = carve.floats(n * c.n_embd);
  w.delta = carve.floats(n * c.n_embd);
  w.act = carve.take(act_scratch_bytes(c, n));
  const size_t phase_start = carve.offset;
  w.q = carve.floats(n * c.n_head * c.head_dim_k);
  w.k = carve.floats(n * c.n_head_kv * c.head_dim_k);
  w.v = carve.floats(n * c.n_head_kv * c.head_dim_v);
  w.attn = carve.floats(n * c.n_head * c.head_dim_v);
  w.attn_parts = carve.floats(attention_parts_floats(n, c.n_head, c.head_dim_v));
  const size_t attention_end = carve.offset;
  carve.offset = phase_start;
  w.gate = carve.floats(n * c.n_ff);
  w.up = carve.floats(n * c.n_ff);
  if (bytes) *bytes = std::max(attention_end, carve.offset);
  return w;
}

size_t stage_workspace_bytes(const BlockConfig& cfg, int64_t max_tokens, int64_t n_cells) {
  size_t bytes = 0;
  Workspace::layout(cfg, max_tokens, n_cells, nullptr, &bytes);
  return bytes;
}

}  // namespace hi
