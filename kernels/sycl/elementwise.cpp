// Norm, RoPE, activations and element-wise updates (csrc/cpu/ops.cpp semantics).
#include "hi_sycl_common.h"
#include "norm_rows.h"

namespace {
inline sycl::nd_item<1> item() { return syclext::this_work_item::get_nd_item<1>(); }
inline int64_t gid() { return int64_t(item().get_global_id(0)); }
}  // namespace

// x, y: (rows, dim); w: (dim,) or null; delta: (rows, dim) added to x and
// stored there first (add_rms_norm: one launch for add then norm), or null:
// x is only read. One work-group per row (local 64, global rows*64); sum of
// squares in float through a group reduction. Each work-item writes only the
// elements it read, so y == x is fine without a delta.
HI_KERNEL hi_rms_norm(float* x, const float* delta, const float* w, float* y, int64_t rows, int64_t dim,
                      float eps) {
  const sycl::nd_item<1> it = item();
  const int64_t r = int64_t(it.get_group_linear_id());
  if (r >= rows) return;
  const int64_t lid = int64_t(it.get_local_id(0)), nl = int64_t(it.get_local_range(0));
  float* xr = x + r * dim;
  const float s = hi::group_sum(it, hi::add_sum_squares(xr, delta ? delta + r * dim : nullptr, dim, lid, nl));
  hi::scale_row(xr, w, y + r * dim, 1.0f / sycl::sqrt(s / float(dim) + eps), dim, lid, nl);
}

// x: (n_tokens, n_heads, head_dim) and x2: (n_tokens, n_heads2, head_dim) (q
// and k; n_heads2 0 for one tensor) in place; pos: (n_tokens,). One work-item
// per (token, head, pair), a token's heads of x then of x2. global
// round_up(n_tokens*(n_heads + n_heads2)*(n_rot/2), 64).
// The CPU forms the angle in double; here pos*freq_scale*inv_freq is kept as
// an exact float pair (hi + lo, via fma) and sin/cos(hi + lo) are corrected
// to first order in lo, so large positions lose no more than the float
// inv_freq itself.
HI_KERNEL hi_rope(float* x, int64_t n_heads, float* x2, int64_t n_heads2, const int32_t* pos, int64_t n_tokens,
                  int64_t head_dim, int64_t n_rot, float base, float freq_scale, int32_t neox) {
  const int64_t half = n_rot / 2, heads = n_heads + n_heads2, i = gid();
  if (half <= 0 || i >= n_tokens * heads * half) return;
  const int64_t p = i % half, th = i / half, t = th / heads, h = th % heads;
  const float inv_freq = sycl::pow(base, -2.0f * float(p) / float(n_rot));
  const float pf = float(pos[t]);
  const float a_hi = pf * freq_scale, a_lo = sycl::fma(pf, freq_scale, -a_hi);  // pos*freq_scale exactly
  const float hi_ = a_hi * inv_freq;
  const float lo_ = sycl::fma(a_hi, inv_freq, -hi_) + a_lo * inv_freq;           // angle = hi_ + lo_
  float c;
  const float s0 = sycl::sincos(hi_, &c);
  const float sn = s0 + lo_ * c, cs = c - lo_ * s0;
  float* v = h < n_heads ? x + (t * n_heads + h) * head_dim : x2 + (t * n_heads2 + h - n_heads) * head_dim;
  const int64_t a = neox ? p : 2 * p, b = neox ? p + half : 2 * p + 1;
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * cs - x1 * sn;
  v[b] = x0 * sn + x1 * cs;
}

// out = act(gate) * up; act 0 = silu, 1 = gelu (tanh form). out may be gate.
HI_KERNEL hi_gated(const float* gate, const float* up, float* out, int64_t n, int32_t act) {
  const int64_t i = gid();
  if (i >= n) return;
  const float g = gate[i];
  float a;
  if (act == 0) {
    a = g / (1.0f + sycl::exp(-g));
  } else {
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    a = 0.5f * g * (1.0f + sycl::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
  }
  out[i] = a * up[i];
}

HI_KERNEL hi_add(float* x, const float* y, int64_t n) {
  const int64_t i = gid();
  if (i < n) x[i] += y[i];
}

HI_KERNEL hi_softcap(float* x, int64_t n, float cap) {
  const int64_t i = gid();
  if (i < n) x[i] = cap * sycl::tanh(x[i] / cap);
}

// y: (n_rows, cols) += b: (cols,)
HI_KERNEL hi_add_bias(float* y, const float* b, int64_t n_rows, int64_t cols) {
  const int64_t i = gid();
  if (i < n_rows * cols) y[i] += b[i % cols];
}
