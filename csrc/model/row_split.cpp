#include "row_split.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "workspace.h"

namespace hi {

namespace {

// (rows, cols) of the seven matrices of a block.
std::vector<std::pair<int64_t, int64_t>> block_matrices(const BlockConfig& c) {
  const int64_t q = c.n_head * c.head_dim_k, k = c.n_head_kv * c.head_dim_k, v = c.n_head_kv * c.head_dim_v;
  return {{q, c.n_embd}, {k, c.n_embd}, {v, c.n_embd}, {c.n_embd, c.n_head * c.head_dim_v},
          {c.n_ff, c.n_embd}, {c.n_ff, c.n_embd}, {c.n_embd, c.n_ff}};
}

struct Layout {  // byte offsets of one device's buffers
  size_t x = 0, y = 0, act = 0, total = 0;
};

Layout layout(const BlockConfig& c, int64_t n, const std::vector<double>& shares, size_t device) {
  int64_t max_k = 0, max_rows = 0;
  for (auto [rows, k] : block_matrices(c)) {
    const std::vector<int64_t> b = split_rows(rows, shares);
    max_k = std::max(max_k, k);
    max_rows = std::max(max_rows, b[device + 1] - b[device]);
  }
  Layout l;
  // The main device reads x in place and uses the stage's act scratch: only its slice output is its own.
  const bool main = device == 0;
  l.x = 0;
  l.y = main ? 0 : align_up(size_t(n * max_k) * sizeof(float));
  l.act = l.y + align_up(size_t(n * max_rows) * sizeof(float));
  l.total = l.act + (main ? 0 : align_up(act_scratch_bytes(c, n)));
  return l;
}

}  // namespace

std::vector<int64_t> split_rows(int64_t rows, const std::vector<double>& shares) {
  double total = 0;
  for (double s : shares) {
    if (!(s >= 0) || !std::isfinite(s)) throw std::invalid_argument("row split shares must be finite and >= 0");
    total += s;
  }
  if (total <= 0) throw std::invalid_argument("row split shares must not all be 0");
  std::vector<int64_t> bounds{0};
  double acc = 0;
  for (double s : shares) {
    acc += s;
    bounds.push_back(std::min<int64_t>(rows, std::llround(double(rows) * acc / total)));
  }
  bounds.back() = rows;
  for (size_t i = 1; i < bounds.size(); ++i) bounds[i] = std::max(bounds[i], bounds[i - 1]);
  return bounds;
}

std::vector<size_t> row_split_workspace_bytes(const BlockConfig& cfg, int64_t max_tokens,
                                              const std::vector<double>& shares) {
  std::vector<size_t> out;
  for (size_t d = 0; d < shares.size(); ++d) out.push_back(layout(cfg, max_tokens, shares, d).total);
  return out;
}

RowSplit::RowSplit(std::vector<std::shared_ptr<Device>> devices, std::vector<double> shares, const BlockConfig& cfg,
                   int64_t max_tokens)
    : devices_(std::move(devices)), shares_(std::move(shares)), cfg_(cfg), max_tokens_(max_tokens) {
  if (devices_.size() != shares_.size() || devices_.size() < 2)
    throw std::invalid_argument("a row split needs two or more devices and one share per device");
  split_rows(1, shares_);  // validates the shares
  for (size_t d = 0; d < devices_.size(); ++d) {
    const Layout l = layout(cfg_, max_tokens_, shares_, d);
    Buffers b;
    b.memory = DeviceBuffer(*devices_[d], l.total, MemKind::Compute);
    uint8_t* base = b.memory.as<uint8_t>();
    b.x = d ? reinterpret_cast<float*>(base + l.x) : nullptr;
    b.y = reinterpret_cast<float*>(base + l.y);
    b.act = d ? base + l.act : nullptr;
    buffers_.push_back(std::move(b));
    workers_.push_back(d ? std::make_unique<Worker>() : nullptr);
  }
}

int RowSplit::add_matrix(const Weight& w) {
  const std::vector<int64_t> b = split_rows(w.rows, shares_);
  const size_t rb = row_bytes(w.type, w.cols);
  std::vector<Part> parts;
  for (size_t d = 0; d < devices_.size(); ++d) {
    if (b[d + 1] == b[d]) continue;
    Weight slice = w;
    slice.rows = b[d + 1] - b[d];
    placed_.push_back(
        std::make_unique<PlacedWeights>(*devices_[d], w.data + size_t(b[d]) * rb, w.type, slice.rows, w.cols));
    slice.data = placed_.back()->data();
    parts.push_back({int(d), slice, b[d]});
  }
  matrices_.push_back({w.rows, std::move(parts)});
  return int(matrices_.size()) - 1;
}

void RowSplit::run(int matrix, const float* x, int64_t n, float* y, void* main_act) {
  if (n > max_tokens_) throw std::invalid_argument("row split: more tokens than max_tokens");
  const int64_t total_rows = matrices_[size_t(matrix)].rows;
  const std::vector<Part>& parts = matrices_[size_t(matrix)].parts;
  const int64_t k = parts.front().slice.cols;
  const size_t x_bytes = size_t(n * k) * sizeof(float);
  Device& main = *devices_[0];
  for (const Part& p : parts) {
    if (p.device == 0) continue;
    Buffers& b = buffers_[size_t(p.device)];
    Device& dev = *devices_[size_t(p.device)];
    workers_[size_t(p.device)]->submit([&, x_bytes] {
      transfer(main, x, dev, b.x, x_bytes);  // send the input
      const Device::Scope on_device(dev);
      dev.matmul(p.slice.type, p.slice.data, p.slice.rows, k, b.x, n, b.y, b.act);
    });
    transfers_ += 1;
    transfer_bytes_ += int64_t(x_bytes);
  }
  std::exception_ptr error;
  try {
    for (const Part& p : parts)
      if (p.device == 0) main.matmul(p.slice.type, p.slice.data, p.slice.rows, k, x, n, buffers_[0].y, main_act);
  } catch (...) {
    error = std::current_exception();
  }
  for (const Part& p : parts) {  // every worker is quiet before anything is rethrown
    if (p.device == 0) continue;
    try {
      workers_[size_t(p.device)]->wait();
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  for (const Part& p : parts) {  // gather: slice (n, slice.rows) -> y[:, r0 : r0 + slice.rows]
    const float* src = buffers_[size_t(p.device)].y;
    Device& from = *devices_[size_t(p.device)];
    for (int64_t i = 0; i < n; ++i)
      transfer(from, src + i * p.slice.rows, main, y + i * total_rows + p.r0, size_t(p.slice.rows) * sizeof(float));
    if (p.device != 0) {
      transfers_ += 1;
      transfer_bytes_ += int64_t(size_t(n * p.slice.rows) * sizeof(float));
    }
  }
}

}  // namespace hi
