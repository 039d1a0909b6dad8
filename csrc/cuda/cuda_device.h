// An NVIDIA GPU as a hetinfer Device. This file and the others in csrc/cuda
// are built into libhetinfer_cuda.so with the kernels of kernels/cuda (nvcc at
// build time) and the static CUDA runtime, and loaded at run time
// (csrc/device/plugin_loader.h): without a driver or a GPU the rest of
// hetinfer still works, and the backend says why it is unavailable.
//
// Every op is queued on one stream per device, in order; copies to the host
// wait for it. A decode step's ops can be recorded once as a CUDA graph and
// replayed (Device::record), which removes the per-kernel launch cost.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "../device/device.h"

namespace hi {

// Makes CUDA device `ordinal` current on the calling thread and leaves it so.
// A failure is returned, and cleared from the thread's last error so that no
// later launch reports it as its own.
cudaError_t make_current(int ordinal);
// For a failure reported otherwise, or that nothing can report (destructors,
// releases): cleared from the thread's last error, which a later launch would
// report as its own.
void quietly(cudaError_t e);

class CudaDevice : public Device {
 public:
  // ordinal: the CUDA device number (cuda:N is device N of the runtime).
  CudaDevice(int ordinal, std::string name, size_t cap);
  ~CudaDevice() override;

  bool host_memory() const override { return false; }
  bool planar_weights() const override { return planar_; }
  void to_device(void* dst, const void* host, size_t bytes) override;
  void to_host(void* host, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void fill_zero(void* dst, size_t bytes) override;
  void synchronize() override;

  void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) override;
  void add_rms_norm(float* x, const float* delta, const float* w, float* y, int64_t rows, int64_t dim,
                    float eps) override;
  void rope(float* x, int64_t n_heads, float* x2, int64_t n_heads2, const int32_t* pos, int64_t n_tokens,
            int64_t head_dim, int64_t n_rot, float base, float freq_scale, RopeStyle style) override;
  void gated_activation(const float* gate, const float* up, float* out, int64_t n, Activation act) override;
  void add(float* x, const float* y, int64_t n) override;
  void add_bias(float* y, const float* b, int64_t rows, int64_t cols) override;
  void softcap(float* x, int64_t n, float cap) override;
  void get_rows(QType type, Table kind, const uint8_t* table, int64_t cols, const int32_t* ids, int64_t n,
                float scale, float* out) override;
  void set_rows(QType type, uint8_t* table, int64_t cols, const int32_t* ids, int64_t n, const float* src) override;
  void set_rows_pair(const RowsTarget& a, const RowsTarget& b, const int32_t* ids, int64_t n) override;
  void attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                 const AttnCells& cells, float scale, float softcap, float* out, float* parts) override;

  // A decode step as a CUDA graph; if it cannot be captured, the ops run
  // unrecorded and null is returned (with the reason on stderr).
  std::unique_ptr<Recording> record(const std::function<void()>& queue_ops) override;

 protected:
  void round_activations(int64_t values, const float* x, int64_t n, int64_t k, void* act) override;
  void round_gated_activations(int64_t values, float* gate, const float* up, Activation fn, int64_t n, int64_t k,
                               void* act) override;
  void multiply(const MatmulOut* outs, size_t n_outs, int64_t k, const float* x, const void* act,
                int64_t n) override;
  void* raw_allocate(size_t bytes) override;
  void raw_release(void* p) override;
  std::unique_ptr<Binding> bind() override;

 private:
  // Throws std::runtime_error naming this device and `what` unless e is cudaSuccess.
  void check(cudaError_t e, const char* what) const;
  // Makes this device current on the calling thread (it stays current), or throws.
  void select() const;
  // Runs f (kernel launches) with this device current, turning a launch
  // error into std::runtime_error naming this device.
  template <typename F>
  void run(F&& f);
  // record's capture: throws CaptureFailed when the step cannot be captured,
  // and an op's own error as it is.
  std::unique_ptr<Recording> capture(const std::function<void()>& queue_ops);

  int ordinal_;
  bool planar_;                    // quantised weights held as planar rows (HETINFER_CUDA_WEIGHTS)
  cudaStream_t stream_ = nullptr;  // every op of this device, in order
};

}  // namespace hi
