#include "act_q8.h"

#include <cmath>

namespace hi {

void quantize_activations(const float* x, ActBlock* out, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, x += QK) {
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d == 0.0f ? 0.0f : 1.0f / d;
    int sum[2] = {0, 0};
    for (int j = 0; j < QK; ++j) {
      const int q = int(std::nearbyint(x[j] * id));
      out[b].qs[j] = int8_t(q);
      sum[j / 16] += q;
    }
    out[b].d = d;
    out[b].sum[0] = int16_t(sum[0]);
    out[b].sum[1] = int16_t(sum[1]);
  }
}

}  // namespace hi
