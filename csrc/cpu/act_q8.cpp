#include "act_q8.h"

#include <cmath>

namespace hi {

namespace {

// n values -> codes with scale amax/127 and per-16 code sums.
template <int N>
void quantize_block(const float* x /* (N,) */, float& d, int8_t* qs /* (N,) */, int16_t* sums /* (N/16,) */) {
  float amax = 0.0f;
  for (int j = 0; j < N; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  d = amax / 127.0f;
  const float id = d == 0.0f ? 0.0f : 1.0f / d;
  for (int h = 0; h < N / 16; ++h) {
    int sum = 0;
    for (int j = 16 * h; j < 16 * (h + 1); ++j) {
      const int q = int(std::nearbyint(x[j] * id));
      qs[j] = int8_t(q);
      sum += q;
    }
    sums[h] = int16_t(sum);
  }
}

}  // namespace

void quantize_activations(const float* x, ActBlock* out, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b) quantize_block<QK>(x + b * QK, out[b].d, out[b].qs, out[b].sum);
}

void quantize_activations(const float* x, ActBlockK* out, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b) quantize_block<QK_K>(x + b * QK_K, out[b].d, out[b].qs, out[b].sum);
}

}  // namespace hi
