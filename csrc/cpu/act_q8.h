// Activations quantised to 8-bit blocks, the right-hand side of the integer
// dot products in the CPU matmul kernels. 32-value block weights pair with
// 32-value activation blocks (a float scale each); K-quant weights pair with
// 256-value blocks (one float scale per super-block), so their kernels can
// sum integer products over a whole super-block.
#pragma once
#include <cstdint>
#include <type_traits>

#include "../../kernels/common/quant_blocks.h"

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

// x: (k,) floats -> out: (k/32,) or (k/256,) blocks; k a multiple of the block.
void quantize_activations(const float* x, ActBlock* out, int64_t k);
void quantize_activations(const float* x, ActBlockK* out, int64_t k);

// One 32-value chunk of either block kind, as the kernels consume it.
struct ActChunk {
  float d;
  const int8_t* qs;  // (32,) codes
  int sum[2];        // (2,) code sums per half
};
inline ActChunk act_chunk(const ActBlock* row, int64_t chunk) {
  const ActBlock& b = row[chunk];
  return {b.d, b.qs, {b.sum[0], b.sum[1]}};
}
inline ActChunk act_chunk(const ActBlockK* row, int64_t chunk) {
  const ActBlockK& b = row[chunk / 8];
  const int k = int(chunk % 8);
  return {b.d, b.qs + QK * k, {b.sum[2 * k], b.sum[2 * k + 1]}};
}

// The activation block kind that pairs with a weight block.
template <typename Block>
using ActFor = typename std::conditional<BlockTraits<Block>::values == QK_K, ActBlockK, ActBlock>::type;

}  // namespace hi
