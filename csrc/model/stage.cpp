#include "stage.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>

#include "../cpu/flash_attn.h"

namespace hi {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

void check_matrix(const Weight& w, int64_t rows, int64_t cols, const char* name, size_t layer) {
  require(w.present() && w.rows == rows && w.cols == cols,
          "layer " + std::to_string(layer) + ": " + name + " must be (" + std::to_string(rows) + ", " +
              std::to_string(cols) + "), got (" + std::to_string(w.rows) + ", " + std::to_string(w.cols) + ")");
}

void check_vector(const Weight& w, int64_t n, const char* name, size_t layer, bool required) {
  if (!w.present() && !required) return;
  require(w.present() && w.type == QType::F32 && w.rows * w.cols == n,
          "layer " + std::to_string(layer) + ": " + name + " must be an F32 vector of " + std::to_string(n));
}

std::vector<Weight*> all_weights(LayerWeights& w) {
  return {&w.attn_norm, &w.wq, &w.wk, &w.wv, &w.wo, &w.bq, &w.bk, &w.bv, &w.q_norm, &w.k_norm,
          &w.post_attn_norm, &w.ffn_norm, &w.w_gate, &w.w_up, &w.w_down, &w.post_ffn_norm};
}

std::vector<Weight*> matrices(LayerWeights& w) { return {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down}; }

}  // namespace

// Products of one input: y_i (n, w_i.rows) = x (n, cols) @ w_i^T [+ bias_i]
// for each of outs (at most 3: q, k, v). The device rounds x to activation
// blocks once for them all (Device::matmuls); a row split runs them one by one.
void Stage::linear(const float* x, int64_t n, std::initializer_list<LinearOut> outs) {
  if (rows_) {
    for (const LinearOut& o : outs) rows_->run(row_matrix_.at(&o.w), x, n, o.y, ws_.act);
  } else {
    std::array<MatmulOut, 3> products{};
    size_t count = 0;
    for (const LinearOut& o : outs) products.at(count++) = {o.w.type, o.w.data, o.w.rows, o.y};
    device_->matmuls(x, n, outs.begin()->w.cols, products.data(), count, ws_.act);
  }
  for (const LinearOut& o : outs)
    if (o.bias && o.bias->present()) device_->add_bias(o.y, o.bias->f32(), n, o.w.rows);
}

