// y = x W^T for every weight type (matmul.cuh), from x's activation blocks
// (act_q8.cuh) for quantised weights: n <= kMatvecTokens tokens take the
// matvec (mmvq.cuh), more the tiled tensor-core matmul (mmq.cuh). Float
// weights (f32, f16, bf16) multiply x directly.
//
// Kernels: none here (mmvq.cu and mmq.cu hold them).
#include <string>

#include "matmul.cuh"
#include "mmq.cuh"
#include "mmvq.cuh"
#include "qtypes.h"
#include "weight_types.cuh"

namespace hi::cuda {

void matmul(const MatmulOut* outs, size_t n_outs, int64_t k, const float* x, const uint8_t* act, int64_t n,
            bool planar, cudaStream_t stream) {
  if (n < 0 || k < 0) throw std::invalid_argument("matmul: negative size");
  for (size_t i = 0; i < n_outs; ++i) {
    with_weight_type(outs[i].type, "matmul", [](auto, const char*) {});  // throws for a type outside the 13
    const QTypeInfo& info = qtype_info(outs[i].type);
    if (outs[i].rows < 0) throw std::invalid_argument("matmul: negative size");
    if (info.block_values > 1 && k % info.block_values != 0)
      throw std::invalid_argument(std::string("matmul: k=") + std::to_string(k) + " is not a multiple of " +
                                  info.name + "'s " + std::to_string(info.block_values) + "-value blocks");
    if (info.block_values > 1 && act == nullptr)
      throw std::invalid_argument(std::string("matmul ") + info.name + ": no activation blocks");
  }
  if (n == 0) return;
  if (n > kMatvecTokens) {
    for (size_t i = 0; i < n_outs; ++i)
      mmq(outs[i].type, outs[i].w, outs[i].rows, k, x, act, n, outs[i].y, planar, stream);
    return;
  }
  for (size_t i = 0; i < n_outs;) {  // runs of neighbours of one type, up to kMatvecOuts a launch
    size_t run = 1;
    while (i + run < n_outs && run < size_t(kMatvecOuts) && outs[i + run].type == outs[i].type) ++run;
    mmvq(outs + i, int(run), k, x, act, n, planar, stream);
    i += run;
  }
}

}  // namespace hi::cuda
