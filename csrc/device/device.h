// A device: where a stage's memory lives and where its kernels run. Every
// byte a stage holds goes through its device, which counts it by kind and
// keeps high-water marks, so the planner's numbers can be checked against
// what was really allocated, and a memory cap (max_memory) is enforced.
// Model code runs the op set below and never names a backend.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "op_types.h"

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
  // Weights (rows, cols) of `type` that are already in host memory (the file
  // mapping): a device whose memory is host memory uses them in place, others
  // copy them, as planar rows when planar_weights(). A tensor placed twice (an
  // output head tied to the embedding) is held and counted once; placing it
  // again as another type or shape throws std::invalid_argument (the copy's
  // layout depends on both). The bytes count as Weights until the last
  // unplace_weights.
  const uint8_t* place_weights(const uint8_t* host, QType type, int64_t rows, int64_t cols);
  void unplace_weights(const uint8_t* placed);
  // True when this device holds quantised weights as planar rows
  // (kernels/common/planar_blocks.h: each block field apart, so threads on
  // neighbouring blocks read neighbouring bytes); its matmul and get_rows of
  // Table::Weights read them so.
  virtual bool planar_weights() const { return false; }
  // True when get_rows' table of this kind is planar rows here: placed weights
  // on a planar_weights device (a KV cache never is).
  bool planar_table(Table kind) const { return planar_weights() && kind == Table::Weights; }

  // ---- copies. Pointers named host are host memory; all others this device's.
  // True when this device's memory is host memory (the CPU): pointers of one
  // such device may be used by another.
  virtual bool host_memory() const = 0;
  // Returns once `host` may be reused.
  virtual void to_device(void* dst, const void* host, size_t bytes) = 0;
  // Returns once the bytes are in `host`, after every op queued before it
  // (also when there are no bytes: a step that wants no rows waits so).
  virtual void to_host(void* host, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void fill_zero(void* dst, size_t bytes) = 0;
  // Waits for every op queued so far.
  virtual void synchronize() = 0;

  // ---- the op set: each has a numpy reference test on every device (tests/test_ops.py).
  // y (n, rows) = x (n, k) @ w^T, w: (rows, k) of `type`, placed (place_weights).
  // scratch: matmul_scratch_bytes(type, n, k) bytes (cpu/matmul.h: the
  // quantised activations) of this device, 16-byte aligned, or null.
  void matmul(QType type, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y,
              void* scratch) {
    const MatmulOut out{type, w, rows, y};
    matmuls(x, n, k, &out, 1, scratch);
  }
  // The products of one input: y_i = x (n, k) @ w_i^T for outs[0 .. n_outs),
  // each y_i what matmul gives. x is rounded to 8-bit activation blocks once
  // per block kind (32 or 256 values), not once per product, and a backend may
  // run products of one type together: q, k and v share one rounding (and one
  // CUDA launch when they are of one type), as do gate and up. scratch: the
  // largest matmul_scratch_bytes(outs[i].type, n, k), or null.
  void matmuls(const float* x, int64_t n, int64_t k, const MatmulOut* outs, size_t n_outs, void* scratch) {
    run_matmuls(x, n, k, outs, n_outs, scratch, nullptr);
  }
  // y = (act(gate) * up) @ w^T for `out`: the feed-forward's down projection
  // (gate, up: (n, k)). gate is overwritten with act(gate) * up, as
  // gated_activation leaves it, and a device that can forms it while rounding
  // it for the matmul (one launch on CUDA). scratch as matmul's.
  void gated_matmul(float* gate, const float* up, Activation act, int64_t n, int64_t k, const MatmulOut& out,
                    void* scratch) {
    const Gating gating{gate, up, act};
    run_matmuls(gate, n, k, &out, 1, scratch, &gating);
  }
  // y (rows, dim) = x / sqrt(mean(x^2) + eps) * w; w: (dim,) or null. x may be y.
  virtual void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) = 0;
  // x (rows, dim) += delta, then y = rms_norm(x) * w: where a block's output
  // joins the residual stream and the next block's norm reads it (twice a
  // layer). x and y as add then rms_norm leave them, bit for bit; y is not x.
  // Devices that pay per launch run it as one.
  virtual void add_rms_norm(float* x, const float* delta, const float* w, float* y, int64_t rows, int64_t dim,
                            float eps) {
    add(x, delta, rows * dim);
    rms_norm(x, w, y, rows, dim, eps);
  }
  // In place at positions pos (n_tokens,): x (n_tokens, n_heads, head_dim)
  // and, unless x2 is null, x2 (n_tokens, n_heads2, head_dim) in the same op
  // (q and k: one launch on a GPU). See cpu/ops.h.
  virtual void rope(float* x, int64_t n_heads, float* x2, int64_t n_heads2, const int32_t* pos, int64_t n_tokens,
                    int64_t head_dim, int64_t n_rot, float base, float freq_scale, RopeStyle style) = 0;
  // out = act(gate) * up over n values; out may be gate.
  virtual void gated_activation(const float* gate, const float* up, float* out, int64_t n, Activation act) = 0;
  virtual void add(float* x, const float* y, int64_t n) = 0;                           // x += y, (n,)
  virtual void add_bias(float* y, const float* b, int64_t rows, int64_t cols) = 0;    // y (rows, cols) += b (cols,)
  virtual void softcap(float* x, int64_t n, float cap) = 0;                           // x = cap tanh(x / cap)
  // out (n, cols) = dequantised rows ids[i] of table (any type) * scale. kind:
  // Weights (placed: planar rows on a planar_weights device) or Cache (a KV
  // cache, rows as set_rows writes them).
  virtual void get_rows(QType type, Table kind, const uint8_t* table, int64_t cols, const int32_t* ids, int64_t n,
                        float scale, float* out) = 0;
  // Quantises src (n, cols) into rows ids[i] of table (f32, f16, q8_0, q4_0).
  virtual void set_rows(QType type, uint8_t* table, int64_t cols, const int32_t* ids, int64_t n,
                        const float* src) = 0;
  // set_rows into two tables at the same rows ids[i] (a layer's keys and
  // values), in one op: one launch on CUDA.
  virtual void set_rows_pair(const RowsTarget& a, const RowsTarget& b, const int32_t* ids, int64_t n) {
    set_rows(a.type, a.table, a.cols, ids, n, a.src);
    set_rows(b.type, b.table, b.cols, ids, n, b.src);
  }
  // q (n_q, n_head, k.head_dim) -> out (n_q, n_head, v.head_dim) over the cells
  // each query sees (see cpu/flash_attn.h). parts: attention_parts_floats(n_q,
  // n_head, v.head_dim) floats of this device's memory for a split decode
  // step's partial results (op_types.h; CUDA uses them), or null: no split.
  virtual void attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                         const AttnCells& cells, float scale, float softcap, float* out, float* parts) = 0;

  // ---- recorded work (CUDA graphs): a step whose ops and arguments repeat.
  // Work a device can replay without the host queuing each op again.
  struct Recording {
    virtual ~Recording() = default;
    virtual void replay() = 0;  // queues the recorded ops again
  };
  // Queues the ops `queue_ops` queues, and returns a recording of them, or
  // null when this device does not record (then the ops simply ran). Only
  // asynchronous ops may be recorded: no to_device/to_host/synchronize.
  virtual std::unique_ptr<Recording> record(const std::function<void()>& queue_ops) {
    queue_ops();
    return nullptr;
  }

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
  // matmuls' two halves, which each backend provides. x (n, k) -> its 8-bit
  // activation blocks of `values` (32 or 256) values in act
  // (matmul_scratch_bytes of a type with such blocks), in this backend's layout.
  virtual void round_activations(int64_t values, const float* x, int64_t n, int64_t k, void* act) = 0;
  // round_activations of act(gate) * up, which goes to gate too (gated_matmul).
  virtual void round_gated_activations(int64_t values, float* gate, const float* up, Activation fn, int64_t n,
                                       int64_t k, void* act) {
    gated_activation(gate, up, gate, n * k, fn);
    round_activations(values, gate, n, k, act);
  }
  // The products of outs[0 .. n_outs) (rows > 0, n > 0), whose weights all pair
  // with one activation kind: act holds x's blocks of it (round_activations),
  // or is null for float weights, which multiply x itself.
  virtual void multiply(const MatmulOut* outs, size_t n_outs, int64_t k, const float* x, const void* act,
                        int64_t n) = 0;

  void count(size_t bytes, MemKind kind);    // throws past the cap
  void uncount(size_t bytes, MemKind kind);
  virtual void* raw_allocate(size_t bytes) = 0;
  virtual void raw_release(void* p) = 0;
  virtual std::unique_ptr<Binding> bind() = 0;  // may be null: nothing to bind

 private:
  // An input formed on the way: x = act(gate) * up, x being gate.
  struct Gating {
    float* gate;
    const float* up;
    Activation fn;
  };
  // matmuls, whose input is gated first when gating is given.
  void run_matmuls(const float* x, int64_t n, int64_t k, const MatmulOut* outs, size_t n_outs, void* scratch,
                   const Gating* gating);

  std::string name_;
  size_t cap_;
  mutable std::mutex mutex_;  // guards counters_
  MemoryCounters counters_;
  struct Placed {
    const uint8_t* data;  // the device copy, or the host weights themselves
    int count;            // placements
    QType type;           // as placed: the copy's layout depends on type and cols
    int64_t cols;
    size_t bytes;
  };
  std::mutex placed_mutex_;                  // guards placed_
  std::map<const uint8_t*, Placed> placed_;  // host weights -> where they are placed
};

// Throws std::invalid_argument (naming `who`) unless n_head is a multiple of
// the KV heads, K and V match, both caches are f32, f16, q8_0 or q4_0 and the
// head sizes fit their blocks and, when max_head_dim > 0, that limit.
void check_attention_args(const std::string& who, int64_t n_head, const KVView& k, const KVView& v,
                          int64_t max_head_dim = 0);

// Copies bytes from one device's memory to another's, through host memory
// when neither end is host memory.
void transfer(Device& from, const void* src, Device& to, void* dst, size_t bytes);

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
  PlacedWeights(Device& device, const uint8_t* host, QType type, int64_t rows, int64_t cols)
      : device_(&device), data_(device.place_weights(host, type, rows, cols)) {}
  ~PlacedWeights() { device_->unplace_weights(data_); }
  PlacedWeights(const PlacedWeights&) = delete;
  PlacedWeights& operator=(const PlacedWeights&) = delete;
  const uint8_t* data() const { return data_; }

 private:
  Device* device_;
  const uint8_t* data_;
};

}  // namespace hi
