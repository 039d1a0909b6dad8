#include "quantize_legacy.h"

#include <algorithm>
#include <cmath>

namespace hi {

namespace {

// The value of largest magnitude, sign kept; the first one on ties.
float signed_absmax(const float* x /* (32,) */) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < QK; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

float inverse_or_zero(float d) { return d == 0.0f ? 0.0f : 1.0f / d; }

// trunc(v) as uint8 clipped to [0, hi]; v is never negative here.
uint8_t trunc_clip(float v, int hi) { return uint8_t(std::min<int>(int(std::trunc(v)), hi)); }

// Symmetric types: d = max / -levels, code = trunc(x/d + levels + 0.5).
void quantize_symmetric(const float* x /* (32,) */, int levels, uint16_t& d16, uint8_t q[QK]) {
  const float d = signed_absmax(x) / float(-levels);
  const float id = inverse_or_zero(d);
  for (int j = 0; j < QK; ++j) q[j] = trunc_clip(x[j] * id + (float(levels) + 0.5f), 2 * levels - 1);
  d16 = float_to_half(d);
}

// Asymmetric types: d = (max - min) / (levels - 1), code = trunc((x - min)/d + 0.5).
void quantize_asymmetric(const float* x /* (32,) */, int levels, uint16_t& d16, uint16_t& m16, uint8_t q[QK]) {
  float min = x[0], max = x[0];
  for (int j = 1; j < QK; ++j) {
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
  const float d = (max - min) / float(levels - 1);
  const float id = inverse_or_zero(d);
  for (int j = 0; j < QK; ++j) q[j] = trunc_clip((x[j] - min) * id + 0.5f, levels - 1);
  d16 = float_to_half(d);
  m16 = float_to_half(min);
}

void pack4(const uint8_t q[QK], uint8_t qs[QK / 2]) {
  for (int j = 0; j < QK / 2; ++j) qs[j] = uint8_t((q[j] & 0x0f) | (q[j + 16] << 4));
}

void pack5(const uint8_t q[QK], uint8_t qs[QK / 2], uint8_t qh[4]) {
  pack4(q, qs);
  uint32_t h = 0;
  for (int j = 0; j < QK; ++j) h |= uint32_t(q[j] >> 4) << j;
  for (int i = 0; i < 4; ++i) qh[i] = uint8_t(h >> (8 * i));
}

}  // namespace

void quantize_blocks(const float* x, block_q4_0* y, int64_t n_blocks) {
  uint8_t q[QK];  // (32,) codes 0..15
  for (int64_t b = 0; b < n_blocks; ++b, x += QK) {
    quantize_symmetric(x, 8, y[b].d, q);
    pack4(q, y[b].qs);
  }
}

void quantize_blocks(const float* x, block_q4_1* y, int64_t n_blocks) {
  uint8_t q[QK];
  for (int64_t b = 0; b < n_blocks; ++b, x += QK) {
    quantize_asymmetric(x, 16, y[b].d, y[b].m, q);
    pack4(q, y[b].qs);
  }
}

void quantize_blocks(const float* x, block_q5_0* y, int64_t n_blocks) {
  uint8_t q[QK];  // (32,) codes 0..31
  for (int64_t b = 0; b < n_blocks; ++b, x += QK) {
    quantize_symmetric(x, 16, y[b].d, q);
    pack5(q, y[b].qs, y[b].qh);
  }
}

void quantize_blocks(const float* x, block_q5_1* y, int64_t n_blocks) {
  uint8_t q[QK];
  for (int64_t b = 0; b < n_blocks; ++b, x += QK) {
    quantize_asymmetric(x, 32, y[b].d, y[b].m, q);
    pack5(q, y[b].qs, y[b].qh);
  }
}

void quantize_blocks(const float* x, block_q8_0* y, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, x += QK) {
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = inverse_or_zero(d);
    for (int j = 0; j < QK; ++j) y[b].qs[j] = int8_t(std::round(x[j] * id));
    y[b].d = float_to_half(d);
  }
}

}  // namespace hi
