#include "ends.h"

#include <stdexcept>
#include <string>

#include "../cpu/dequantize.h"
#include "../cpu/matmul.h"
#include "../cpu/ops.h"
#include "../cpu/thread_pool.h"

namespace hi {

namespace {

Weight placed_view(Weight w, const PlacedWeights& placed) {
  w.data = placed.data();
  return w;
}

size_t normed_bytes(int64_t n_embd, int64_t max_tokens) {
  return align_up(size_t(max_tokens * n_embd) * sizeof(float));
}

}  // namespace

Embedding::Embedding(std::shared_ptr<Device> device, const Weight& table, float scale)
    : device_(std::move(device)), placed_(*device_, table.data, table.bytes()),
      table_(placed_view(table, placed_)), scale_(scale) {}

void Embedding::lookup(const int32_t* ids, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= table_.rows)
      throw std::invalid_argument("token id " + std::to_string(ids[i]) + " is outside the vocabulary [0, " +
                                  std::to_string(table_.rows) + ")");
  const Device::Scope on_device(*device_);
  const size_t rb = row_bytes(table_.type, table_.cols);
  const int64_t cols = table_.cols;
  parallel_ranges(cpu_pool(), n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* row = out + i * cols;
      dequantize_serial(table_.type, table_.data + size_t(ids[i]) * rb, row, cols);
      if (scale_ != 1.0f)
        for (int64_t j = 0; j < cols; ++j) row[j] *= scale_;
    }
  });
}

size_t OutputHead::workspace_bytes(QType output_type, int64_t n_embd, int64_t max_tokens) {
  return normed_bytes(n_embd, max_tokens) + matmul_scratch_bytes(output_type, max_tokens, n_embd);
}

OutputHead::OutputHead(std::shared_ptr<Device> device, const Weight& norm, const Weight& output, float eps,
                       float softcap, int64_t max_tokens)
    : device_(std::move(device)), placed_norm_(*device_, norm.data, norm.bytes()),
      placed_output_(*device_, output.data, output.bytes()), norm_(placed_view(norm, placed_norm_)),
      output_(placed_view(output, placed_output_)), eps_(eps), softcap_(softcap), max_tokens_(max_tokens),
      workspace_(*device_, workspace_bytes(output.type, output.cols, max_tokens), MemKind::Compute) {
  if (norm.type != QType::F32 || norm.rows * norm.cols != output.cols)
    throw std::invalid_argument("output_norm must be an F32 vector of n_embd = " + std::to_string(output.cols));
}

void OutputHead::forward(const float* hidden, int64_t n, float* logits) {
  if (n <= 0 || n > max_tokens_)
    throw std::invalid_argument("the output head takes 1 to " + std::to_string(max_tokens_) + " rows, got " +
                                std::to_string(n));
  const Device::Scope on_device(*device_);
  float* normed = workspace_.as<float>();  // (n, n_embd)
  void* act = workspace_.as<uint8_t>() + normed_bytes(n_embd(), max_tokens_);
  rms_norm(hidden, norm_.f32(), normed, n, n_embd(), eps_);
  matmul(output_.type, output_.data, output_.rows, output_.cols, normed, n, logits, act);
  if (softcap_ > 0) softcap(logits, n * n_vocab(), softcap_);
}

}  // namespace hi
