// Portable kernels: the reference the SIMD paths are tested against, and the
// path on CPUs without AVX2.
#include <cstring>

#include "matmul_kernels.h"

namespace hi {

namespace {

float load_weight(F32Tag, const uint8_t* p, int64_t i) {
  float v;
  std::memcpy(&v, p + 4 * i, 4);
  return v;
}
float load_weight(F16Tag, const uint8_t* p, int64_t i) {
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return half_to_float(h);
}
float load_weight(BF16Tag, const uint8_t* p, int64_t i) {
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return bf16_to_float(h);
}

template <typename Tag>
void float_rows(Tag tag, const MatmulArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* wr = a.w + size_t(r) * a.row_stride;
    for (int64_t i = 0; i < a.n; ++i) {
      const float* x = a.x + i * a.k;
      float acc = 0.0f;
      for (int64_t j = 0; j < a.k; ++j) acc += load_weight(tag, wr, j) * x[j];
      a.y[i * a.rows + r] = acc;
    }
  }
}

void rows(F32Tag t, const MatmulArgs& a, int64_t r0, int64_t r1) { float_rows(t, a, r0, r1); }
void rows(F16Tag t, const MatmulArgs& a, int64_t r0, int64_t r1) { float_rows(t, a, r0, r1); }
void rows(BF16Tag t, const MatmulArgs& a, int64_t r0, int64_t r1) { float_rows(t, a, r0, r1); }

// One chunk's contribution: d_x * (s0*sum(q*x, half 0) + s1*sum(q*x, half 1) - offsets).
float chunk_dot(const Chunk& c, const ActChunk& x) {
  int isum[2] = {0, 0};
  for (int j = 0; j < QK; ++j) isum[j / 16] += int(c.q[j]) * int(x.qs[j]);
  return x.d * (c.s[0] * float(isum[0]) + c.s[1] * float(isum[1]) -
                (c.m[0] * float(x.sum[0]) + c.m[1] * float(x.sum[1])));
}

template <typename Block>
void rows(Block, const MatmulArgs& a, int64_t r0, int64_t r1) {
  using T = BlockTraits<Block>;
  using Act = ActFor<Block>;
  const Act* act = activations<Act>(a);
  const int64_t n_blocks = a.k / T::values, act_per_row = a.k / int64_t(sizeof(Act::qs));
  Chunk c;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* wr = a.w + size_t(r) * a.row_stride;
    for (int64_t i = 0; i < a.n; ++i) a.y[i * a.rows + r] = 0.0f;
    for (int64_t b = 0; b < n_blocks; ++b) {
      Block block;
      std::memcpy(&block, wr + b * T::bytes, sizeof block);
      for (int ch = 0; ch < T::chunks; ++ch) {
        unpack_chunk(block, ch, c);
        const int64_t col = b * T::chunks + ch;
        for (int64_t i = 0; i < a.n; ++i) a.y[i * a.rows + r] += chunk_dot(c, act_chunk(act + i * act_per_row, col));
      }
    }
  }
}

}  // namespace

void matmul_rows_scalar(const MatmulArgs& a, int64_t r0, int64_t r1) {
  visit_qtype(a.type, [&](auto tag) { rows(tag, a, r0, r1); });
}

}  // namespace hi
