// Bindings of the device op set (csrc/device/device.h) for tests, benchmarks
// and the Python side: each runs one op on a device (default: the CPU with the
// process-wide pool), copying numpy inputs to the device and outputs back.
// Shapes are checked here, before native code runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bindings_common.h"
#include "cpu/flash_attn.h"
#include "device/cpu_device.h"
#include "device/planar_rows.h"
#include "qtypes.h"

namespace py = pybind11;
using namespace hi;

namespace {

using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Ints = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using Bytes = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
using DevicePtr = std::shared_ptr<Device>;

void require(bool ok, const std::string& what) {
  if (!ok) throw py::value_error(what);
}

Device& device_or_cpu(const DevicePtr& device) {
  static CpuDevice cpu("cpu", 0, 0);  // the process-wide pool
  return device ? *device : cpu;
}

// One op call's device memory: inputs go in, outputs come back. A host-memory
// device uses the numpy buffers in place (kernels read block fields in place:
// byte inputs are copied when not 2-byte aligned, as GGUF data always is).
class Call {
 public:
  explicit Call(Device& dev) : dev_(dev), scope_(dev) {}
  // A destructor must not throw (it may run while an exception unwinds): a
  // device error here was raised by finish() already, or the device's next call raises it.
  ~Call() {
    try {
      dev_.synchronize();
    } catch (const std::exception&) {
    }
  }

  template <typename T>
  T* in(const py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
    const size_t bytes = size_t(a.size()) * sizeof(T);
    if (dev_.host_memory() && reinterpret_cast<uintptr_t>(a.data()) % 2 == 0) return const_cast<T*>(a.data());
    T* p = static_cast<T*>(scratch(bytes));
    dev_.to_device(p, a.data(), bytes);
    return p;
  }
  // Weights (rows, cols) of `type` placed as a model's are (planar rows on a
  // Device::planar_weights device), held until the call ends.
  const uint8_t* weights(const Bytes& w, QType type, int64_t rows, int64_t cols) {
    if (dev_.host_memory()) return in(w);
    placed_.push_back(std::make_unique<PlacedWeights>(dev_, w.data(), type, rows, cols));
    return placed_.back()->data();
  }
  // Device memory for an output of `count` values of T going to `host`.
  template <typename T>
  T* out(T* host, size_t count) {
    if (dev_.host_memory()) return host;
    T* p = static_cast<T*>(scratch(count * sizeof(T)));
    outputs_.push_back({host, p, count * sizeof(T)});
    return p;
  }
  // Device memory holding a copy of `host` (count values of T), copied back as an output.
  template <typename T>
  T* in_out(T* host, size_t count) {
    T* p = out(host, count);
    if (p != host) dev_.to_device(p, host, count * sizeof(T));
    return p;
  }
  // Copies the outputs back; returns once they are in host memory.
  void finish() {
    for (const Output& o : outputs_) dev_.to_host(o.host, o.device, o.bytes);
  }
  Device& device() { return dev_; }
  // Device memory of `bytes` for the op's own use, held until the call ends.
  void* scratch(size_t bytes) {
    buffers_.emplace_back(dev_, bytes, MemKind::Compute);
    return buffers_.back().as<void>();
  }

