// Activations quantised to 8-bit blocks, the right-hand side of the integer
// dot products of every backend's matmul with quantised weights. 32-value
// block weights pair with 32-value activation blocks (a float scale each);
// K-quant weights pair with 256-value blocks (one float scale per super-block),
// so kernels can sum integer products over a whole super-block.
//
// Shared by the CPU (csrc/cpu/act_q8.h) and the device kernels, so both round
// activations identically: d = amax/127, codes nearbyint(x/d) (round half to
// even), per-16 code sums. Compiles as host C++ and as SYCL device code.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "quant_blocks.h"

namespace hi {

struct ActBlock {
  float d;         // scale: x ~= d * qs
  int16_t sum[2];  // (2,) sum of qs over each 16-value half, for the weight offsets
  int8_t qs[QK];   // (32,) codes in [-127, 127]
};
static_assert(sizeof(ActBlock) == 40, "ActBlock layout");

struct ActBlockK {
  float d;                  // scale: x ~= d * qs
  int16_t sum[QK_K / 16];   // (16,) sum of qs over each 16-value half
  int8_t qs[QK_K];          // (256,) codes in [-127, 127]
};
static_assert(sizeof(ActBlockK) == 292, "ActBlockK layout");

// N values -> codes with scale amax/127 and per-16 code sums. No expression
// here can contract (x * id is rounded on its own), so results are the same
// with or without FMA contraction.
template <int N>
HI_HD void quantize_act_block(const float* x /* (N,) */, float& d, int8_t* qs /* (N,) */, int16_t* sums /* (N/16,) */) {
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

HI_HD void quantize_act_block(const float* x /* (32,) */, ActBlock& out) { quantize_act_block<QK>(x, out.d, out.qs, out.sum); }
HI_HD void quantize_act_block(const float* x /* (256,) */, ActBlockK& out) {
  quantize_act_block<QK_K>(x, out.d, out.qs, out.sum);
}

// One 32-value chunk of either block kind, as the kernels consume it.
struct ActChunk {
  float d;
  const int8_t* qs;  // (32,) codes
  int sum[2];        // (2,) code sums per half
};
HI_HD ActChunk act_chunk(const ActBlock* row, int64_t chunk) {
  const ActBlock& b = row[chunk];
  return {b.d, b.qs, {b.sum[0], b.sum[1]}};
}
HI_HD ActChunk act_chunk(const ActBlockK* row, int64_t chunk) {
  const ActBlockK& b = row[chunk / 8];
  const int k = int(chunk % 8);
  return {b.d, b.qs + QK * k, {b.sum[2 * k], b.sum[2 * k + 1]}};
}

// Bytes between two tokens' activations in matmul's scratch: a row of k / V
// blocks (V = 32 or 256) padded to 16 bytes. The CPU and SYCL keep each row
// as blocks; a CUDA device stores the same bytes field by field and reads them
// with 16-byte loads (kernels/cuda/act_rows.cuh), hence the padding.
HI_HD int64_t act_row_stride(int64_t values, int64_t k) {
  const int64_t bytes = values == QK_K ? k / QK_K * int64_t(sizeof(ActBlockK)) : k / QK * int64_t(sizeof(ActBlock));
  return (bytes + 15) / 16 * 16;
}

// The activation block kind that pairs with a weight block.
template <typename Block>
using ActFor = typename std::conditional<BlockTraits<Block>::values == QK_K, ActBlockK, ActBlock>::type;

}  // namespace hi
