#include "quantize.h"

#include <algorithm>
#include <cstring>

#include "../cpu/thread_pool.h"
#include "quantize_kquants.h"
#include "quantize_legacy.h"

namespace hi {

namespace {

void quantize_range(F32Tag, const float* x, uint8_t* y, int64_t n) { std::memcpy(y, x, size_t(n) * 4); }

void quantize_range(F16Tag, const float* x, uint8_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = float_to_half(x[i]);
    std::memcpy(y + 2 * i, &h, 2);
  }
}

void quantize_range(BF16Tag, const float* x, uint8_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t b = float_to_bf16(x[i]);
    std::memcpy(y + 2 * i, &b, 2);
  }
}

template <typename Block>
void quantize_range(Block, const float* x, uint8_t* y, int64_t n) {
  // GGUF data is only byte-aligned: quantise into aligned blocks, then copy.
  constexpr int64_t kBatch = 64;
  Block blocks[kBatch];  // (kBatch,) blocks
  const int64_t n_blocks = n / BlockTraits<Block>::values;
  for (int64_t b = 0; b < n_blocks; b += kBatch) {
    const int64_t nb = std::min(kBatch, n_blocks - b);
    quantize_blocks(x + b * BlockTraits<Block>::values, blocks, nb);
    std::memcpy(y + b * int64_t(sizeof(Block)), blocks, size_t(nb) * sizeof(Block));
  }
}

}  // namespace

void quantize(QType type, const float* src, uint8_t* dst, int64_t n) {
  const QTypeInfo& info = qtype_info(type);
  row_bytes(type, n);  // validates n
  parallel_ranges(cpu_pool(), n / info.block_values, 65536 / info.block_values, [&](int64_t b0, int64_t b1) {
    visit_qtype(type, [&](auto tag) {
      quantize_range(tag, src + b0 * info.block_values, dst + b0 * info.block_bytes, (b1 - b0) * info.block_values);
    });
  });
}

}  // namespace hi
