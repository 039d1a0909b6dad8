// The CPU as a device: host memory, its own thread pool. Several CPU devices
// (cpu:0, cpu:1, ...) can share a machine, each with a thread count and a
// memory cap, which is how tests and users give a stage a slice of the CPU.
#pragma once
#include <map>
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

  // The file mapping is host memory: weights are used in place, and a tensor
  // placed twice (an output head tied to the embedding) is counted once.
  const uint8_t* place_weights(const uint8_t* host, size_t bytes) override;
  void unplace_weights(const uint8_t* placed, size_t bytes) override;

 protected:
  void* raw_allocate(size_t bytes) override;
  void raw_release(void* p) override;
  std::unique_ptr<Binding> bind() override;

 private:
  std::unique_ptr<ThreadPool> pool_;  // null: the process-wide pool
  std::mutex placed_mutex_;           // guards placed_
  std::map<const uint8_t*, int> placed_;  // placed weight start -> times placed
};

}  // namespace hi
