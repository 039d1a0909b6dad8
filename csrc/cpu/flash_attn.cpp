#include "flash_attn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "act_q8.h"
#include "cpu_features.h"
#include "dequantize.h"
#include "matmul_kernels.h"
#include "thread_pool.h"

namespace hi {

namespace {

constexpr int64_t kTile = 64;  // cells scored at once

bool visible(const AttnMask& m, int64_t t, int64_t c) {
  if (m.cell_seq[c] < 0 || m.cell_seq[c] != m.q_seq[t]) return false;
  const int64_t back = int64_t(m.q_pos[t]) - m.cell_pos[c];
  return back >= 0 && (m.window <= 0 || back < m.window);
}

// Online-softmax state of one query head.
struct SoftmaxState {
  float max = -std::numeric_limits<float>::infinity();
  float sum = 0.0f;
  float* acc;  // (d_v,) running sum of p * v
};

// Work shared by the n_rep query heads of one (token, KV head) pair.
struct HeadGroup {
  const AttnMask& mask;
  const KVView &k, &v;
  float scale, softcap;
  int64_t t, g, n_rep;
  const float* q;  // (n_rep, d_k)
};

// scores (n_rep, n) = q (n_rep, d_k) . K[c0 .. c0+n, g]^T, through the matmul row kernels.
void score_tile(const HeadGroup& hg, const std::vector<ActBlock>& q8, int64_t c0, int64_t n, float* scores) {
  const size_t head_bytes = row_bytes(hg.k.type, hg.k.head_dim);
  MatmulArgs a{hg.k.type,
               hg.k.data + (size_t(c0) * size_t(hg.k.n_head_kv) + size_t(hg.g)) * head_bytes,
               head_bytes * size_t(hg.k.n_head_kv),
               hg.k.head_dim,
               q8.empty() ? nullptr : q8.data(),
               nullptr,
               hg.q,
               hg.n_rep,
               scores,
               n};
  (kernel_path() == KernelPath::Avx2 ? matmul_rows_avx2 : matmul_rows_scalar)(a, 0, n);
}

void attend_group(const HeadGroup& hg, float* out /* (n_rep, d_v) */) {
  const int64_t d_v = hg.v.head_dim, n_cells = hg.k.n_cells;
  const size_t v_head_bytes = row_bytes(hg.v.type, d_v);
  std::vector<ActBlock> q8;  // (n_rep, d_k/32) when K is block-quantised
  if (qtype_info(hg.k.type).block_values == QK) {
    q8.resize(size_t(hg.n_rep * hg.k.head_dim / QK));
    for (int64_t j = 0; j < hg.n_rep; ++j)
      quantize_activations(hg.q + j * hg.k.head_dim, q8.data() + j * (hg.k.head_dim / QK), hg.k.head_dim);
  }
  std::vector<float> scores(size_t(hg.n_rep * kTile));  // (n_rep, tile)
  std::vector<float> v_tile(static_cast<size_t>(kTile * d_v));  // (tile, d_v) dequantised V rows
  std::vector<char> seen(static_cast<size_t>(kTile));           // (tile,) visibility
  std::fill(out, out + hg.n_rep * d_v, 0.0f);
  std::vector<SoftmaxState> st(size_t(hg.n_rep));
  for (int64_t j = 0; j < hg.n_rep; ++j) st[size_t(j)].acc = out + j * d_v;

  for (int64_t c0 = 0; c0 < n_cells; c0 += kTile) {
    const int64_t n = std::min(kTile, n_cells - c0);
    bool any = false;
    for (int64_t c = 0; c < n; ++c) any |= (seen[size_t(c)] = visible(hg.mask, hg.t, c0 + c));
    if (!any) continue;
    score_tile(hg, q8, c0, n, scores.data());
    for (int64_t c = 0; c < n; ++c)
      if (seen[size_t(c)])
        dequantize_serial(hg.v.type, hg.v.data + (size_t(c0 + c) * size_t(hg.v.n_head_kv) + size_t(hg.g)) * v_head_bytes,
                          v_tile.data() + c * d_v, d_v);
    for (int64_t j = 0; j < hg.n_rep; ++j) {
      SoftmaxState& s = st[size_t(j)];
      float* sc = scores.data() + j * n;
      float tile_max = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < n; ++c) {
        if (!seen[size_t(c)]) continue;
        sc[c] *= hg.scale;
        if (hg.softcap > 0.0f) sc[c] = hg.softcap * std::tanh(sc[c] / hg.softcap);
        tile_max = std::max(tile_max, sc[c]);
      }
      const float new_max = std::max(s.max, tile_max);
      const float correction = std::exp(s.max - new_max);  // 0 on the first visible tile
      s.sum *= correction;
      for (int64_t i = 0; i < d_v; ++i) s.acc[i] *= correction;
      for (int64_t c = 0; c < n; ++c) {
        if (!seen[size_t(c)]) continue;
        const float p = std::exp(sc[c] - new_max);
        s.sum += p;
        const float* vr = v_tile.data() + c * d_v;
        for (int64_t i = 0; i < d_v; ++i) s.acc[i] += p * vr[i];
      }
      s.max = new_max;
    }
  }
  for (int64_t j = 0; j < hg.n_rep; ++j)
    if (st[size_t(j)].sum > 0.0f)
      for (int64_t i = 0; i < d_v; ++i) st[size_t(j)].acc[i] /= st[size_t(j)].sum;
}

}  // namespace

void flash_attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                     const AttnMask& mask, float scale, float softcap, float* out) {
  if (k.n_head_kv <= 0 || n_head % k.n_head_kv != 0 || v.n_head_kv != k.n_head_kv || v.n_cells != k.n_cells)
    throw std::invalid_argument("flash_attention: n_head must be a multiple of n_head_kv, and K and V must match");
  for (QType t : {k.type, v.type})
    if (t != QType::F32 && t != QType::F16 && t != QType::Q8_0 && t != QType::Q4_0)
      throw std::invalid_argument(std::string("flash_attention: cache type ") + qtype_info(t).name +
                                  " is not one of f32, f16, q8_0, q4_0");
  row_bytes(k.type, k.head_dim);  // validates head sizes against the block size
  row_bytes(v.type, v.head_dim);
  const int64_t n_rep = n_head / k.n_head_kv;
  parallel_ranges(cpu_pool(), n_q * k.n_head_kv, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t t = p / k.n_head_kv, g = p % k.n_head_kv;
      const HeadGroup hg{mask, k, v, scale, softcap, t, g, n_rep, q + (t * n_head + g * n_rep) * k.head_dim};
      attend_group(hg, out + (t * n_head + g * n_rep) * v.head_dim);
    }
  });
}

}  // namespace hi