Stage::Stage(std::shared_ptr<Device> device, const BlockConfig& config, std::vector<LayerParams> params,
             std::vector<LayerWeights> weights, int64_t n_cells, QType cache_k, QType cache_v, int64_t max_tokens,
             std::unique_ptr<RowSplit> rows)
    : device_(std::move(device)), cfg_(config), params_(std::move(params)), weights_(std::move(weights)),
      rows_(std::move(rows)),
      cache_(*device_, int64_t(weights_.size()), n_cells, config.n_head_kv, config.head_dim_k, config.head_dim_v,
             cache_k, cache_v),
      max_tokens_(max_tokens) {
  require(max_tokens_ > 0, "max_tokens must be positive");
  require(params_.size() == weights_.size(), "one LayerParams per layer");
  require(cfg_.n_head_kv > 0 && cfg_.n_head % cfg_.n_head_kv == 0, "n_head must be a multiple of n_head_kv");
  const int64_t q_dim = cfg_.n_head * cfg_.head_dim_k, k_dim = cfg_.n_head_kv * cfg_.head_dim_k,
                v_dim = cfg_.n_head_kv * cfg_.head_dim_v;
  for (size_t l = 0; l < weights_.size(); ++l) {
    const LayerWeights& w = weights_[l];
    check_vector(w.attn_norm, cfg_.n_embd, "attn_norm", l, true);
    check_matrix(w.wq, q_dim, cfg_.n_embd, "attn_q", l);
    check_matrix(w.wk, k_dim, cfg_.n_embd, "attn_k", l);
    check_matrix(w.wv, v_dim, cfg_.n_embd, "attn_v", l);
    check_matrix(w.wo, cfg_.n_embd, cfg_.n_head * cfg_.head_dim_v, "attn_output", l);
    check_vector(w.bq, q_dim, "attn_q.bias", l, false);
    check_vector(w.bk, k_dim, "attn_k.bias", l, false);
    check_vector(w.bv, v_dim, "attn_v.bias", l, false);
    check_vector(w.q_norm, cfg_.head_dim_k, "attn_q_norm", l, false);
    check_vector(w.k_norm, cfg_.head_dim_k, "attn_k_norm", l, false);
    check_vector(w.post_attn_norm, cfg_.n_embd, "post_attention_norm", l, false);
    check_vector(w.ffn_norm, cfg_.n_embd, "ffn_norm", l, true);
    check_matrix(w.w_gate, cfg_.n_ff, cfg_.n_embd, "ffn_gate", l);
    check_matrix(w.w_up, cfg_.n_ff, cfg_.n_embd, "ffn_up", l);
    check_matrix(w.w_down, cfg_.n_embd, cfg_.n_ff, "ffn_down", l);
    check_vector(w.post_ffn_norm, cfg_.n_embd, "post_ffw_norm", l, false);
  }
  for (const LayerParams& p : params_) {
    const size_t slot = size_t(std::find(windows_.begin(), windows_.end(), p.window) - windows_.begin());
    if (slot == windows_.size()) windows_.push_back(p.window);
    require(windows_.size() <= size_t(kMaxWindows),
            "a stage supports at most " + std::to_string(kMaxWindows) + " distinct attention windows");
    window_slot_.push_back(int(slot));
  }
  for (LayerWeights& w : weights_) {
    if (rows_)
      for (Weight* m : matrices(w)) row_matrix_[m] = rows_->add_matrix(*m);
    for (Weight* one : all_weights(w)) {
      if (!one->present() || row_matrix_.count(one)) continue;
      placed_.push_back(std::make_unique<PlacedWeights>(*device_, one->data, one->type, one->rows, one->cols));
      one->data = placed_.back()->data();
    }
  }
  size_t bytes = 0;
  Workspace::layout(cfg_, max_tokens_, n_cells, nullptr, &bytes);
  workspace_buffer_ = DeviceBuffer(*device_, bytes, MemKind::Compute);
  ws_ = Workspace::layout(cfg_, max_tokens_, n_cells, workspace_buffer_.as<uint8_t>(), nullptr);
  const auto at = [](const void* p) { return reinterpret_cast<uintptr_t>(p); };  // upload_step's one block
  require(at(ws_.pos) < at(ws_.cells) && at(ws_.cells) < at(ws_.begin[0]) &&
              at(ws_.end[kMaxWindows - 1]) < at(ws_.visible),
          "workspace layout: a step's metadata must run from pos to visible");
}

// ws_.normed (n, n_embd) -> ws_.delta (n, n_embd)
void Stage::attention(int64_t layer, int64_t n) {
  const LayerWeights& w = weights_[size_t(layer)];
  const LayerParams& p = params_[size_t(layer)];
  Device& dev = *device_;
  const int64_t dk = cfg_.head_dim_k;
  linear(ws_.normed, n, {{w.wq, &w.bq, ws_.q}, {w.wk, &w.bk, ws_.k}, {w.wv, &w.bv, ws_.v}});
  if (w.q_norm.present()) dev.rms_norm(ws_.q, w.q_norm.f32(), ws_.q, n * cfg_.n_head, dk, cfg_.rms_eps);
  if (w.k_norm.present()) dev.rms_norm(ws_.k, w.k_norm.f32(), ws_.k, n * cfg_.n_head_kv, dk, cfg_.rms_eps);
  dev.rope(ws_.q, cfg_.n_head, ws_.k, cfg_.n_head_kv, ws_.pos, n, dk, cfg_.n_rot, p.rope_base, p.rope_freq_scale,
           cfg_.rope_style);
  cache_.write(layer, ws_.cells, n, ws_.k, ws_.v);

  const int slot = window_slot_[size_t(layer)];
  dev.attention(ws_.q, n, cfg_.n_head, cache_.keys(layer), cache_.values(layer),
                AttnCells{ws_.visible, ws_.begin[slot], ws_.end[slot]}, cfg_.attn_scale, cfg_.attn_softcap, ws_.attn,
                ws_.attn_parts);
  linear(ws_.attn, n, {{w.wo, nullptr, ws_.delta}});
  if (w.post_attn_norm.present())
    dev.rms_norm(ws_.delta, w.post_attn_norm.f32(), ws_.delta, n, cfg_.n_embd, cfg_.rms_eps);
}

