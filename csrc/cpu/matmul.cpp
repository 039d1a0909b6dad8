#include "matmul.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "matmul_kernels.h"
#include "thread_pool.h"

namespace hi {

namespace {

template <typename Act>
void round_rows(const float* x, int64_t n, int64_t k, Act* out) {
  const int64_t per_row = k / int64_t(sizeof(Act::qs));
  parallel_ranges(cpu_pool(), n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) quantize_activations(x + i * k, out + i * per_row, k);
  });
}

}  // namespace

void round_activation_rows(int64_t values, const float* x, int64_t n, int64_t k, void* act) {
  if (values == QK)
    round_rows(x, n, k, static_cast<ActBlock*>(act));
  else if (values == QK_K)
    round_rows(x, n, k, static_cast<ActBlockK*>(act));
  else
    throw std::invalid_argument("activation blocks of " + std::to_string(values) + " values (32 or 256)");
}

void matmul_rounded(const MatmulOut* outs, size_t n_outs, int64_t k, const float* x, const void* act, int64_t n) {
  std::vector<MatmulArgs> args;  // (n_outs,)
  std::vector<int64_t> start;    // (n_outs + 1,) each product's first row in the rows of all of them
  start.push_back(0);
  for (size_t i = 0; i < n_outs; ++i) {
    const MatmulOut& o = outs[i];
    const int64_t values = qtype_info(o.type).block_values;
    args.push_back({o.type, o.w, row_bytes(o.type, k), k, values == QK ? static_cast<const ActBlock*>(act) : nullptr,
                    values == QK_K ? static_cast<const ActBlockK*>(act) : nullptr, x, n, o.y, o.rows});
    start.push_back(start.back() + o.rows);
  }
  ThreadPool& pool = cpu_pool();
  const auto kernel = kernel_path() == KernelPath::Avx2 ? matmul_rows_avx2 : matmul_rows_scalar;
  // About four pieces per thread balance uneven progress; keep pieces >= 8 rows.
  const int64_t rows = start.back();
  const int64_t grain = std::max<int64_t>(8, (rows + 4 * pool.size() - 1) / (4 * pool.size()));
  parallel_ranges(pool, rows, grain, [&](int64_t r0, int64_t r1) {
    for (size_t i = 0; i < n_outs; ++i) {  // the products whose rows [r0, r1) overlaps
      const int64_t lo = std::max(r0, start[i]), hi = std::min(r1, start[i + 1]);
      if (lo < hi) kernel(args[i], lo - start[i], hi - start[i]);
    }
  });
}

}  // namespace hi
