#include "cpu_device.h"

#include <cstdlib>
#include <stdexcept>

namespace hi {

CpuDevice::CpuDevice(std::string name, int n_threads, size_t cap) : Device(std::move(name), cap) {
  if (n_threads < 0) throw std::invalid_argument("n_threads must be >= 0 (0 = the process-wide pool)");
  if (n_threads > 0) pool_ = std::make_unique<ThreadPool>(n_threads);
}

int CpuDevice::n_threads() const { return pool_ ? pool_->size() : cpu_threads(); }

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
