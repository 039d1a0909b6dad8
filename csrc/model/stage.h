// A stage: a contiguous range of decoder layers on one device, with its KV
// cache, run over a batch of tokens that may belong to several sequences.
// The embedding lookup and the output head are separate steps (model code).
#pragma once
#include <cstdint>
#include <vector>

#include "block_config.h"
#include "kv_cache.h"

namespace hi {

class Stage {
 public:
  Stage(const BlockConfig& config, std::vector<LayerParams> params, std::vector<LayerWeights> weights,
        int64_t n_cells, QType cache_k, QType cache_v);

  // hidden: (n, n_embd), updated in place; seq, pos: (n,) per token.
  void forward(float* hidden, const int32_t* seq, const int32_t* pos, int64_t n);

  // Moves the cells of `seq` with positions in [p0, p1) by delta (context
  // shift): their positions change and their keys are rotated by delta so
  // they equal keys computed at the new positions (up to the cache's rounding).
  void shift_sequence(int32_t seq, int32_t p0, int32_t p1, int32_t delta);

  KVCache& cache() { return cache_; }
  int64_t n_layers() const { return int64_t(weights_.size()); }

 private:
  void attention(int64_t layer, const float* x, const std::vector<int32_t>& cells, VisibleCells& visible,
                 const int32_t* seq, const int32_t* pos, int64_t n, float* out);
  void feed_forward(int64_t layer, const float* x, int64_t n, float* out);

  BlockConfig cfg_;
  std::vector<LayerParams> params_;
  std::vector<LayerWeights> weights_;
  KVCache cache_;
};

}  // namespace hi
