#include "qtypes.h"

namespace hi {

namespace {
constexpr QTypeInfo kTypes[] = {
    {QType::F32, "F32", 1, 4},
    {QType::F16, "F16", 1, 2},
    {QType::BF16, "BF16", 1, 2},
    {QType::Q4_0, "Q4_0", QK, int(sizeof(block_q4_0))},
    {QType::Q4_1, "Q4_1", QK, int(sizeof(block_q4_1))},
    {QType::Q5_0, "Q5_0", QK, int(sizeof(block_q5_0))},
    {QType::Q5_1, "Q5_1", QK, int(sizeof(block_q5_1))},
    {QType::Q8_0, "Q8_0", QK, int(sizeof(block_q8_0))},
    {QType::Q2_K, "Q2_K", QK_K, int(sizeof(block_q2_K))},
    {QType::Q3_K, "Q3_K", QK_K, int(sizeof(block_q3_K))},
    {QType::Q4_K, "Q4_K", QK_K, int(sizeof(block_q4_K))},
    {QType::Q5_K, "Q5_K", QK_K, int(sizeof(block_q5_K))},
    {QType::Q6_K, "Q6_K", QK_K, int(sizeof(block_q6_K))},
};
}  // namespace

const QTypeInfo* find_qtype(uint32_t id) {
  for (const auto& t : kTypes)
    if (uint32_t(t.type) == id) return &t;
  return nullptr;
}

const QTypeInfo& qtype_info(QType type) {
  const QTypeInfo* t = find_qtype(uint32_t(type));
  if (!t) throw std::invalid_argument("unsupported tensor type id " + std::to_string(uint32_t(type)));
  return *t;
}

size_t row_bytes(QType type, int64_t n) {
  const QTypeInfo& t = qtype_info(type);
  if (n < 0 || n % t.block_values != 0)
    throw std::invalid_argument(std::string(t.name) + " rows need a multiple of " +
                                std::to_string(t.block_values) + " values, got " + std::to_string(n));
  return size_t(n / t.block_values) * size_t(t.block_bytes);
}

}  // namespace hi
