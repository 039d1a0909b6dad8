#include "device.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../cpu/matmul.h"
#include "planar_rows.h"

namespace hi {

namespace {
constexpr size_t kPlanarChunkBytes = size_t(8) << 20;  // host buffer for weights made planar on their way to a device

const char* kind_name(MemKind kind) {
  switch (kind) {
    case MemKind::Weights: return "weights";
    case MemKind::KV: return "KV cache";
    case MemKind::Compute: return "compute buffers";
  }
  return "?";
}
}  // namespace

Device::Device(std::string name, size_t cap) : name_(std::move(name)), cap_(cap) {}

MemoryCounters Device::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

void Device::count(size_t bytes, MemKind kind) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cap_ && counters_.total_used + bytes > cap_)
    throw std::runtime_error(name_ + ": out of memory: " + std::to_string(bytes) + " bytes of " + kind_name(kind) +
                             " would pass the device's cap of " + std::to_string(cap_) + " bytes (" +
                             std::to_string(counters_.total_used) + " in use)");
  const int k = int(kind);
  counters_.used[k] += bytes;
  counters_.total_used += bytes;
  if (counters_.used[k] > counters_.high_water[k]) counters_.high_water[k] = counters_.used[k];
  if (counters_.total_used > counters_.total_high_water) counters_.total_high_water = counters_.total_used;
}

void Device::uncount(size_t bytes, MemKind kind) {
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.used[int(kind)] -= bytes;
  counters_.total_used -= bytes;
}

void* Device::allocate(size_t bytes, MemKind kind) {
  count(bytes, kind);
  void* p = bytes ? raw_allocate(bytes) : nullptr;
  if (bytes && !p) {
    uncount(bytes, kind);
    throw std::runtime_error(name_ + ": allocating " + std::to_string(bytes) + " bytes of " + kind_name(kind) +
                             " failed");
  }
  return p;
}

void Device::release(void* p, size_t bytes, MemKind kind) {
  if (p) raw_release(p);
  uncount(bytes, kind);
}

const uint8_t* Device::place_weights(const uint8_t* host, QType type, int64_t rows, int64_t cols) {
  const size_t bytes = size_t(rows) * row_bytes(type, cols);
  std::lock_guard<std::mutex> lock(placed_mutex_);
  auto it = placed_.find(host);
  if (it != placed_.end()) {
    const Placed& held = it->second;
    if (held.type != type || held.cols != cols || held.bytes != bytes)
      throw std::invalid_argument(name() + ": weights placed again as " + qtype_info(type).name + " (" +
                                  std::to_string(rows) + ", " + std::to_string(cols) + "), first placed as " +
                                  qtype_info(held.type).name + " with rows of " + std::to_string(held.cols));
    ++it->second.count;
    return held.data;
  }
  if (host_memory()) {
    count(bytes, MemKind::Weights);
    placed_.emplace(host, Placed{host, 1, type, cols, bytes});
    return host;
  }
  void* data = allocate(bytes, MemKind::Weights);
  try {
    if (planar_weights() && has_planar_rows(type)) {
      // A few MiB of rows at a time: an output head of hundreds of MB needs no
      // host copy of its own size (to_device returns once the bytes are copied).
      const size_t rb = row_bytes(type, cols);
      const int64_t chunk = std::max<int64_t>(1, int64_t(kPlanarChunkBytes / rb));
      std::vector<uint8_t> planar(size_t(std::min(rows, chunk)) * rb);  // (<= chunk rows, row bytes) planar rows
      for (int64_t r = 0; r < rows; r += chunk) {
        const int64_t n = std::min(chunk, rows - r);
        make_planar_rows(type, host + size_t(r) * rb, planar.data(), n, cols);
        to_device(static_cast<uint8_t*>(data) + size_t(r) * rb, planar.data(), size_t(n) * rb);
      }
    } else {
      to_device(data, host, bytes);
    }
  } catch (...) {
    release(data, bytes, MemKind::Weights);
    throw;
  }
  placed_.emplace(host, Placed{static_cast<const uint8_t*>(data), 1, type, cols, bytes});
  return static_cast<const uint8_t*>(data);
}

void Device::unplace_weights(const uint8_t* placed) {
  std::lock_guard<std::mutex> lock(placed_mutex_);
  for (auto it = placed_.begin(); it != placed_.end(); ++it) {
    if (it->second.data != placed) continue;
    if (--it->second.count == 0) {
      if (host_memory())
        uncount(it->second.bytes, MemKind::Weights);
      else
        release(const_cast<uint8_t*>(placed), it->second.bytes, MemKind::Weights);
      placed_.erase(it);
    }
    return;
  }
}

