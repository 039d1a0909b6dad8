// The CPU as a device: host memory, its own thread pool. Several CPU devices
// (cpu:0, cpu:1, ...) can share a machine, each with a thread count and a
// memory cap, which is how tests and users give a stage a slice of the CPU.
#pragma once
#include <memory>
#include <mutex>

#include "../cpu/thread_pool.h"
#include "device.h"

namespace hi {

class CpuDevice : public Device {
 public:
  // n_threads 0: the process-wide pool (hardware threads, or set_cpu_threads).
  CpuDevice(std::string name, int n_threads, size_t cap);
  int n_threads() const;

  bool host_memory() const override { return true; }
  void to_device(void* dst, const void* host, size_t bytes) override;
  void to_host(void* host, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void fill_zero(void* dst, size_t bytes) override;
  void synchronize() override {}

  // The CPU kernels, on the pool bound to the calling thread (Device::Scope).
  void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) override;
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
  std::unique_ptr<Binding> bind() override;

 private:
  std::unique_ptr<ThreadPool> pool_;  // null: the process-wide pool
};

}  // namespace hi
