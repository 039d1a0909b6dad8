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
#include "../device/device.h"
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

// Query tokens of one sequence whose visible cells start at the same cell
// (every token of a prompt, without a sliding window) share each tile's V
// rows, dequantised once per tile instead of once per token.
constexpr int64_t kGroup = 8;

// One token of a group: each token sees a prefix of the group's cells.
struct GroupQuery {
  const float* q;   // (n_rep, d_k) its query heads for this KV head
  float* out;       // (n_rep, d_v)
  int64_t n_cells;  // how many of the group's cells it sees
};

// What the tokens of a group share for one KV head g.
struct HeadGroup {
  const int32_t* cells;  // the group's cells in position order
  const KVView &k, &v;
  float scale, softcap;
  int64_t g, n_rep;
};

// scores (n_rep, n) = q (n_rep, d_k) . K[cells[0 .. n], g]^T, through the matmul
// row kernels, one call per run of consecutive cells (each row's dot product
// does not depend on the run it is part of).
void score_tile(const HeadGroup& hg, const float* q, const std::vector<ActBlock>& q8, const int32_t* cells,
                int64_t n, float* scores) {
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
                 q,
                 hg.n_rep,
                 scores + r0,
                 n};
    kernel(a, 0, r1 - r0);
  }
}

// Folds one tile into a query head's online softmax: scores (n,) of the
// tile's cells, v_tile (n, d_v) their values.
void fold_tile(SoftmaxState& s, float* sc, int64_t n, const float* v_tile, int64_t d_v, float scale,
               float softcap) {
  float tile_max = -std::numeric_limits<float>::infinity();
  for (int64_t c = 0; c < n; ++c) {
    sc[c] *= scale;
    if (softcap > 0.0f) sc[c] = softcap * std::tanh(sc[c] / softcap);
    tile_max = std::max(tile_max, sc[c]);
  }
  const float new_max = std::max(s.max, tile_max);
  const float correction = std::exp(s.max - new_max);  // 0 on the first visible tile
  s.sum *= correction;
  for (int64_t i = 0; i < d_v; ++i) s.acc[i] *= correction;
  for (int64_t c = 0; c < n; ++c) {
    const float p = std::exp(sc[c] - new_max);
    s.sum += p;
    const float* vr = v_tile + c * d_v;
    for (int64_t i = 0; i < d_v; ++i) s.acc[i] += p * vr[i];
  }
  s.max = new_max;
}

// Attention of a group's tokens for KV head g. Each token gets exactly the
// arithmetic it would get alone: tiles of its own cells counted from the
// same first cell, its last tile cut at its own end.
void attend_group(const HeadGroup& hg, const GroupQuery* queries, int64_t n_queries) {
  const int64_t d_v = hg.v.head_dim, d_k = hg.k.head_dim, n_rep = hg.n_rep;
  const size_t v_head_bytes = row_bytes(hg.v.type, d_v);
  const bool block_k = qtype_info(hg.k.type).block_values == QK;
  std::vector<std::vector<ActBlock>> q8(static_cast<size_t>(n_queries));  // per token (n_rep, d_k/32) when K is block-quantised
  std::vector<SoftmaxState> st(size_t(n_queries * n_rep));  // per (token, query head)
  int64_t n_cells = 0;                                       // cells of the group's longest token
  for (int64_t t = 0; t < n_queries; ++t) {
    const GroupQuery& gq = queries[t];
    n_cells = std::max(n_cells, gq.n_cells);
    if (block_k) {
      q8[size_t(t)].resize(size_t(n_rep * d_k / QK));
      for (int64_t j = 0; j < n_rep; ++j)
        quantize_activations(gq.q + j * d_k, q8[size_t(t)].data() + j * (d_k / QK), d_k);
    }
    std::fill(gq.out, gq.out + n_rep * d_v, 0.0f);
    for (int64_t j = 0; j < n_rep; ++j) st[size_t(t * n_rep + j)].acc = gq.out + j * d_v;
  }
  std::vector<float> scores(size_t(n_rep * kTile));       // (n_rep, tile)
  std::vector<float> v_tile(size_t(kTile * d_v));         // (tile, d_v) dequantised V rows
  for (int64_t c0 = 0; c0 < n_cells; c0 += kTile) {
    const int64_t n = std::min(kTile, n_cells - c0);
    const int32_t* tile = hg.cells + c0;  // (n,)
    for (int64_t c = 0; c < n; ++c)
      dequantize_serial(hg.v.type, hg.v.data + (size_t(tile[c]) * size_t(hg.v.n_head_kv) + size_t(hg.g)) * v_head_bytes,
                        v_tile.data() + c * d_v, d_v);
    for (int64_t t = 0; t < n_queries; ++t) {
      const int64_t m = std::min(n, queries[t].n_cells - c0);  // this token's share of the tile
      if (m <= 0) continue;
      score_tile(hg, queries[t].q, q8[size_t(t)], tile, m, scores.data());
      for (int64_t j = 0; j < n_rep; ++j)
        fold_tile(st[size_t(t * n_rep + j)], scores.data() + j * m, m, v_tile.data(), d_v, hg.scale, hg.softcap);
    }
  }
  for (const SoftmaxState& s : st)
    if (s.sum > 0.0f)
      for (int64_t i = 0; i < d_v; ++i) s.acc[i] /= s.sum;
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
    const int64_t lowest = window > 0 ? int64_t(q_pos[t]) - window + 1 : std::numeric_limits<int64_t>::min();
    begin_[t] = std::lower_bound(first, last, lowest, [](int32_t p, int64_t v) { return p < v; }) - pos_.begin();
    end_[t] = std::upper_bound(first, last, int64_t(q_pos[t]), [](int64_t v, int32_t p) { return v < p; }) -
              pos_.begin();
  }
}

void flash_attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                     const AttnCells& cells, float scale, float softcap, float* out) {
  check_attention_args("flash_attention", n_head, k, v);
  const int64_t n_rep = n_head / k.n_head_kv;
  std::vector<int64_t> first;  // (n_groups + 1,) first token of each group of consecutive tokens sharing a start
  for (int64_t t = 0; t < n_q; ++t)
    if (first.empty() || t - first.back() == kGroup || cells.begin[t] != cells.begin[first.back()]) first.push_back(t);
  first.push_back(n_q);
  const int64_t n_groups = int64_t(first.size()) - 1;
  parallel_ranges(cpu_pool(), n_groups * k.n_head_kv, 1, [&](int64_t p0, int64_t p1) {
    GroupQuery queries[kGroup];
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t grp = p / k.n_head_kv, g = p % k.n_head_kv, t0 = first[size_t(grp)];
      const int64_t count = first[size_t(grp) + 1] - t0;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t t = t0 + i;
        queries[i] = {q + (t * n_head + g * n_rep) * k.head_dim, out + (t * n_head + g * n_rep) * v.head_dim,
                      cells.end[t] - cells.begin[t]};
      }
      const HeadGroup hg{cells.cells + cells.begin[t0], k, v, scale, softcap, g, n_rep};
      attend_group(hg, queries, count);
    }
  });
}

}  // namespace hi