void check_attention_args(const std::string& who, int64_t n_head, const KVView& k, const KVView& v,
                          int64_t max_head_dim) {
  if (k.n_head_kv <= 0 || n_head % k.n_head_kv != 0 || v.n_head_kv != k.n_head_kv || v.n_cells != k.n_cells)
    throw std::invalid_argument(who + ": n_head must be a multiple of n_head_kv, and K and V must match");
  for (QType t : {k.type, v.type})
    if (t != QType::F32 && t != QType::F16 && t != QType::Q8_0 && t != QType::Q4_0)
      throw std::invalid_argument(who + ": cache type " + qtype_info(t).name + " is not one of f32, f16, q8_0, q4_0");
  row_bytes(k.type, k.head_dim);  // validates head sizes against the block size
  row_bytes(v.type, v.head_dim);
  if (max_head_dim > 0 && (k.head_dim > max_head_dim || v.head_dim > max_head_dim))
    throw std::invalid_argument(who + ": attention supports head sizes up to " + std::to_string(max_head_dim));
}

void Device::run_matmuls(const float* x, int64_t n, int64_t k, const MatmulOut* outs, size_t n_outs, void* scratch,
                         const Gating* gating) {
  if (n < 0 || k < 0) throw std::invalid_argument("matmul: negative size");
  for (size_t i = 0; i < n_outs; ++i) {  // every product checked before any runs
    const QTypeInfo& info = qtype_info(outs[i].type);
    if (outs[i].rows < 0) throw std::invalid_argument("matmul: negative size");
    if (info.block_values > 1 && k % info.block_values != 0)
      throw std::invalid_argument("matmul: k=" + std::to_string(k) + " is not a multiple of " + info.name + "'s " +
                                  std::to_string(info.block_values) + "-value blocks");
  }
  bool gated = !gating;  // x holds its final values
  std::vector<MatmulOut> kind;  // the products whose weights pair with one activation kind
  kind.reserve(n_outs);
  // Every type's block_values is one of these: float weights, 32- and 256-value blocks.
  for (const int64_t values : {int64_t(1), int64_t(QK), int64_t(QK_K)}) {
    kind.clear();
    size_t act_bytes = 0;
    for (size_t i = 0; i < n_outs; ++i) {
      if (outs[i].rows == 0 || qtype_info(outs[i].type).block_values != values) continue;
      kind.push_back(outs[i]);
      act_bytes = std::max(act_bytes, matmul_scratch_bytes(outs[i].type, n, k));
    }
    if (kind.empty() || n == 0) continue;
    DeviceBuffer own;  // when the caller gives no scratch
    void* act = nullptr;
    if (values > 1) {
      if (!scratch) own = DeviceBuffer(*this, act_bytes, MemKind::Compute);
      act = scratch ? scratch : own.as<void>();
      if (gated)
        round_activations(values, x, n, k, act);
      else
        round_gated_activations(values, gating->gate, gating->up, gating->fn, n, k, act);
    } else if (!gated) {
      gated_activation(gating->gate, gating->up, gating->gate, n * k, gating->fn);
    }
    gated = true;
    multiply(kind.data(), kind.size(), k, x, act, n);
    if (own.bytes()) synchronize();  // before `own` goes
  }
  if (!gated) gated_activation(gating->gate, gating->up, gating->gate, n * k, gating->fn);  // no product ran
}

void transfer(Device& from, const void* src, Device& to, void* dst, size_t bytes) {
  if (from.host_memory()) {
    to.to_device(dst, src, bytes);
  } else if (to.host_memory()) {
    from.to_host(dst, src, bytes);
  } else if (&from == &to) {
    to.copy(dst, src, bytes);
  } else {
    std::vector<uint8_t> staging(bytes);  // (bytes,) host copy between two device memories
    from.to_host(staging.data(), src, bytes);
    to.to_device(dst, staging.data(), bytes);
  }
}

DeviceBuffer::DeviceBuffer(Device& device, size_t bytes, MemKind kind)
    : device_(&device), ptr_(device.allocate(bytes, kind)), bytes_(bytes), kind_(kind) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    device_ = std::exchange(o.device_, nullptr);
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    kind_ = o.kind_;
  }
  return *this;
}

void DeviceBuffer::reset() {
  if (device_) device_->release(ptr_, bytes_, kind_);
  device_ = nullptr;
  ptr_ = nullptr;
  bytes_ = 0;
}

}  // namespace hi
