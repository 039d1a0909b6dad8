#include "ops.h"

#include <cmath>
#include <vector>

#include "thread_pool.h"

namespace hi {

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  parallel_ranges(cpu_pool(), rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      double sum = 0.0;  // double: rows of 8192+ values lose digits in a float sum
      for (int64_t i = 0; i < dim; ++i) sum += double(xr[i]) * xr[i];
      const float inv = float(1.0 / std::sqrt(sum / double(dim) + double(eps)));
      for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * (w ? w[i] : 1.0f);
    }
  });
}

void rope(float* x, const int32_t* pos, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t n_rot,
          float base, float freq_scale, RopeStyle style) {
  const int64_t half = n_rot / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));  // (n_rot/2,) base^(-2i/n_rot)
  for (int64_t i = 0; i < half; ++i) inv_freq[size_t(i)] = float(std::pow(double(base), -2.0 * double(i) / double(n_rot)));
  parallel_ranges(cpu_pool(), n_tokens, 4, [&](int64_t t0, int64_t t1) {
    std::vector<float> cos_t(static_cast<size_t>(half)), sin_t(static_cast<size_t>(half));  // (n_rot/2,) per token
    for (int64_t t = t0; t < t1; ++t) {
      const double p = double(pos[t]) * double(freq_scale);
      for (int64_t i = 0; i < half; ++i) {
        const double angle = p * double(inv_freq[size_t(i)]);
        cos_t[size_t(i)] = float(std::cos(angle));
        sin_t[size_t(i)] = float(std::sin(angle));
      }
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t a = style == RopeStyle::Neox ? i : 2 * i;
          const int64_t b = style == RopeStyle::Neox ? i + half : 2 * i + 1;
          const float x0 = v[a], x1 = v[b];
          v[a] = x0 * cos_t[size_t(i)] - x1 * sin_t[size_t(i)];
          v[b] = x0 * sin_t[size_t(i)] + x1 * cos_t[size_t(i)];
        }
      }
    }
  });
}

namespace {
inline float silu(float g) { return g / (1.0f + std::exp(-g)); }
inline float gelu_tanh(float g) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
}
}  // namespace

void gated_activation(const float* gate, const float* up, float* out, int64_t n, Activation act) {
  parallel_ranges(cpu_pool(), n, 16384, [&](int64_t i0, int64_t i1) {
    if (act == Activation::Silu) {
      for (int64_t i = i0; i < i1; ++i) out[i] = silu(gate[i]) * up[i];
    } else {
      for (int64_t i = i0; i < i1; ++i) out[i] = gelu_tanh(gate[i]) * up[i];
    }
  });
}

void softcap(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

}  // namespace hi
