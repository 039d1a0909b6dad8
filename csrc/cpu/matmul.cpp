#include "matmul.h"

#include <algorithm>
#include <vector>

#include "cpu_features.h"
#include "matmul_kernels.h"
#include "thread_pool.h"

namespace hi {

void matmul(QType type, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y) {
  const QTypeInfo& info = qtype_info(type);
  MatmulArgs a{type, w, row_bytes(type, k), k, nullptr, x, n, y, rows};
  ThreadPool& pool = cpu_pool();

  std::vector<ActBlock> act;  // (n, k/32) when the weights are quantised
  if (info.block_values > 1) {
    act.resize(size_t(n) * size_t(k / QK));
    parallel_ranges(pool, n, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) quantize_activations(x + i * k, act.data() + i * (k / QK), k);
    });
    a.act = act.data();
  }

  const auto kernel = kernel_path() == KernelPath::Avx2 ? matmul_rows_avx2 : matmul_rows_scalar;
  // About four pieces per thread balance uneven progress; keep pieces >= 8 rows.
  const int64_t grain = std::max<int64_t>(8, (rows + 4 * pool.size() - 1) / (4 * pool.size()));
  parallel_ranges(pool, rows, grain, [&](int64_t r0, int64_t r1) { kernel(a, r0, r1); });
}

}  // namespace hi
