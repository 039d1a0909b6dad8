// Per-token ops of the decoder block on the CPU (norms, RoPE, gated
// activations, elementwise). Every op has a numpy reference in tests/test_ops_cpu.py.
#pragma once
#include <cstdint>

#include "../device/op_types.h"

namespace hi {

// y = x / sqrt(mean(x^2) + eps) * w per row. x, y: (rows, dim); w: (dim,) or null (no weight).
void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps);

// In-place rotary embedding. x: (n_tokens, n_heads, head_dim); pos: (n_tokens,).
// Angle of pair i: pos * freq_scale * base^(-2i / n_rot); dims past n_rot untouched.
void rope(float* x, const int32_t* pos, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t n_rot,
          float base, float freq_scale, RopeStyle style);

// out = act(gate) * up, elementwise over n values (SwiGLU / GeGLU feed-forward).
void gated_activation(const float* gate, const float* up, float* out, int64_t n, Activation act);

// y = cap * tanh(x / cap), elementwise, in place (logit soft-capping).
void softcap(float* x, int64_t n, float cap);

}  // namespace hi
