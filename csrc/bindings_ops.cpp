// Bindings of the decoder-block ops (csrc/cpu/ops.h, flash_attn.h), for tests
// and for the Python-side runner. Shapes are checked here, before native code runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "cpu/flash_attn.h"
#include "cpu/ops.h"
#include "qtypes.h"

namespace py = pybind11;
using namespace hi;

namespace {

using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Ints = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using Bytes = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

void require(bool ok, const std::string& what) {
  if (!ok) throw py::value_error(what);
}

py::array_t<float> rms_norm_py(const Floats& x, const py::object& w, float eps) {
  require(x.ndim() == 2, "rms_norm: x must be (rows, dim)");
  const int64_t rows = x.shape(0), dim = x.shape(1);
  Floats wa;
  if (!w.is_none()) {
    wa = Floats::ensure(w);
    require(wa && wa.ndim() == 1 && wa.shape(0) == dim, "rms_norm: w must be (dim,)");
  }
  py::array_t<float> y({rows, dim});  // (rows, dim)
  py::gil_scoped_release release;
  rms_norm(x.data(), w.is_none() ? nullptr : wa.data(), y.mutable_data(), rows, dim, eps);
  return y;
}

py::array_t<float> rope_py(const Floats& x, const Ints& pos, int64_t n_rot, float base, float freq_scale,
                           const std::string& style) {
  require(x.ndim() == 3, "rope: x must be (n_tokens, n_heads, head_dim)");
  const int64_t n_tokens = x.shape(0), n_heads = x.shape(1), head_dim = x.shape(2);
  require(pos.ndim() == 1 && pos.shape(0) == n_tokens, "rope: pos must be (n_tokens,)");
  require(n_rot > 0 && n_rot % 2 == 0 && n_rot <= head_dim, "rope: n_rot must be even and in (0, head_dim]");
  require(style == "normal" || style == "neox", "rope: style must be 'normal' or 'neox'");
  py::array_t<float> y({n_tokens, n_heads, head_dim});  // (n_tokens, n_heads, head_dim)
  std::copy(x.data(), x.data() + x.size(), y.mutable_data());
  py::gil_scoped_release release;
  rope(y.mutable_data(), pos.data(), n_tokens, n_heads, head_dim, n_rot, base, freq_scale,
       style == "neox" ? RopeStyle::Neox : RopeStyle::Normal);
  return y;
}

py::array_t<float> gated_py(const Floats& gate, const Floats& up, const std::string& act) {
  require(gate.size() == up.size(), "gated_activation: gate and up differ in size");
  require(act == "silu" || act == "gelu_tanh", "gated_activation: act must be 'silu' or 'gelu_tanh'");
  py::array_t<float> out(std::vector<py::ssize_t>(gate.shape(), gate.shape() + gate.ndim()));
  py::gil_scoped_release release;
  gated_activation(gate.data(), up.data(), out.mutable_data(), gate.size(),
                   act == "silu" ? Activation::Silu : Activation::GeluTanh);
  return out;
}

py::array_t<float> softcap_py(const Floats& x, float cap) {
  require(cap > 0.0f, "softcap: cap must be > 0");
  py::array_t<float> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  std::copy(x.data(), x.data() + x.size(), y.mutable_data());
  softcap(y.mutable_data(), y.size(), cap);
  return y;
}

KVView kv_view(const Bytes& data, uint32_t type_id, int64_t n_cells, int64_t n_head_kv, int64_t head_dim,
               const char* what) {
  const QTypeInfo* info = find_qtype(type_id);
  require(info != nullptr, std::string(what) + ": unsupported cache type id " + std::to_string(type_id));
  require(n_cells >= 0 && n_head_kv > 0 && head_dim > 0, std::string(what) + ": sizes must be positive");
  const size_t need = size_t(n_cells) * size_t(n_head_kv) * row_bytes(info->type, head_dim);
  require(size_t(data.size()) == need, std::string(what) + ": expected " + std::to_string(need) + " bytes, got " +
                                           std::to_string(data.size()));
  require(reinterpret_cast<uintptr_t>(data.data()) % 2 == 0, std::string(what) + ": buffer must be 2-byte aligned");
  return {info->type, data.data(), n_cells, n_head_kv, head_dim};
}

py::array_t<float> flash_attention_py(const Floats& q, const Bytes& k_data, uint32_t k_type, const Bytes& v_data,
                                      uint32_t v_type, int64_t n_head_kv, int64_t head_dim_v, const Ints& q_seq,
                                      const Ints& q_pos, const Ints& cell_seq, const Ints& cell_pos, int32_t window,
                                      float scale, float softcap_value) {
  require(q.ndim() == 3, "flash_attention: q must be (n_q, n_head, head_dim)");
  const int64_t n_q = q.shape(0), n_head = q.shape(1), d_k = q.shape(2), n_cells = cell_seq.size();
  require(q_seq.size() == n_q && q_pos.size() == n_q, "flash_attention: q_seq and q_pos must be (n_q,)");
  require(cell_pos.size() == n_cells, "flash_attention: cell_seq and cell_pos must be (n_cells,)");
  const KVView k = kv_view(k_data, k_type, n_cells, n_head_kv, d_k, "flash_attention K");
  const KVView v = kv_view(v_data, v_type, n_cells, n_head_kv, head_dim_v, "flash_attention V");
  VisibleCells cells(cell_seq.data(), cell_pos.data(), n_cells, q_seq.data(), n_q);
  cells.select(q_seq.data(), q_pos.data(), window);
  py::array_t<float> out({n_q, n_head, head_dim_v});  // (n_q, n_head, d_v)
  py::gil_scoped_release release;
  flash_attention(q.data(), n_q, n_head, k, v, cells, scale, softcap_value, out.mutable_data());
  return out;
}

}  // namespace

void bind_ops(py::module_& m) {
  m.def("rms_norm", &rms_norm_py, py::arg("x"), py::arg("w"), py::arg("eps"));
  m.def("rope", &rope_py, py::arg("x"), py::arg("pos"), py::arg("n_rot"), py::arg("base"), py::arg("freq_scale"),
        py::arg("style"));
  m.def("gated_activation", &gated_py, py::arg("gate"), py::arg("up"), py::arg("act"));
  m.def("softcap", &softcap_py, py::arg("x"), py::arg("cap"));
  m.def("flash_attention", &flash_attention_py, py::arg("q"), py::arg("k"), py::arg("k_type"), py::arg("v"),
        py::arg("v_type"), py::arg("n_head_kv"), py::arg("head_dim_v"), py::arg("q_seq"), py::arg("q_pos"),
        py::arg("cell_seq"), py::arg("cell_pos"), py::arg("window"), py::arg("scale"), py::arg("softcap"));
}
