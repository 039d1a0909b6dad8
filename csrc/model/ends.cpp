#include "ends.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "../cpu/matmul.h"

namespace hi {

namespace {

Weight placed_view(Weight w, const PlacedWeights& placed) {
  w.data = placed.data();
  return w;
}

size_t float_bytes(int64_t rows, int64_t cols) { return align_up(size_t(rows * cols) * sizeof(float)); }

size_t ids_bytes(int64_t max_tokens) { return align_up(size_t(max_tokens) * sizeof(int32_t)); }

// Byte offsets in the head's workspace: normed rows, activation scratch, logit rows.
struct HeadLayout {
  size_t act, logits, total;
  HeadLayout(QType type, int64_t n_embd, int64_t n_vocab, int64_t max_tokens, bool host_memory)
      : act(float_bytes(max_tokens, n_embd)),
        logits(act + align_up(matmul_scratch_bytes(type, max_tokens, n_embd))),
        total(logits + (host_memory ? 0 : float_bytes(OutputHead::kLogitRows, n_vocab))) {}
};

}  // namespace

size_t Embedding::workspace_bytes(int64_t n_embd, int64_t max_tokens) {
  return ids_bytes(max_tokens) + float_bytes(max_tokens, n_embd);
}

Embedding::Embedding(std::shared_ptr<Device> device, const Weight& table, float scale, int64_t max_tokens)
    : device_(std::move(device)), placed_(*device_, table.data, table.type, table.rows, table.cols),
      table_(placed_view(table, placed_)), scale_(scale), max_tokens_(max_tokens),
      workspace_(*device_, workspace_bytes(table.cols, max_tokens), MemKind::Compute) {}

void Embedding::lookup(const int32_t* ids, int64_t n, float* out) {
  if (n <= 0 || n > max_tokens_)
    throw std::invalid_argument("the embedding takes 1 to " + std::to_string(max_tokens_) + " tokens, got " +
                                std::to_string(n));
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= table_.rows)
      throw std::invalid_argument("token id " + std::to_string(ids[i]) + " is outside the vocabulary [0, " +
                                  std::to_string(table_.rows) + ")");
  const Device::Scope on_device(*device_);
  Device& dev = *device_;
  int32_t* dev_ids = workspace_.as<int32_t>();  // (n,)
  float* rows = reinterpret_cast<float*>(workspace_.as<uint8_t>() + ids_bytes(max_tokens_));  // (n, n_embd)
  dev.to_device(dev_ids, ids, size_t(n) * sizeof(int32_t));
  dev.get_rows(table_.type, Table::Weights, table_.data, table_.cols, dev_ids, n, scale_, rows);
  dev.to_host(out, rows, size_t(n * table_.cols) * sizeof(float));
}

size_t OutputHead::workspace_bytes(QType output_type, int64_t n_embd, int64_t n_vocab, int64_t max_tokens,
                                   bool host_memory) {
  return HeadLayout(output_type, n_embd, n_vocab, max_tokens, host_memory).total;
}

OutputHead::OutputHead(std::shared_ptr<Device> device, const Weight& norm, const Weight& output, float eps,
                       float softcap, int64_t max_tokens)
    : device_(std::move(device)), placed_norm_(*device_, norm.data, norm.type, norm.rows, norm.cols),
      placed_output_(*device_, output.data, output.type, output.rows, output.cols),
      norm_(placed_view(norm, placed_norm_)), output_(placed_view(output, placed_output_)), eps_(eps),
      softcap_(softcap), max_tokens_(max_tokens),
      workspace_(*device_,
                 workspace_bytes(output.type, output.cols, output.rows, max_tokens, device_->host_memory()),
                 MemKind::Compute) {
  if (norm.type != QType::F32 || norm.rows * norm.cols != output.cols)
    throw std::invalid_argument("output_norm must be an F32 vector of n_embd = " + std::to_string(output.cols));
}

void OutputHead::forward(const float* hidden, int64_t n, float* logits) {
  if (n <= 0 || n > max_tokens_)
    throw std::invalid_argument("the output head takes 1 to " + std::to_string(max_tokens_) + " rows, got " +
                                std::to_string(n));
  const Device::Scope on_device(*device_);
  Device& dev = *device_;
  const HeadLayout at(output_.type, n_embd(), n_vocab(), max_tokens_, dev.host_memory());
  uint8_t* base = workspace_.as<uint8_t>();
  float* normed = workspace_.as<float>();  // (n, n_embd)
  void* act = base + at.act;
  dev.to_device(normed, hidden, size_t(n * n_embd()) * sizeof(float));
  dev.rms_norm(normed, norm_.f32(), normed, n, n_embd(), eps_);
  if (dev.host_memory()) {  // logits straight into the caller's rows
    dev.matmul(output_.type, output_.data, output_.rows, output_.cols, normed, n, logits, act);
    if (softcap_ > 0) dev.softcap(logits, n * n_vocab(), softcap_);
    return;
  }
  float* rows = reinterpret_cast<float*>(base + at.logits);
  for (int64_t r0 = 0; r0 < n; r0 += kLogitRows) {  // rows: (kLogitRows, n_vocab)
    const int64_t m = std::min(kLogitRows, n - r0);
    dev.matmul(output_.type, output_.data, output_.rows, output_.cols, normed + r0 * n_embd(), m, rows, act);
    if (softcap_ > 0) dev.softcap(rows, m * n_vocab(), softcap_);
    dev.to_host(logits + r0 * n_vocab(), rows, size_t(m * n_vocab()) * sizeof(float));
  }
}

}  // namespace hi
