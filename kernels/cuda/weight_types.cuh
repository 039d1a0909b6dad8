// The run-time weight type -> its row element type (row_values.h), for the
// launchers of the kernels that read weight rows (mmvq.cu, mmq.cu, matmul.cu,
// rows.cu). Host only.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "row_values.h"

namespace hi::cuda {

// Calls f(static_cast<const T*>(nullptr), name) with T the row element type of
// `type` (f32_t, f16_t, bf16_t or a block struct) and its name ("q4_K"); any
// other type throws std::invalid_argument naming `what` and the type id.
template <typename F>
void with_weight_type(QType type, const char* what, F&& f) {
  switch (type) {
#define HI_WEIGHT_CASE(ENUM, T, NAME) \
  case QType::ENUM: f(static_cast<const T*>(nullptr), NAME); return;
    HI_WEIGHT_CASE(F32, f32_t, "f32")
    HI_WEIGHT_CASE(F16, f16_t, "f16")
    HI_WEIGHT_CASE(BF16, bf16_t, "bf16")
    HI_WEIGHT_CASE(Q4_0, block_q4_0, "q4_0")
    HI_WEIGHT_CASE(Q4_1, block_q4_1, "q4_1")
    HI_WEIGHT_CASE(Q5_0, block_q5_0, "q5_0")
    HI_WEIGHT_CASE(Q5_1, block_q5_1, "q5_1")
    HI_WEIGHT_CASE(Q8_0, block_q8_0, "q8_0")
    HI_WEIGHT_CASE(Q2_K, block_q2_K, "q2_K")
    HI_WEIGHT_CASE(Q3_K, block_q3_K, "q3_K")
    HI_WEIGHT_CASE(Q4_K, block_q4_K, "q4_K")
    HI_WEIGHT_CASE(Q5_K, block_q5_K, "q5_K")
    HI_WEIGHT_CASE(Q6_K, block_q6_K, "q6_K")
#undef HI_WEIGHT_CASE
  }
  throw std::invalid_argument(std::string(what) + ": unsupported weight type id " + std::to_string(uint32_t(type)));
}

// The row element type behind with_weight_type's pointer argument.
template <typename P>
using WeightOf = std::remove_const_t<std::remove_pointer_t<P>>;

}  // namespace hi::cuda
