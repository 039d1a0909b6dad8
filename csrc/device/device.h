// A device: where a stage's memory lives and where its kernels run. Every
// byte a stage holds goes through its device, which counts it by kind and
// keeps high-water marks, so the planner's numbers can be checked against
// what was really allocated, and a memory cap (max_memory) is enforced.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace hi {

enum class MemKind { Weights, KV, Compute };

// Device buffers and the pieces carved from them start on 64-byte boundaries
// (a cache line: vector loads never split one).
constexpr size_t kBufferAlign = 64;
constexpr size_t align_up(size_t bytes) { return (bytes + kBufferAlign - 1) / kBufferAlign * kBufferAlign; }
constexpr int kMemKinds = 3;

struct MemoryCounters {
  std::array<size_t, kMemKinds> used{}, high_water{};  // per MemKind
  size_t total_used = 0, total_high_water = 0;
};

class Device {
 public:
  // cap: bytes this device may hold in all (0 = no cap).
  Device(std::string name, size_t cap);
  virtual ~Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const std::string& name() const { return name_; }
  size_t cap() const { return cap_; }
  MemoryCounters counters() const;

  // Device memory of `bytes` counted under `kind`; throws std::runtime_error
  // naming the device when the cap would be passed.
  void* allocate(size_t bytes, MemKind kind);
  void release(void* p, size_t bytes, MemKind kind);
  // Weights that are already in host memory (the file mapping): a device whose
  // memory is host memory uses them in place, others copy them. The bytes
  // count as Weights until unplace_weights.
  virtual const uint8_t* place_weights(const uint8_t* host, size_t bytes) = 0;
  virtual void unplace_weights(const uint8_t* placed, size_t bytes) = 0;

  // What a thread holds while its kernels run on this device.
  struct Binding {
    virtual ~Binding() = default;
  };
  // Runs the calling thread's kernels on this device until the scope ends.
  class Scope {
   public:
    explicit Scope(Device& d) : binding_(d.bind()) {}

   private:
    std::unique_ptr<Binding> binding_;
  };

 protected:
  void count(size_t bytes, MemKind kind);    // throws past the cap
  void uncount(size_t bytes, MemKind kind);
  virtual void* raw_allocate(size_t bytes) = 0;
  virtual void raw_release(void* p) = 0;
  virtual std::unique_ptr<Binding> bind() = 0;  // may be null: nothing to bind

 private:
  std::string name_;
  size_t cap_;
  mutable std::mutex mutex_;  // guards counters_
  MemoryCounters counters_;
};

// Device memory owned by one object (moves, never copies).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Device& device, size_t bytes, MemKind kind);
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;

  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }
  void reset();

 private:
  Device* device_ = nullptr;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  MemKind kind_ = MemKind::Compute;
};

// Weights placed on a device for one object's lifetime.
class PlacedWeights {
 public:
  PlacedWeights(Device& device, const uint8_t* host, size_t bytes)
      : device_(&device), data_(device.place_weights(host, bytes)), bytes_(bytes) {}
  ~PlacedWeights() { device_->unplace_weights(data_, bytes_); }
  PlacedWeights(const PlacedWeights&) = delete;
  PlacedWeights& operator=(const PlacedWeights&) = delete;
  const uint8_t* data() const { return data_; }

 private:
  Device* device_;
  const uint8_t* data_;
  size_t bytes_;
};

}  // namespace hi
