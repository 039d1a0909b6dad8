#include "dequantize.h"

#include <cstring>

#include "thread_pool.h"

namespace hi {

namespace {

void dequantize_blocks(F32Tag, const uint8_t* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }

void dequantize_blocks(F16Tag, const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = half_to_float(h);
  }
}

void dequantize_blocks(BF16Tag, const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t b;
    std::memcpy(&b, src + 2 * i, 2);
    dst[i] = bf16_to_float(b);
  }
}

template <typename Block>
void dequantize_blocks(Block, const uint8_t* src, float* dst, int64_t n) {
  using T = BlockTraits<Block>;
  Chunk c;
  for (int64_t b = 0; b < n / T::values; ++b) {
    Block block;
    std::memcpy(&block, src + b * T::bytes, sizeof block);  // blocks are byte-aligned in GGUF
    for (int k = 0; k < T::chunks; ++k) {
      unpack_chunk(block, k, c);
      chunk_to_float(c, dst + b * T::values + k * QK);
    }
  }
}

}  // namespace

void dequantize_serial(QType type, const uint8_t* src, float* dst, int64_t n) {
  row_bytes(type, n);  // validates n
  visit_qtype(type, [&](auto tag) { dequantize_blocks(tag, src, dst, n); });
}

void dequantize(QType type, const uint8_t* src, float* dst, int64_t n) {
  const QTypeInfo& info = qtype_info(type);
  row_bytes(type, n);  // validates n
  // Pieces of ~64K values amortise the pool hand-off and balance two to many cores.
  parallel_ranges(cpu_pool(), n / info.block_values, 65536 / info.block_values, [&](int64_t b0, int64_t b1) {
    dequantize_serial(type, src + b0 * info.block_bytes, dst + b0 * info.block_values, (b1 - b0) * info.block_values);
  });
}

}  // namespace hi
