// The size of matmul's quantised activations, shared by every backend that
// rounds activations to 8-bit blocks (the CPU, the SYCL and CUDA plugins).
#include "act_q8.h"
#include "matmul.h"

namespace hi {

size_t matmul_scratch_bytes(QType type, int64_t n, int64_t k) {
  const int64_t values = qtype_info(type).block_values;
  if (values != QK && values != QK_K) return 0;  // float weights multiply x directly
  return size_t(n * act_row_stride(values, k));   // rows padded for the CUDA device; the CPU's fit in
}

}  // namespace hi
