#include "cpu_device.h"

#include <cstdlib>
#include <stdexcept>

namespace hi {

CpuDevice::CpuDevice(std::string name, int n_threads, size_t cap) : Device(std::move(name), cap) {
  if (n_threads < 0) throw std::invalid_argument("n_threads must be >= 0 (0 = the process-wide pool)");
  if (n_threads > 0) pool_ = std::make_unique<ThreadPool>(n_threads);
}

int CpuDevice::n_threads() const { return pool_ ? pool_->size() : cpu_threads(); }

const uint8_t* CpuDevice::place_weights(const uint8_t* host, size_t bytes) {
  std::lock_guard<std::mutex> lock(placed_mutex_);
  auto it = placed_.find(host);
  if (it != placed_.end()) {
    ++it->second;
    return host;
  }
  count(bytes, MemKind::Weights);
  placed_.emplace(host, 1);
  return host;
}

void CpuDevice::unplace_weights(const uint8_t* placed, size_t bytes) {
  std::lock_guard<std::mutex> lock(placed_mutex_);
  auto it = placed_.find(placed);
  if (it == placed_.end()) return;
  if (--it->second == 0) {
    placed_.erase(it);
    uncount(bytes, MemKind::Weights);
  }
}

void* CpuDevice::raw_allocate(size_t bytes) { return std::aligned_alloc(kBufferAlign, align_up(bytes)); }

void CpuDevice::raw_release(void* p) { std::free(p); }

namespace {
struct PoolBinding : Device::Binding {
  explicit PoolBinding(ThreadPool* pool) : bind(pool) {}
  BindPool bind;
};
}  // namespace

std::unique_ptr<Device::Binding> CpuDevice::bind() {
  if (!pool_) return nullptr;
  return std::make_unique<PoolBinding>(pool_.get());
}

}  // namespace hi
