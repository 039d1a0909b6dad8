// What the generic decoder block needs to know: one config for a model, a few
// per-layer parameters, and the layer's weights as views of the GGUF mapping.
// llama, qwen2, qwen3 and gemma3 are settings of these, not separate code.
#pragma once
#include <cstdint>

#include "../cpu/ops.h"
#include "../qtypes.h"

namespace hi {

struct BlockConfig {
  int64_t n_embd = 0;
  int64_t n_head = 0, n_head_kv = 0;
  int64_t head_dim_k = 0, head_dim_v = 0;
  int64_t n_ff = 0;
  int64_t n_rot = 0;              // dimensions RoPE rotates (<= head_dim_k)
  float rms_eps = 1e-6f;
  float attn_scale = 1.0f;        // multiplies q . k
  float attn_softcap = 0.0f;      // 0 = none
  RopeStyle rope_style = RopeStyle::Normal;
  Activation activation = Activation::Silu;
};

struct LayerParams {
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  int32_t window = 0;             // sliding-window size; 0 = global attention
};

// A weight matrix (rows, cols) of `type`, rows packed, or a float vector (rows = 1).
struct Weight {
  QType type = QType::F32;
  const uint8_t* data = nullptr;  // nullptr = absent
  int64_t rows = 0, cols = 0;
  bool present() const { return data != nullptr; }
  size_t bytes() const { return size_t(rows) * row_bytes(type, cols); }
  const float* f32() const { return reinterpret_cast<const float*>(data); }
};

struct LayerWeights {
  Weight attn_norm, wq, wk, wv, wo;
  Weight bq, bk, bv;              // qwen2 biases
  Weight q_norm, k_norm;          // qwen3, gemma3: RMSNorm over each head
  Weight post_attn_norm;          // gemma3
  Weight ffn_norm, w_gate, w_up, w_down;
  Weight post_ffn_norm;           // gemma3
};

}  // namespace hi
