// A stage: a contiguous range of decoder layers on one device, with its KV
// cache, run over a batch of tokens that may belong to several sequences.
// The embedding lookup and the output head are separate steps (model code).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "../device/device.h"
#include "block_config.h"
#include "kv_cache.h"
#include "row_split.h"
#include "workspace.h"

namespace hi {

class Stage {
 public:
  // weights: views of host memory (the file mapping), placed on `device`;
  // the KV cache and a workspace for max_tokens tokens are allocated there.
  // rows: null, or a row split whose first device is `device`: the stage's
  // matrices are then cut by rows across its devices.
  Stage(std::shared_ptr<Device> device, const BlockConfig& config, std::vector<LayerParams> params,
        std::vector<LayerWeights> weights, int64_t n_cells, QType cache_k, QType cache_v, int64_t max_tokens,
        std::unique_ptr<RowSplit> rows = nullptr);

  // hidden: (n, n_embd), updated in place; seq, pos: (n,) per token; n <= max_tokens.
  // wanted: null (every token's state), or strictly increasing indices into
  // the batch, for the model's last stage: only those tokens' states are
  // needed (for their logits), so the last layer's feed-forward runs for them
  // alone, as llama.cpp's does, and they come back in hidden's first
  // wanted->size() rows. Every token's keys and values are still cached.
  void forward(float* hidden, const int32_t* seq, const int32_t* pos, int64_t n,
               const std::vector<int32_t>* wanted = nullptr);

  // Moves the cells of `seq` with positions in [p0, p1) by delta (context
  // shift): their positions change and their keys are rotated by delta so
  // they equal keys computed at the new positions (up to the cache's rounding).
  void shift_sequence(int32_t seq, int32_t p0, int32_t p1, int32_t delta);

  KVCache& cache() { return cache_; }
  Device& device() { return *device_; }
  int64_t n_layers() const { return int64_t(weights_.size()); }
  int64_t max_tokens() const { return max_tokens_; }
  const RowSplit* rows() const { return rows_.get(); }

 private:
  // A step's inputs: its token metadata (positions, KV cells, each query's
  // visible cells) staged in step_host_ and uploaded in one copy, then hidden.
  void upload_step(const float* hidden, const std::vector<int32_t>& cells, const int32_t* seq, const int32_t* pos,
                   int64_t n);
  // ws_.hidden (n, n_embd) through every layer; with `wanted` (forward's), the
  // last layer's feed-forward takes only those rows, moved to the front first.
  void run_layers(int64_t n, const std::vector<int32_t>* wanted = nullptr);
  void run_layers_recorded(int64_t n);  // every row: replaying a recording of the step where the device can
  void keep_rows(float* x, const std::vector<int32_t>& wanted);  // x (n, n_embd): rows `wanted` -> its first rows
  void attention(int64_t layer, int64_t n);
  void feed_forward(int64_t layer, int64_t n);
  // One product of linear(): y (n, w.rows) = x @ w^T [+ *bias].
  struct LinearOut {
    const Weight& w;
    const Weight* bias;  // null: none
    float* y;
  };
  void linear(const float* x, int64_t n, std::initializer_list<LinearOut> outs);

  std::shared_ptr<Device> device_;
  BlockConfig cfg_;
  std::vector<LayerParams> params_;
  std::vector<std::unique_ptr<PlacedWeights>> placed_;  // every present weight of every layer (but row-split ones)
  std::vector<LayerWeights> weights_;                   // views of placed_ (row-split matrices: of the file)
  std::unique_ptr<RowSplit> rows_;                      // null: no row split
  std::unordered_map<const Weight*, int> row_matrix_;   // a matrix of weights_ -> its id in rows_
  KVCache cache_;
  int64_t max_tokens_;
  std::vector<int32_t> windows_;      // (<= kMaxWindows,) the distinct attention windows of the layers
  std::vector<int> window_slot_;      // (n_layers,) each layer's index into windows_
  DeviceBuffer workspace_buffer_;  // stage_workspace_bytes(cfg_, max_tokens_, n_cells)
  Workspace ws_;                   // views of workspace_buffer_
  std::vector<uint8_t> step_host_;  // (bytes from ws_.pos to the end of the visible cells,) a step's metadata
  // Decode steps of n tokens queue the same ops on the same buffers every
  // time (a step's cells are read from the workspace): recorded once per n.
  std::unordered_map<int64_t, std::unique_ptr<Device::Recording>> recorded_;
  std::unordered_set<int64_t> unrecorded_sizes_;  // step sizes run once, unrecorded, before recording
  bool device_records_ = true;  // false once the device has declined to record
};

}  // namespace hi
