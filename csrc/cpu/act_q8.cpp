#include "act_q8.h"

namespace hi {

void quantize_activations(const float* x, ActBlock* out, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b) quantize_act_block(x + b * QK, out[b]);
}

void quantize_activations(const float* x, ActBlockK* out, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b) quantize_act_block(x + b * QK_K, out[b]);
}

}  // namespace hi