// ws_.normed (n, n_embd) -> ws_.delta (n, n_embd)
void Stage::feed_forward(int64_t layer, int64_t n) {
  const LayerWeights& w = weights_[size_t(layer)];
  linear(ws_.normed, n, {{w.w_gate, nullptr, ws_.gate}, {w.w_up, nullptr, ws_.up}});
  if (rows_) {
    device_->gated_activation(ws_.gate, ws_.up, ws_.gate, n * cfg_.n_ff, cfg_.activation);
    linear(ws_.gate, n, {{w.w_down, nullptr, ws_.delta}});
  } else {  // the gating formed while down's input is rounded: one launch on CUDA
    device_->gated_matmul(ws_.gate, ws_.up, cfg_.activation, n, cfg_.n_ff,
                          {w.w_down.type, w.w_down.data, w.w_down.rows, ws_.delta}, ws_.act);
  }
  if (w.post_ffn_norm.present())
    device_->rms_norm(ws_.delta, w.post_ffn_norm.f32(), ws_.delta, n, cfg_.n_embd, cfg_.rms_eps);
}

void Stage::shift_sequence(int32_t seq, int32_t p0, int32_t p1, int32_t delta) {
  const std::vector<int32_t> cells = cache_.shift_positions(seq, p0, p1, delta);
  if (cells.empty() || delta == 0) return;
  const Device::Scope on_device(*device_);
  Device& dev = *device_;
  const int64_t dk = cfg_.head_dim_k;
  const std::vector<int32_t> by(size_t(max_tokens_), delta);  // (max_tokens,) rotation angle factor per cell
  dev.to_device(ws_.pos, by.data(), by.size() * sizeof(int32_t));
  // Key rows go through ws_.k, max_tokens cells at a time.
  for (size_t c0 = 0; c0 < cells.size(); c0 += size_t(max_tokens_)) {
    const int64_t n = std::min(int64_t(cells.size() - c0), max_tokens_);
    dev.to_device(ws_.cells, cells.data() + c0, size_t(n) * sizeof(int32_t));
    for (int64_t l = 0; l < n_layers(); ++l) {
      const LayerParams& p = params_[size_t(l)];
      cache_.read_keys(l, ws_.cells, n, ws_.k);
      // RoPE rotations compose: rotating a key made at pos by delta gives the key at pos + delta.
      dev.rope(ws_.k, cfg_.n_head_kv, nullptr, 0, ws_.pos, n, dk, cfg_.n_rot, p.rope_base, p.rope_freq_scale,
               cfg_.rope_style);
      cache_.write_keys(l, ws_.cells, n, ws_.k);
    }
  }
  dev.synchronize();
}

// Stages a step's token metadata at its workspace offsets (workspace.h: pos
// first, visible last) and uploads it in one copy, then the hidden states:
// each copy to a GPU waits for the device, so two waits a step instead of one
// per input (6 for one attention window, 8 for two).
void Stage::upload_step(const float* hidden, const std::vector<int32_t>& cells, const int32_t* seq,
                        const int32_t* pos, int64_t n) {
  const uintptr_t base = reinterpret_cast<uintptr_t>(ws_.pos);
  VisibleCells visible(cache_.cell_seq(), cache_.cell_pos(), cache_.n_cells(), seq, n);
  const AttnCells host = visible.slices();
  const size_t span =  // through the visible cells this step uses
      size_t(reinterpret_cast<uintptr_t>(ws_.visible) - base) + size_t(visible.n_cells()) * sizeof(int32_t);
  if (step_host_.size() < span) step_host_.resize(span);
  const auto stage = [&](const void* field, const void* src, size_t bytes) {
    std::memcpy(step_host_.data() + (reinterpret_cast<uintptr_t>(field) - base), src, bytes);
  };
  stage(ws_.pos, pos, size_t(n) * sizeof(int32_t));
  stage(ws_.cells, cells.data(), size_t(n) * sizeof(int32_t));
  stage(ws_.visible, host.cells, size_t(visible.n_cells()) * sizeof(int32_t));
  for (size_t slot = 0; slot < windows_.size(); ++slot) {
    visible.select(seq, pos, windows_[slot]);
    stage(ws_.begin[slot], host.begin, size_t(n) * sizeof(int64_t));
    stage(ws_.end[slot], host.end, size_t(n) * sizeof(int64_t));
  }
  device_->to_device(ws_.pos, step_host_.data(), span);
  device_->to_device(ws_.hidden, hidden, size_t(n * cfg_.n_embd) * sizeof(float));
}

