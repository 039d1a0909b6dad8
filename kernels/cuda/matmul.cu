// y = x W^T for every weight type (matmul.cuh): quantised weights round x to
// the CPU's 8-bit activation blocks in `scratch` (act_q8.cuh), then n <=
// kMatvecTokens tokens take the matvec (mmvq.cuh), more the tiled tensor-core
// matmul (mmq.cuh). Float weights (f32, f16, bf16) multiply x directly.
//
// Kernels: none here (act_q8.cu, mmvq.cu, mmq.cu hold them).
#include <string>

#include "qtypes.h"
#include "act_q8.cuh"
#include "matmul.cuh"
#include "mmq.cuh"
#include "mmvq.cuh"
#include "weight_types.cuh"

namespace hi::cuda {

void matmul(QType type, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y,
            void* scratch, bool planar, cudaStream_t stream) {
  with_weight_type(type, "matmul", [](auto, const char*) {});  // throws for a type outside the 13
  const QTypeInfo& info = qtype_info(type);
  if (rows < 0 || n < 0 || k < 0) throw std::invalid_argument("matmul: negative size");
  if (rows == 0 || n == 0) return;
  const uint8_t* act = nullptr;
  if (info.block_values > 1) {
    if (k % info.block_values != 0)
      throw std::invalid_argument(std::string("matmul: k=") + std::to_string(k) + " is not a multiple of " +
                                  info.name + "'s " + std::to_string(info.block_values) + "-value blocks");
    if (scratch == nullptr && k > 0) throw std::invalid_argument(std::string("matmul ") + info.name + ": no scratch");
    quantize_act(info.block_values, x, n, k, static_cast<uint8_t*>(scratch), stream);
    act = static_cast<const uint8_t*>(scratch);
  }
  if (n <= kMatvecTokens)
    mmvq(type, w, rows, k, x, act, n, y, planar, stream);
  else
    mmq(type, w, rows, k, x, act, n, y, planar, stream);
}

}  // namespace hi::cuda
