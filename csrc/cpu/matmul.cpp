#include "matmul.h"

#include <algorithm>
#include <vector>

#include "cpu_features.h"
#include "matmul_kernels.h"
#include "thread_pool.h"

namespace hi {

namespace {

// x: (n, k) floats -> (n, k / values-per-block) activation blocks in `scratch`
// (or in `own` when scratch is null), rows in parallel.
template <typename Act>
const Act* quantize_rows(ThreadPool& pool, const float* x, int64_t n, int64_t k, void* scratch,
                         std::vector<Act>& own) {
  const int64_t per_row = k / (int64_t(sizeof(Act::qs)));
  if (!scratch) own.resize(size_t(n * per_row));
  Act* out = scratch ? static_cast<Act*>(scratch) : own.data();
  parallel_ranges(pool, n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) quantize_activations(x + i * k, out + i * per_row, k);
  });
  return out;
}

}  // namespace

void matmul(QType type, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y,
            void* act_scratch) {
  const QTypeInfo& info = qtype_info(type);
  MatmulArgs a{type, w, row_bytes(type, k), k, nullptr, nullptr, x, n, y, rows};
  ThreadPool& pool = cpu_pool();

  std::vector<ActBlock> act;     // (n, k/32) for 32-value weight blocks, when no scratch is given
  std::vector<ActBlockK> act_k;  // (n, k/256) for K-quant weights, when no scratch is given
  if (info.block_values == QK) a.act = quantize_rows(pool, x, n, k, act_scratch, act);
  if (info.block_values == QK_K) a.act_k = quantize_rows(pool, x, n, k, act_scratch, act_k);

  const auto kernel = kernel_path() == KernelPath::Avx2 ? matmul_rows_avx2 : matmul_rows_scalar;
  // About four pieces per thread balance uneven progress; keep pieces >= 8 rows.
  const int64_t grain = std::max<int64_t>(8, (rows + 4 * pool.size() - 1) / (4 * pool.size()));
  parallel_ranges(pool, rows, grain, [&](int64_t r0, int64_t r1) { kernel(a, r0, r1); });
}

}  // namespace hi