// Each layer's residual adds go with the norm that reads their sum
// (Device::add_rms_norm): the attention's with the feed-forward norm, the
// feed-forward's with the next layer's attention norm.
void Stage::run_layers(int64_t n, const std::vector<int32_t>* wanted) {
  Device& dev = *device_;
  const int64_t e = cfg_.n_embd;
  const float eps = cfg_.rms_eps;
  if (n_layers() > 0) dev.rms_norm(ws_.hidden, weights_[0].attn_norm.f32(), ws_.normed, n, e, eps);
  for (int64_t l = 0; l < n_layers(); ++l) {
    const LayerWeights& w = weights_[size_t(l)];
    const bool last = l == n_layers() - 1;
    attention(l, n);
    int64_t m = n;  // rows going through the feed-forward
    if (wanted && last) {  // the wanted rows to the front: the feed-forward is theirs alone
      keep_rows(ws_.hidden, *wanted);
      keep_rows(ws_.delta, *wanted);
      m = int64_t(wanted->size());
      if (m == 0) break;  // no state wanted: the layer's keys and values were all it had to give
    }
    dev.add_rms_norm(ws_.hidden, ws_.delta, w.ffn_norm.f32(), ws_.normed, m, e, eps);
    feed_forward(l, m);
    if (last)
      dev.add(ws_.hidden, ws_.delta, m * e);
    else
      dev.add_rms_norm(ws_.hidden, ws_.delta, weights_[size_t(l) + 1].attn_norm.f32(), ws_.normed, m, e, eps);
  }
}

// Row wanted[j] to row j, in order: wanted is strictly increasing, so a row
// is read before anything is written over it.
void Stage::keep_rows(float* x, const std::vector<int32_t>& wanted) {
  const size_t e = size_t(cfg_.n_embd);
  for (size_t j = 0; j < wanted.size(); ++j)
    if (size_t(wanted[j]) != j) device_->copy(x + j * e, x + size_t(wanted[j]) * e, e * sizeof(float));
}

// Steps of up to this many tokens are decode steps (one token per sequence,
// up to 16 sequences), worth recording: a recording serves every later step
// of its size, as every launch's shape depends on the size alone.
constexpr int64_t kRecordedTokens = 16;

void Stage::run_layers_recorded(int64_t n) {
  // A row split moves slices through other devices, which one device cannot record.
  if (rows_ || n > kRecordedTokens || !device_records_) return run_layers(n);
  auto it = recorded_.find(n);
  if (it != recorded_.end()) return it->second->replay();
  // The first step of each size runs as it is, so that whatever a first run
  // does once (CUDA loads a kernel's module at its first launch) happens
  // outside a recording; the second is recorded.
  if (unrecorded_sizes_.insert(n).second) return run_layers(n);
  std::unique_ptr<Device::Recording> recording = device_->record([&] { run_layers(n); });
  if (recording)
    recorded_.emplace(n, std::move(recording));
  else
    device_records_ = false;
}

void Stage::forward(float* hidden, const int32_t* seq, const int32_t* pos, int64_t n,
                    const std::vector<int32_t>* wanted) {
  require(n > 0 && n <= max_tokens_, "a batch holds 1 to " + std::to_string(max_tokens_) + " tokens (max_tokens), got " +
                                         std::to_string(n));
  if (wanted)
    for (size_t j = 0; j < wanted->size(); ++j)
      require((*wanted)[j] >= (j ? (*wanted)[j - 1] + 1 : 0) && (*wanted)[j] < n,
              "wanted rows must be strictly increasing indices into the batch of " + std::to_string(n));
  const bool every_row = !wanted || int64_t(wanted->size()) == n;  // n strictly increasing indices below n
  const Device::Scope on_device(*device_);
  Device& dev = *device_;
  const std::vector<int32_t> cells = cache_.allocate(seq, pos, n);
  const size_t row_bytes = size_t(cfg_.n_embd) * sizeof(float);
  try {
    upload_step(hidden, cells, seq, pos, n);
    if (every_row)
      run_layers_recorded(n);
    else
      run_layers(n, wanted);
    dev.to_host(hidden, ws_.hidden, (every_row ? size_t(n) : wanted->size()) * row_bytes);
  } catch (...) {
    cache_.release(cells);  // a failed batch leaves no half-written cells behind
    try {
      dev.synchronize();  // nothing queued may still use the workspace; the first error is the one reported
    } catch (...) {
    }
    throw;
  }
}

}  // namespace hi
