// The size of matmul's quantised activations, shared by every backend that
// rounds activations to 8-bit blocks (the CPU, the SYCL plugin).
#include "act_q8.h"
#include "matmul.h"

namespace hi {

size_t matmul_scratch_bytes(QType type, int64_t n, int64_t k) {
  const int64_t values = qtype_info(type).block_values;
  if (values == QK) return size_t(n * (k / QK)) * sizeof(ActBlock);
  if (values == QK_K) return size_t(n * (k / QK_K)) * sizeof(ActBlockK);
  return 0;  // float weights multiply x directly
}

}  // namespace hi