 private:
  struct Output {
    void* host;
    const void* device;
    size_t bytes;
  };
  Device& dev_;
  Device::Scope scope_;
  std::vector<DeviceBuffer> buffers_;
  std::vector<std::unique_ptr<PlacedWeights>> placed_;
  std::vector<Output> outputs_;
};

template <typename T>
py::array_t<T> array_like(const py::array& a) {
  return py::array_t<T>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

py::array_t<float> copy_of(const Floats& x) {
  py::array_t<float> y = array_like<float>(x);
  std::copy(x.data(), x.data() + x.size(), y.mutable_data());
  return y;
}

// Runs an in-place op over a copy of x.
template <typename Op>
py::array_t<float> in_place(const Floats& x, const DevicePtr& device, Op op) {
  py::array_t<float> y = copy_of(x);
  py::gil_scoped_release release;
  Call call(device_or_cpu(device));
  op(call, call.in_out(y.mutable_data(), size_t(y.size())));
  call.finish();
  return y;
}

// Weights of `rows` rows of k values of `type`, as raw bytes: throws unless the sizes add up.
void check_weights(const char* op, QType type, const Bytes& w, int64_t rows, int64_t k) {
  require(rows >= 0 && k > 0, std::string(op) + ": rows must be >= 0 and k > 0");
  require(size_t(w.size()) == size_t(rows) * row_bytes(type, k),
          std::string(op) + " weights: expected " + std::to_string(size_t(rows) * row_bytes(type, k)) +
              " bytes, got " + std::to_string(w.size()));
}

py::array_t<float> matmul_py(uint32_t type_id, const Bytes& w, int64_t rows, int64_t k, const Floats& x,
                             const DevicePtr& device) {
  const QType type = checked_type(type_id);
  check_weights("matmul", type, w, rows, k);
  require(x.ndim() == 2 && x.shape(1) == k, "matmul: x must have shape (n, " + std::to_string(k) + ")");
  const int64_t n = x.shape(0);
  py::array_t<float> y({n, rows});  // (n, rows)
  if (n == 0 || rows == 0) return y;
  py::gil_scoped_release release;
  Call call(device_or_cpu(device));
  call.device().matmul(type, call.weights(w, type, rows, k), rows, k, call.in(x), n,
                       call.out(y.mutable_data(), size_t(n * rows)), nullptr);
  call.finish();
  return y;
}

// The products of one input: [x (n, k) @ W_i^T for each (type_id, w, rows) of products].
using Product = std::tuple<uint32_t, Bytes, int64_t>;  // (type_id, w, rows)

std::vector<py::array_t<float>> matmuls_py(const Floats& x, const std::vector<Product>& products,
                                           const DevicePtr& device) {
  require(x.ndim() == 2 && x.shape(1) > 0, "matmuls: x must be (n, k) with k > 0");
  const int64_t n = x.shape(0), k = x.shape(1);
  std::vector<py::array_t<float>> ys;
  for (const auto& [type_id, w, rows] : products) {
    check_weights("matmuls", checked_type(type_id), w, rows, k);
    ys.emplace_back(std::vector<py::ssize_t>{n, rows});  // (n, rows)
  }
  {
    py::gil_scoped_release release;  // until the op is done: returning handles may need the GIL
    Call call(device_or_cpu(device));
    std::vector<MatmulOut> outs;
    for (size_t i = 0; i < products.size(); ++i) {
      const auto& [type_id, w, rows] = products[i];
      const QType type = QType(type_id);
      outs.push_back({type, call.weights(w, type, rows, k), rows, call.out(ys[i].mutable_data(), size_t(n * rows))});
    }
    call.device().matmuls(call.in(x), n, k, outs.data(), outs.size(), nullptr);
    call.finish();
  }
  return ys;
}

// A norm's weight: (dim,) floats, or None.
Floats norm_weight(const py::object& w, int64_t dim) {
  if (w.is_none()) return Floats();
  Floats wa = Floats::ensure(w);
  require(wa && wa.ndim() == 1 && wa.shape(0) == dim, "rms_norm: w must be (dim,)");
  return wa;
}

py::array_t<float> rms_norm_py(const Floats& x, const py::object& w, float eps, const DevicePtr& device) {
  require(x.ndim() == 2, "rms_norm: x must be (rows, dim)");
  const int64_t rows = x.shape(0), dim = x.shape(1);
  const Floats wa = norm_weight(w, dim);
  py::array_t<float> y({rows, dim});  // (rows, dim)
  py::gil_scoped_release release;
  Call call(device_or_cpu(device));
  call.device().rms_norm(call.in(x), w.is_none() ? nullptr : call.in(wa), call.out(y.mutable_data(), size_t(x.size())),
                         rows, dim, eps);
  call.finish();
  return y;
}

// (x + delta, rms_norm(x + delta) * w) from one add_rms_norm.
std::pair<py::array_t<float>, py::array_t<float>> add_rms_norm_py(const Floats& x, const Floats& delta,
                                                                  const py::object& w, float eps,
                                                                  const DevicePtr& device) {
  require(x.ndim() == 2, "add_rms_norm: x must be (rows, dim)");
  require(delta.ndim() == 2 && delta.shape(0) == x.shape(0) && delta.shape(1) == x.shape(1),
          "add_rms_norm: delta must have x's shape");
  const int64_t rows = x.shape(0), dim = x.shape(1);
  const Floats wa = norm_weight(w, dim);
  py::array_t<float> sum = copy_of(x), y({rows, dim});  // (rows, dim) each
  {
    py::gil_scoped_release release;  // until the op is done: returning copies handles, which needs the GIL
    Call call(device_or_cpu(device));
    call.device().add_rms_norm(call.in_out(sum.mutable_data(), size_t(x.size())), call.in(delta),
                               w.is_none() ? nullptr : call.in(wa), call.out(y.mutable_data(), size_t(x.size())), rows,
                               dim, eps);
    call.finish();
  }
  return {sum, y};
}

// Checks rope's arguments for x (n_tokens, n_heads, head_dim); returns the style.
RopeStyle rope_args(const Floats& x, const Ints& pos, int64_t n_rot, const std::string& style) {
  require(x.ndim() == 3, "rope: x must be (n_tokens, n_heads, head_dim)");
  require(pos.ndim() == 1 && pos.shape(0) == x.shape(0), "rope: pos must be (n_tokens,)");
  require(n_rot > 0 && n_rot % 2 == 0 && n_rot <= x.shape(2), "rope: n_rot must be even and in (0, head_dim]");
  require(style == "normal" || style == "neox", "rope: style must be 'normal' or 'neox'");
  return style == "neox" ? RopeStyle::Neox : RopeStyle::Normal;
}

py::array_t<float> rope_py(const Floats& x, const Ints& pos, int64_t n_rot, float base, float freq_scale,
                           const std::string& style, const DevicePtr& device) {
  const RopeStyle s = rope_args(x, pos, n_rot, style);
  return in_place(x, device, [&](Call& c, float* y) {
    c.device().rope(y, x.shape(1), nullptr, 0, c.in(pos), x.shape(0), x.shape(2), n_rot, base, freq_scale, s);
  });
}

// (x, x2) rotated by one rope op: the q and k of attention.
std::pair<py::array_t<float>, py::array_t<float>> rope_pair_py(const Floats& x, const Floats& x2, const Ints& pos,
                                                               int64_t n_rot, float base, float freq_scale,
                                                               const std::string& style, const DevicePtr& device) {
  const RopeStyle s = rope_args(x, pos, n_rot, style);
  require(x2.ndim() == 3 && x2.shape(0) == x.shape(0) && x2.shape(2) == x.shape(2),
          "rope_pair: x2 must be (n_tokens, n_heads2, head_dim) of x's tokens and head size");
  py::array_t<float> y = copy_of(x), y2 = copy_of(x2);
  {
    py::gil_scoped_release release;  // until the op is done: returning copies handles, which needs the GIL
    Call call(device_or_cpu(device));
    call.device().rope(call.in_out(y.mutable_data(), size_t(y.size())), x.shape(1),
                       call.in_out(y2.mutable_data(), size_t(y2.size())), x2.shape(1), call.in(pos), x.shape(0),
                       x.shape(2), n_rot, base, freq_scale, s);
    call.finish();
  }
  return {y, y2};
}

Activation activation_of(const std::string& act) {
  require(act == "silu" || act == "gelu_tanh", "gated_activation: act must be 'silu' or 'gelu_tanh'");
  return act == "silu" ? Activation::Silu : Activation::GeluTanh;
}

py::array_t<float> gated_py(const Floats& gate, const Floats& up, const std::string& act, const DevicePtr& device) {
  require(gate.size() == up.size(), "gated_activation: gate and up differ in size");
  const Activation fn = activation_of(act);
  py::array_t<float> out = array_like<float>(gate);
  py::gil_scoped_release release;
  Call call(device_or_cpu(device));
  call.device().gated_activation(call.in(gate), call.in(up), call.out(out.mutable_data(), size_t(out.size())),
                                 gate.size(), fn);
  call.finish();
  return out;
}

// (act(gate) * up, that @ W^T) from one gated_matmul: the feed-forward's down projection.
std::pair<py::array_t<float>, py::array_t<float>> gated_matmul_py(const Floats& gate, const Floats& up,
                                                                  const std::string& act, uint32_t type_id,
                                                                  const Bytes& w, int64_t rows,
                                                                  const DevicePtr& device) {
  require(gate.ndim() == 2 && gate.shape(1) > 0, "gated_matmul: gate must be (n, k) with k > 0");
  require(up.ndim() == 2 && up.shape(0) == gate.shape(0) && up.shape(1) == gate.shape(1),
          "gated_matmul: up must have gate's shape");
  const Activation fn = activation_of(act);
  const QType type = checked_type(type_id);
  const int64_t n = gate.shape(0), k = gate.shape(1);
  check_weights("gated_matmul", type, w, rows, k);
  py::array_t<float> gated = copy_of(gate), y({n, rows});  // (n, k), (n, rows)
  {
    py::gil_scoped_release release;  // until the op is done: returning copies handles, which needs the GIL
    Call call(device_or_cpu(device));
    const MatmulOut out{type, call.weights(w, type, rows, k), rows, call.out(y.mutable_data(), size_t(n * rows))};
    call.device().gated_matmul(call.in_out(gated.mutable_data(), size_t(gated.size())), call.in(up), fn, n, k, out,
                               nullptr);
    call.finish();
  }
  return {gated, y};
}

py::array_t<float> softcap_py(const Floats& x, float cap, const DevicePtr& device) {
  require(cap > 0.0f, "softcap: cap must be > 0");
  return in_place(x, device, [&](Call& c, float* y) { c.device().softcap(y, x.size(), cap); });
}

py::array_t<float> add_py(const Floats& x, const Floats& y, const DevicePtr& device) {
  require(x.size() == y.size(), "add: x and y differ in size");
  return in_place(x, device, [&](Call& c, float* out) { c.device().add(out, c.in(y), x.size()); });
}

py::array_t<float> add_bias_py(const Floats& y, const Floats& b, const DevicePtr& device) {
  require(y.ndim() == 2 && b.ndim() == 1 && b.shape(0) == y.shape(1), "add_bias: y must be (rows, cols), b (cols,)");
  return in_place(y, device, [&](Call& c, float* out) { c.device().add_bias(out, c.in(b), y.shape(0), y.shape(1)); });
}

void check_ids(const Ints& ids, int64_t rows, const char* what) {
  require(ids.ndim() == 1, std::string(what) + ": ids must be (n,)");
  for (int64_t i = 0; i < ids.size(); ++i)
    require(ids.data()[i] >= 0 && ids.data()[i] < rows,
            std::string(what) + ": id " + std::to_string(ids.data()[i]) + " is outside [0, " + std::to_string(rows) + ")");
}

int64_t table_rows(const Bytes& table, QType type, int64_t cols, const char* what) {
  require(cols > 0, std::string(what) + ": cols must be positive");
  const size_t rb = row_bytes(type, cols);
  require(size_t(table.size()) % rb == 0, std::string(what) + ": the table is not whole rows of " +
                                              std::to_string(rb) + " bytes");
  return int64_t(size_t(table.size()) / rb);
}

// The planar rows (kernels/common/planar_blocks.h) of a table of `cols`-value rows.
py::array_t<uint8_t> planar_rows_py(uint32_t type_id, const Bytes& table, int64_t cols) {
  const QType type = checked_type(type_id);
  const int64_t rows = table_rows(table, type, cols, "planar_rows");
  py::array_t<uint8_t> out(table.size());  // (rows * row bytes,)
  make_planar_rows(type, table.data(), out.mutable_data(), rows, cols);
  return out;
}

py::array_t<float> get_rows_py(uint32_t type_id, const Bytes& table, int64_t cols, const Ints& ids, float scale,
                               const DevicePtr& device, bool cache) {
  const QType type = checked_type(type_id);
  const int64_t rows = table_rows(table, type, cols, "get_rows");
  check_ids(ids, rows, "get_rows");
  const int64_t n = ids.size();
  py::array_t<float> out({n, cols});  // (n, cols)
  if (n == 0) return out;
  py::gil_scoped_release release;
  Call call(device_or_cpu(device));
  const uint8_t* t = cache ? call.in(table) : call.weights(table, type, rows, cols);
  call.device().get_rows(type, cache ? Table::Cache : Table::Weights, t, cols, call.in(ids), n, scale,
                         call.out(out.mutable_data(), size_t(n * cols)));
  call.finish();
  return out;
}

// Checks one set_rows table and its source rows; returns a copy of the table to update.
py::array_t<uint8_t> rows_target(QType type, const Bytes& table, int64_t cols, const Ints& ids, const Floats& src) {
  require(type == QType::F32 || type == QType::F16 || type == QType::Q8_0 || type == QType::Q4_0,
          "set_rows: the type must be f32, f16, q8_0 or q4_0");
  check_ids(ids, table_rows(table, type, cols, "set_rows"), "set_rows");
  require(src.ndim() == 2 && src.shape(0) == ids.size() && src.shape(1) == cols, "set_rows: src must be (n, cols)");
  py::array_t<uint8_t> out(table.size());  // the updated table
  std::copy(table.data(), table.data() + table.size(), out.mutable_data());
  return out;
}

py::array_t<uint8_t> set_rows_py(uint32_t type_id, const Bytes& table, int64_t cols, const Ints& ids, const Floats& src,
                                 const DevicePtr& device) {
  const QType type = checked_type(type_id);
  py::array_t<uint8_t> out = rows_target(type, table, cols, ids, src);
  const int64_t n = ids.size();
  py::gil_scoped_release release;
  Call call(device_or_cpu(device));
  uint8_t* td = call.in_out(out.mutable_data(), size_t(out.size()));
  if (n) call.device().set_rows(type, td, cols, call.in(ids), n, call.in(src));
  call.finish();
  return out;
}

// Both tables updated by one set_rows_pair: a layer's keys and values.
std::pair<py::array_t<uint8_t>, py::array_t<uint8_t>> set_rows_pair_py(
    uint32_t type_a, const Bytes& table_a, int64_t cols_a, const Floats& src_a, uint32_t type_b, const Bytes& table_b,
    int64_t cols_b, const Floats& src_b, const Ints& ids, const DevicePtr& device) {
  const QType ta = checked_type(type_a), tb = checked_type(type_b);
  py::array_t<uint8_t> out_a = rows_target(ta, table_a, cols_a, ids, src_a);
  py::array_t<uint8_t> out_b = rows_target(tb, table_b, cols_b, ids, src_b);
  const int64_t n = ids.size();
  {
    py::gil_scoped_release release;  // until the op is done: returning copies handles, which needs the GIL
    Call call(device_or_cpu(device));
    const RowsTarget a{ta, call.in_out(out_a.mutable_data(), size_t(out_a.size())), cols_a, call.in(src_a)};
    const RowsTarget b{tb, call.in_out(out_b.mutable_data(), size_t(out_b.size())), cols_b, call.in(src_b)};
    if (n) call.device().set_rows_pair(a, b, call.in(ids), n);
    call.finish();
  }
  return {out_a, out_b};
}

KVView kv_view(const Bytes& data, uint32_t type_id, int64_t n_cells, int64_t n_head_kv, int64_t head_dim,
               const char* what) {
  const QType type = checked_type(type_id);
  require(n_cells >= 0 && n_head_kv > 0 && head_dim > 0, std::string(what) + ": sizes must be positive");
  const size_t need = size_t(n_cells) * size_t(n_head_kv) * row_bytes(type, head_dim);
  require(size_t(data.size()) == need, std::string(what) + ": expected " + std::to_string(need) + " bytes, got " +
                                           std::to_string(data.size()));
  return {type, data.data(), n_cells, n_head_kv, head_dim};
}

py::array_t<float> flash_attention_py(const Floats& q, const Bytes& k_data, uint32_t k_type, const Bytes& v_data,
                                      uint32_t v_type, int64_t n_head_kv, int64_t head_dim_v, const Ints& q_seq,
                                      const Ints& q_pos, const Ints& cell_seq, const Ints& cell_pos, int32_t window,
                                      float scale, float softcap_value, const DevicePtr& device) {
  require(q.ndim() == 3, "flash_attention: q must be (n_q, n_head, head_dim)");
  const int64_t n_q = q.shape(0), n_head = q.shape(1), d_k = q.shape(2), n_cells = cell_seq.size();
  require(q_seq.size() == n_q && q_pos.size() == n_q, "flash_attention: q_seq and q_pos must be (n_q,)");
  require(cell_pos.size() == n_cells, "flash_attention: cell_seq and cell_pos must be (n_cells,)");
  KVView k = kv_view(k_data, k_type, n_cells, n_head_kv, d_k, "flash_attention K");
  KVView v = kv_view(v_data, v_type, n_cells, n_head_kv, head_dim_v, "flash_attention V");
  VisibleCells visible(cell_seq.data(), cell_pos.data(), n_cells, q_seq.data(), n_q);
  visible.select(q_seq.data(), q_pos.data(), window);
  const AttnCells host = visible.slices();
  // Host copies of the selection, as numpy arrays the call can upload.
  Ints cells(visible.n_cells()), begin(n_q), end(n_q);
  std::copy(host.cells, host.cells + visible.n_cells(), cells.mutable_data());
  py::array_t<int64_t, py::array::c_style | py::array::forcecast> b64(n_q), e64(n_q);
  std::copy(host.begin, host.begin + n_q, b64.mutable_data());
  std::copy(host.end, host.end + n_q, e64.mutable_data());
  py::array_t<float> out({n_q, n_head, head_dim_v});  // (n_q, n_head, d_v)
  py::gil_scoped_release release;
  Call call(device_or_cpu(device));
  k.data = call.in(k_data);
  v.data = call.in(v_data);
  const size_t parts_bytes = size_t(attention_parts_floats(n_q, n_head, head_dim_v)) * sizeof(float);
  auto* parts = static_cast<float*>(call.scratch(parts_bytes));  // room for a split decode step
  call.device().attention(call.in(q), n_q, n_head, k, v, AttnCells{call.in(cells), call.in(b64), call.in(e64)}, scale,
                          softcap_value, call.out(out.mutable_data(), size_t(out.size())), parts);
  call.finish();
  return out;
}

}  // namespace

void bind_ops(py::module_& m) {
  const auto dev = py::arg("device") = DevicePtr{};
  m.def("matmul", &matmul_py, py::arg("type_id"), py::arg("w"), py::arg("rows"), py::arg("k"), py::arg("x"), dev,
        "y (n, rows) = x (n, k) @ W^T, W given as raw bytes of a GGUF type.");
  m.def("matmuls", &matmuls_py, py::arg("x"), py::arg("products"), dev,
        "[x (n, k) @ W^T for each (type_id, w, rows) of products]: the products of one input, its activations\n"
        "rounded once per block kind (Device::matmuls).");
  m.def("rms_norm", &rms_norm_py, py::arg("x"), py::arg("w"), py::arg("eps"), dev);
  m.def("add_rms_norm", &add_rms_norm_py, py::arg("x"), py::arg("delta"), py::arg("w"), py::arg("eps"), dev,
        "(x + delta, rms_norm(x + delta, w)) from one op: a residual add and the norm that reads it.");
  m.def("rope", &rope_py, py::arg("x"), py::arg("pos"), py::arg("n_rot"), py::arg("base"), py::arg("freq_scale"),
        py::arg("style"), dev);
  m.def("rope_pair", &rope_pair_py, py::arg("x"), py::arg("x2"), py::arg("pos"), py::arg("n_rot"), py::arg("base"),
        py::arg("freq_scale"), py::arg("style"), dev, "(x, x2) rotated at the same positions by one op (q and k).");
  m.def("gated_activation", &gated_py, py::arg("gate"), py::arg("up"), py::arg("act"), dev);
  m.def("gated_matmul", &gated_matmul_py, py::arg("gate"), py::arg("up"), py::arg("act"), py::arg("type_id"),
        py::arg("w"), py::arg("rows"), dev,
        "(act(gate) * up, that @ W^T) from one op: the feed-forward's down projection, its input formed on the way.");
  m.def("softcap", &softcap_py, py::arg("x"), py::arg("cap"), dev);
  m.def("add", &add_py, py::arg("x"), py::arg("y"), dev, "x + y");
  m.def("add_bias", &add_bias_py, py::arg("y"), py::arg("b"), dev, "y (rows, cols) + b (cols,)");
  m.def("get_rows", &get_rows_py, py::arg("type_id"), py::arg("table"), py::arg("cols"), py::arg("ids"),
        py::arg("scale") = 1.0f, dev, py::arg("cache") = false,
        "Dequantised rows ids of a table of `cols`-value rows, times scale. The table is placed as weights are, or\n"
        "with cache=True copied as a KV cache is (set_rows' layout).");
  m.def("planar_rows", &planar_rows_py, py::arg("type_id"), py::arg("table"), py::arg("cols"),
        "The table's rows as a Device::planar_weights device holds weights: each block field stored apart.");
  m.def("set_rows", &set_rows_py, py::arg("type_id"), py::arg("table"), py::arg("cols"), py::arg("ids"),
        py::arg("src"), dev, "A copy of table with src (n, cols) quantised into rows ids.");
  m.def("set_rows_pair", &set_rows_pair_py, py::arg("type_a"), py::arg("table_a"), py::arg("cols_a"), py::arg("src_a"),
        py::arg("type_b"), py::arg("table_b"), py::arg("cols_b"), py::arg("src_b"), py::arg("ids"), dev,
        "Copies of tables a and b with src_a and src_b quantised into rows ids of each, by one op (keys and values).");
  m.def("flash_attention", &flash_attention_py, py::arg("q"), py::arg("k"), py::arg("k_type"), py::arg("v"),
        py::arg("v_type"), py::arg("n_head_kv"), py::arg("head_dim_v"), py::arg("q_seq"), py::arg("q_pos"),
        py::arg("cell_seq"), py::arg("cell_pos"), py::arg("window"), py::arg("scale"), py::arg("softcap"), dev);
}
