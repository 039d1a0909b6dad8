// The two ends of a model around its stages: the token embedding lookup (on
// the first stage's device) and the output head (final norm, output matrix,
// logit softcap; on the last stage's device).
#pragma once
#include <cstdint>
#include <memory>

#include "../device/device.h"
#include "block_config.h"

namespace hi {

class Embedding {
 public:
  // table: (n_vocab, n_embd) of any type, a view of host memory; rows are
  // multiplied by scale (gemma3 scales by sqrt(n_embd)).
  Embedding(std::shared_ptr<Device> device, const Weight& table, float scale, int64_t max_tokens);
  // ids: (n,) checked against n_vocab; out: (n, n_embd), host memory; n <= max_tokens.
  void lookup(const int32_t* ids, int64_t n, float* out);
  // Bytes of its workspace (the planner's compute figure for the embedding).
  static size_t workspace_bytes(int64_t n_embd, int64_t max_tokens);
  int64_t n_vocab() const { return table_.rows; }
  int64_t n_embd() const { return table_.cols; }

 private:
  std::shared_ptr<Device> device_;
  PlacedWeights placed_;
  Weight table_;  // a view of placed_
  float scale_;
  int64_t max_tokens_;
  DeviceBuffer workspace_;  // ids (max_tokens,) int32, then rows (max_tokens, n_embd) floats
};

class OutputHead {
 public:
  // norm: (n_embd,) F32; output: (n_vocab, n_embd); softcap 0 = none.
  OutputHead(std::shared_ptr<Device> device, const Weight& norm, const Weight& output, float eps, float softcap,
             int64_t max_tokens);
  // hidden: (n, n_embd) -> logits: (n, n_vocab), host memory; n <= max_tokens.
  void forward(const float* hidden, int64_t n, float* logits);
  // Bytes of its workspace (the planner's compute figure for the head). A
  // device whose memory is not host memory computes logits kLogitRows rows at
  // a time into it; a host-memory one writes them in place.
  static size_t workspace_bytes(QType output_type, int64_t n_embd, int64_t n_vocab, int64_t max_tokens,
                                bool host_memory);
  static constexpr int64_t kLogitRows = 16;
  int64_t n_vocab() const { return output_.rows; }
  int64_t n_embd() const { return output_.cols; }

 private:
  std::shared_ptr<Device> device_;
  PlacedWeights placed_norm_, placed_output_;
  Weight norm_, output_;  // views of the placed weights
  float eps_, softcap_;
  int64_t max_tokens_;
  DeviceBuffer workspace_;  // normed (max_tokens, n_embd) floats, matmul activation scratch, then logit rows
                            // (kLogitRows, n_vocab) floats off host memory
};

}  // namespace hi
