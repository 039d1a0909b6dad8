#include "stage.h"

#include <stdexcept>
#include <string>

#include "../cpu/flash_attn.h"
#include "../cpu/matmul.h"
#include "../cpu/ops.h"

namespace hi {

namespace {

// y (n, w.rows) = x (n, w.cols) @ w^T [+ bias]
void linear(const Weight& w, const Weight& bias, const float* x, int64_t n, float* y) {
  matmul(w.type, w.data, w.rows, w.cols, x, n, y);
  if (!bias.present()) return;
  const float* b = bias.f32();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < w.rows; ++r) y[i * w.rows + r] += b[r];
}

void add_into(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

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

}  // namespace

Stage::Stage(const BlockConfig& config, std::vector<LayerParams> params, std::vector<LayerWeights> weights,
             int64_t n_cells, QType cache_k, QType cache_v)
    : cfg_(config), params_(std::move(params)), weights_(std::move(weights)),
      cache_(int64_t(weights_.size()), n_cells, config.n_head_kv, config.head_dim_k, config.head_dim_v, cache_k,
             cache_v) {
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
}

void Stage::attention(int64_t layer, const float* x, const std::vector<int32_t>& cells, VisibleCells& visible,
                      const int32_t* seq, const int32_t* pos, int64_t n, float* out) {
  const LayerWeights& w = weights_[size_t(layer)];
  const LayerParams& p = params_[size_t(layer)];
  const int64_t dk = cfg_.head_dim_k, dv = cfg_.head_dim_v;
  std::vector<float> q(size_t(n * cfg_.n_head * dk));       // (n, n_head, dk)
  std::vector<float> k(size_t(n * cfg_.n_head_kv * dk));    // (n, n_head_kv, dk)
  std::vector<float> v(size_t(n * cfg_.n_head_kv * dv));    // (n, n_head_kv, dv)
  linear(w.wq, w.bq, x, n, q.data());
  linear(w.wk, w.bk, x, n, k.data());
  linear(w.wv, w.bv, x, n, v.data());
  if (w.q_norm.present()) rms_norm(q.data(), w.q_norm.f32(), q.data(), n * cfg_.n_head, dk, cfg_.rms_eps);
  if (w.k_norm.present()) rms_norm(k.data(), w.k_norm.f32(), k.data(), n * cfg_.n_head_kv, dk, cfg_.rms_eps);
  rope(q.data(), pos, n, cfg_.n_head, dk, cfg_.n_rot, p.rope_base, p.rope_freq_scale, cfg_.rope_style);
  rope(k.data(), pos, n, cfg_.n_head_kv, dk, cfg_.n_rot, p.rope_base, p.rope_freq_scale, cfg_.rope_style);
  cache_.write(layer, cells, k.data(), v.data());

  std::vector<float> attn(size_t(n * cfg_.n_head * dv));  // (n, n_head, dv)
  visible.select(seq, pos, p.window);
  flash_attention(q.data(), n, cfg_.n_head, cache_.keys(layer), cache_.values(layer), visible, cfg_.attn_scale,
                  cfg_.attn_softcap, attn.data());
  linear(w.wo, Weight{}, attn.data(), n, out);
  if (w.post_attn_norm.present()) rms_norm(out, w.post_attn_norm.f32(), out, n, cfg_.n_embd, cfg_.rms_eps);
}

void Stage::feed_forward(int64_t layer, const float* x, int64_t n, float* out) {
  const LayerWeights& w = weights_[size_t(layer)];
  std::vector<float> gate(size_t(n * cfg_.n_ff)), up(size_t(n * cfg_.n_ff));  // (n, n_ff) each
  linear(w.w_gate, Weight{}, x, n, gate.data());
  linear(w.w_up, Weight{}, x, n, up.data());
  gated_activation(gate.data(), up.data(), gate.data(), n * cfg_.n_ff, cfg_.activation);
  linear(w.w_down, Weight{}, gate.data(), n, out);
  if (w.post_ffn_norm.present()) rms_norm(out, w.post_ffn_norm.f32(), out, n, cfg_.n_embd, cfg_.rms_eps);
}

void Stage::shift_sequence(int32_t seq, int32_t p0, int32_t p1, int32_t delta) {
  const std::vector<int32_t> cells = cache_.shift_positions(seq, p0, p1, delta);
  if (cells.empty() || delta == 0) return;
  const int64_t n = int64_t(cells.size()), dk = cfg_.head_dim_k;
  const std::vector<int32_t> by(cells.size(), delta);        // (n,) rotation angle factor per cell
  std::vector<float> keys(size_t(n * cfg_.n_head_kv * dk));  // (n, n_head_kv, dk)
  for (int64_t l = 0; l < n_layers(); ++l) {
    const LayerParams& p = params_[size_t(l)];
    cache_.read_keys(l, cells, keys.data());
    // RoPE rotations compose: rotating a key made at pos by delta gives the key at pos + delta.
    rope(keys.data(), by.data(), n, cfg_.n_head_kv, dk, cfg_.n_rot, p.rope_base, p.rope_freq_scale, cfg_.rope_style);
    cache_.write_keys(l, cells, keys.data());
  }
}

void Stage::forward(float* hidden, const int32_t* seq, const int32_t* pos, int64_t n) {
  const std::vector<int32_t> cells = cache_.allocate(seq, pos, n);
  VisibleCells visible(cache_.cell_seq(), cache_.cell_pos(), cache_.n_cells(), seq, n);
  const int64_t e = cfg_.n_embd;
  std::vector<float> normed(size_t(n * e)), delta(size_t(n * e));  // (n, n_embd) each
  try {
    for (int64_t l = 0; l < n_layers(); ++l) {
      const LayerWeights& w = weights_[size_t(l)];
      rms_norm(hidden, w.attn_norm.f32(), normed.data(), n, e, cfg_.rms_eps);
      attention(l, normed.data(), cells, visible, seq, pos, n, delta.data());
      add_into(hidden, delta.data(), n * e);
      rms_norm(hidden, w.ffn_norm.f32(), normed.data(), n, e, cfg_.rms_eps);
      feed_forward(l, normed.data(), n, delta.data());
      add_into(hidden, delta.data(), n * e);
    }
  } catch (...) {
    cache_.release(cells);  // a failed batch leaves no half-written cells behind
    throw;
  }
}

}  // namespace hi
