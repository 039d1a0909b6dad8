// The GGUF tensor types hetinfer supports, their sizes, and a compile-time
// dispatcher from a run-time QType to the matching block struct.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../kernels/common/quant_blocks.h"

namespace hi {

struct QTypeInfo {
  QType type;
  const char* name;
  int block_values;  // values per block
  int block_bytes;   // bytes per block
};

// nullptr when the id is not one hetinfer supports.
const QTypeInfo* find_qtype(uint32_t id);
// Throws std::invalid_argument naming the id when unsupported.
const QTypeInfo& qtype_info(QType type);

// Bytes of a row of n values; throws when n is not a whole number of blocks.
size_t row_bytes(QType type, int64_t n);

struct F32Tag {};
struct F16Tag {};
struct BF16Tag {};

// Calls f(Tag{}) with the block struct (or float tag) of `type`.
template <typename F>
decltype(auto) visit_qtype(QType type, F&& f) {
  switch (type) {
    case QType::F32: return f(F32Tag{});
    case QType::F16: return f(F16Tag{});
    case QType::BF16: return f(BF16Tag{});
    case QType::Q4_0: return f(block_q4_0{});
    case QType::Q4_1: return f(block_q4_1{});
    case QType::Q5_0: return f(block_q5_0{});
    case QType::Q5_1: return f(block_q5_1{});
    case QType::Q8_0: return f(block_q8_0{});
    case QType::Q2_K: return f(block_q2_K{});
    case QType::Q3_K: return f(block_q3_K{});
    case QType::Q4_K: return f(block_q4_K{});
    case QType::Q5_K: return f(block_q5_K{});
    case QType::Q6_K: return f(block_q6_K{});
  }
  throw std::invalid_argument("unsupported tensor type id " + std::to_string(uint32_t(type)));
}

}  // namespace hi
