#include "flash_attn.h"

#include <algorithm>
#include <climits>
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

// Online-softmax state of one query head.
struct SoftmaxState {
  float max = -std::numeric_limits<float>::infinity();
  float sum = 0.0f;
  float* acc;  // (d_v,) running sum of p * v
};

// Work shared by the n_rep query heads of one (token, KV head) pair.
struct HeadGroup {
  const int32_t* cells;  // (n,) the cells this token sees, in position order
  const KVView &k, &v;
  int64_t n_cells;
  float scale, softcap;
  int64_t g, n_rep;
  const float* q;  // (n_rep, d_k)
};

// scores (n_rep, n) = q (n_rep, d_k) . K[cells[0 .. n], g]^T, through the matmul
// row kernels, one call per run of consecutive cells (each row's dot product
// does not depend on the run it is part of).
void score_tile(const HeadGroup& hg, const std::vector<ActBlock>& q8, const int32_t* cells, int64_t n,
                float* scores) {
  const size_t head_bytes = row_bytes(hg.k.type, hg.k.head_dim);
  const auto kernel = kernel_path() == KernelPath::Avx2 ? matmul_rows_avx2 : matmul_rows_scalar;
  for (int64_t r0 = 0, r1; r0 < n; r0 = r1) {
    for (r1 = r0 + 1; r1 < n && cells[r1] == cells[r1 - 1] + 1;) ++r1;
    MatmulArgs a{hg.k.type,
                 hg.k.data + (size_t(cells[r0]) * size_t(hg.k.n_head_kv) + size_t(hg.g)) * head_bytes,
                 head_bytes * size_t(hg.k.n_head_kv),
                 hg.k.head_dim,
                 q8.empty() ? nullptr : q8.data(),
                 nullptr,
                 hg.q,
                 hg.n_rep,
                 scores + r0,
                 n};
    kernel(a, 0, r1 - r0);
  }
}

void attend_group(const HeadGroup& hg, float* out /* (n_rep, d_v) */) {
  const int64_t d_v = hg.v.head_dim;
  const size_t v_head_bytes = row_bytes(hg.v.type, d_v);
  std::vector<ActBlock> q8;  // (n_rep, d_k/32) when K is block-quantised
  if (qtype_info(hg.k.type).block_values == QK) {
    q8.resize(size_t(hg.n_rep * hg.k.head_dim / QK));
    for (int64_t j = 0; j < hg.n_rep; ++j)
      quantize_activations(hg.q + j * hg.k.head_dim, q8.data() + j * (hg.k.head_dim / QK), hg.k.head_dim);
  }
  std::vector<float> scores(size_t(hg.n_rep * kTile));  // (n_rep, tile)
  std::vector<float> v_tile(static_cast<size_t>(kTile * d_v));  // (tile, d_v) dequantised V rows
  std::fill(out, out + hg.n_rep * d_v, 0.0f);
  std::vector<SoftmaxState> st(size_t(hg.n_rep));
  for (int64_t j = 0; j < hg.n_rep; ++j) st[size_t(j)].acc = out + j * d_v;

  for (int64_t c0 = 0; c0 < hg.n_cells; c0 += kTile) {
    const int64_t n = std::min(kTile, hg.n_cells - c0);
    const int32_t* tile = hg.cells + c0;  // (n,)
    score_tile(hg, q8, tile, n, scores.data());
    for (int64_t c = 0; c < n; ++c)
      dequantize_serial(hg.v.type, hg.v.data + (size_t(tile[c]) * size_t(hg.v.n_head_kv) + size_t(hg.g)) * v_head_bytes,
                        v_tile.data() + c * d_v, d_v);
    for (int64_t j = 0; j < hg.n_rep; ++j) {
      SoftmaxState& s = st[size_t(j)];
      float* sc = scores.data() + j * n;
      float tile_max = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < n; ++c) {
        sc[c] *= hg.scale;
        if (hg.softcap > 0.0f) sc[c] = hg.softcap * std::tanh(sc[c] / hg.softcap);
        tile_max = std::max(tile_max, sc[c]);
      }
      const float new_max = std::max(s.max, tile_max);
      const float correction = std::exp(s.max - new_max);  // 0 on the first visible tile
      s.sum *= correction;
      for (int64_t i = 0; i < d_v; ++i) s.acc[i] *= correction;
      for (int64_t c = 0; c < n; ++c) {
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

VisibleCells::VisibleCells(const int32_t* cell_seq, const int32_t* cell_pos, int64_t n_cells, const int32_t* q_seq,
                           int64_t n_q)
    : begin_(size_t(n_q)), end_(size_t(n_q)) {
  std::vector<int32_t> seqs(q_seq, q_seq + n_q);  // the batch's sequences, sorted, once each
  std::sort(seqs.begin(), seqs.end());
  seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
  const auto in_batch = [&](int32_t s) { return s >= 0 && std::binary_search(seqs.begin(), seqs.end(), s); };
  for (int64_t c = 0; c < n_cells; ++c)
    if (in_batch(cell_seq[c])) cells_.push_back(int32_t(c));
  std::sort(cells_.begin(), cells_.end(), [&](int32_t a, int32_t b) {
    return cell_seq[a] != cell_seq[b] ? cell_seq[a] < cell_seq[b]
           : cell_pos[a] != cell_pos[b] ? cell_pos[a] < cell_pos[b] : a < b;
  });
  pos_.resize(cells_.size());
  for (size_t i = 0; i < cells_.size(); ++i) {
    pos_[i] = cell_pos[cells_[i]];
    if (runs_.empty() || runs_.back().seq != cell_seq[cells_[i]])
      runs_.push_back({cell_seq[cells_[i]], int64_t(i), int64_t(i)});
    runs_.back().last = int64_t(i) + 1;
  }
}

void VisibleCells::select(const int32_t* q_seq, const int32_t* q_pos, int32_t window) {
  for (size_t t = 0; t < begin_.size(); ++t) {
    const auto run = std::lower_bound(runs_.begin(), runs_.end(), q_seq[t],
                                      [](const Run& r, int32_t s) { return r.seq < s; });
    if (run == runs_.end() || run->seq != q_seq[t]) {
      begin_[t] = end_[t] = 0;  // the sequence has no cells: nothing to see
      continue;
    }
    const auto first = pos_.begin() + run->first, last = pos_.begin() + run->last;
    // Visible positions: (q_pos - window, q_pos], or everything up to q_pos without a window.
    const int64_t lowest = window > 0 ? int64_t(q_pos[t]) - window + 1 : INT64_MIN;
    begin_[t] = std::lower_bound(first, last, lowest, [](int32_t p, int64_t v) { return p < v; }) - pos_.begin();
    end_[t] = std::upper_bound(first, last, int64_t(q_pos[t]), [](int64_t v, int32_t p) { return v < p; }) -
              pos_.begin();
  }
}

void flash_attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                     const VisibleCells& cells, float scale, float softcap, float* out) {
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
      const HeadGroup hg{cells.cells() + cells.begin(t), k, v, cells.end(t) - cells.begin(t), scale, softcap, g,
                         n_rep, q + (t * n_head + g * n_rep) * k.head_dim};
      attend_group(hg, out + (t * n_head + g * n_rep) * v.head_dim);
    }
  });
}

}  // namespace hi
