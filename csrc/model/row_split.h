// Row split (tensor parallel): every weight matrix of a stage is cut by
// output rows across devices in a ratio. For each matmul the input is sent to
// every other device, each device computes its slice at the same time (one
// host worker thread per other device), and the slices are gathered into the
// main device's output. Norms, attention and the KV cache stay on the main
// device. Each send and each gather counts as a transfer.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "../device/device.h"
#include "../device/worker.h"
#include "block_config.h"

namespace hi {

// Row bounds (shares.size() + 1,) of a matrix of `rows` rows cut in the ratio
// `shares`: device i gets rows [bounds[i], bounds[i+1]).
std::vector<int64_t> split_rows(int64_t rows, const std::vector<double>& shares);

// Bytes each device's row-split buffers take for a block config (the planner's
// figure), in the order of `shares` (shares[0]: the main device).
std::vector<size_t> row_split_workspace_bytes(const BlockConfig& cfg, int64_t max_tokens,
                                              const std::vector<double>& shares);

class RowSplit {
 public:
  // devices[0] is the main device (the stage's); shares: the ratio, one per device.
  RowSplit(std::vector<std::shared_ptr<Device>> devices, std::vector<double> shares, const BlockConfig& cfg,
           int64_t max_tokens);
  // Places the slices of w (a view of host memory) on their devices; returns its id for run().
  int add_matrix(const Weight& w);
  // y (n, rows) = x (n, cols) @ W^T, each device its slice. main_act: matmul
  // activation scratch on the main device (the stage's).
  void run(int matrix, const float* x, int64_t n, float* y, void* main_act);

  int64_t transfers() const { return transfers_; }
  int64_t transfer_bytes() const { return transfer_bytes_; }

 private:
  struct Part {
    int device;
    Weight slice;     // rows [r0, r0 + slice.rows) of the matrix, placed on the device
    int64_t r0;
  };
  struct Buffers {    // one device's: (max_tokens, max_k) input, (max_tokens, max_rows) slice output, act scratch
    DeviceBuffer memory;
    float* x = nullptr;
    float* y = nullptr;
    void* act = nullptr;
  };

  std::vector<std::shared_ptr<Device>> devices_;
  std::vector<double> shares_;
  BlockConfig cfg_;
  int64_t max_tokens_;
  std::vector<Buffers> buffers_;                          // per device (the main device's x is unused)
  std::vector<std::unique_ptr<Worker>> workers_;          // per device; [0] null: the caller runs the main slice
  std::vector<std::unique_ptr<PlacedWeights>> placed_;
  struct Matrix {
    int64_t rows;              // of the whole matrix: the gathered output's width
    std::vector<Part> parts;   // devices with a share of its rows
  };

  std::vector<Matrix> matrices_;
  std::atomic<int64_t> transfers_{0}, transfer_bytes_{0};
};

}  // namespace hi
