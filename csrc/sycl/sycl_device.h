// A SYCL device (an Intel GPU through Level Zero, or any device of the OpenCL
// runtime, the CPU included) as a hetinfer Device. This file and the others
// in csrc/sycl are built into libhetinfer_sycl.so, which links libsycl and is
// loaded at run time (csrc/device/plugin_loader.h): without PyPI's
// intel-sycl-rt the rest of hetinfer still works. Kernels are SYCL C++ from
// kernels/sycl, compiled at run time by the kernel_compiler extension and
// cached across processes by the runtime's persistent cache.
#pragma once
#include <sycl/sycl.hpp>

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "../device/device.h"

namespace hi {

class SyclDevice : public Device {
 public:
  // Compiles (or loads from the cache) every kernel source for `device`.
  SyclDevice(const sycl::device& device, std::string name, size_t cap);
  ~SyclDevice() override;

  bool host_memory() const override { return false; }
  // Planar rows: a sub-group reading neighbouring blocks reads neighbouring
  // bytes (whole, aligned lines when a row has a multiple of 8 blocks).
  bool planar_weights() const override { return true; }
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
  void attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                 const AttnCells& cells, float scale, float softcap, float* out, float* parts) override;

 protected:
  void round_activations(int64_t values, const float* x, int64_t n, int64_t k, void* act) override;
  void multiply(const MatmulOut* outs, size_t n_outs, int64_t k, const float* x, const void* act,
                int64_t n) override;
  void* raw_allocate(size_t bytes) override;
  void raw_release(void* p) override;
  std::unique_ptr<Binding> bind() override { return nullptr; }

 private:
  const sycl::kernel& kernel(const std::string& name);
  template <typename... Args>
  void launch(const std::string& name, size_t global, size_t local, const Args&... args);
  // Runs f, turning a SYCL error into std::runtime_error naming this device and what failed.
  template <typename F>
  auto guarded(const char* what, F&& f) -> decltype(f());

  sycl::queue queue_;  // in order: ops run in the order they are queued
  std::optional<sycl::kernel_bundle<sycl::bundle_state::executable>> bundle_;  // every kernel source
  std::mutex kernels_mutex_;                                                  // guards kernels_
  std::unordered_map<std::string, sycl::kernel> kernels_;                     // name -> kernel, found lazily
};

}  // namespace hi
