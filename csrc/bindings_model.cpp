// Bindings of the decoder stage (csrc/model) and the embedding lookup. Weights
// arrive from Python as (type_id, uint8 array, rows, cols) views of the GGUF
// mapping; the stage object keeps those arrays alive as long as it lives.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "cpu/dequantize.h"
#include "cpu/thread_pool.h"
#include "model/stage.h"

namespace py = pybind11;
using namespace hi;

namespace {

using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Ints = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using Bytes = py::array_t<uint8_t, py::array::c_style>;

QType checked_type(uint32_t id) {
  const QTypeInfo* info = find_qtype(id);
  if (!info) throw py::value_error("unsupported tensor type id " + std::to_string(id));
  return info->type;
}

struct PyStage {
  std::unique_ptr<Stage> stage;
  py::list keep_alive;  // the weight arrays the stage points into
};

Weight to_weight(const py::handle& spec, const std::string& name, py::list& keep) {
  if (spec.is_none()) return {};
  const auto t = spec.cast<py::tuple>();
  if (t.size() != 4) throw py::value_error(name + ": expected (type_id, data, rows, cols)");
  Weight w;
  w.type = checked_type(t[0].cast<uint32_t>());
  const Bytes data = t[1].cast<Bytes>();
  w.rows = t[2].cast<int64_t>();
  w.cols = t[3].cast<int64_t>();
  if (w.rows <= 0 || w.cols <= 0) throw py::value_error(name + ": rows and cols must be positive");
  if (size_t(data.size()) != size_t(w.rows) * row_bytes(w.type, w.cols))
    throw py::value_error(name + ": byte size does not match its type and shape");
  if (reinterpret_cast<uintptr_t>(data.data()) % 4 != 0) throw py::value_error(name + ": data must be 4-byte aligned");
  w.data = data.data();
  keep.append(data);
  return w;
}

PyStage* make_stage(const py::dict& c, const py::list& layers, int64_t n_cells, uint32_t cache_k, uint32_t cache_v) {
  BlockConfig cfg;
  cfg.n_embd = c["n_embd"].cast<int64_t>();
  cfg.n_head = c["n_head"].cast<int64_t>();
  cfg.n_head_kv = c["n_head_kv"].cast<int64_t>();
  cfg.head_dim_k = c["head_dim_k"].cast<int64_t>();
  cfg.head_dim_v = c["head_dim_v"].cast<int64_t>();
  cfg.n_ff = c["n_ff"].cast<int64_t>();
  cfg.n_rot = c["n_rot"].cast<int64_t>();
  cfg.rms_eps = c["rms_eps"].cast<float>();
  cfg.attn_scale = c["attn_scale"].cast<float>();
  cfg.attn_softcap = c["attn_softcap"].cast<float>();
  cfg.rope_style = c["rope_style"].cast<std::string>() == "neox" ? RopeStyle::Neox : RopeStyle::Normal;
  cfg.activation = c["activation"].cast<std::string>() == "gelu_tanh" ? Activation::GeluTanh : Activation::Silu;
  if (n_cells <= 0) throw py::value_error("n_cells must be positive");

  auto out = std::make_unique<PyStage>();
  std::vector<LayerParams> params;
  std::vector<LayerWeights> weights;
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto d = layers[l].cast<py::dict>();
    const std::string at = "layer " + std::to_string(l) + " ";
    LayerParams p;
    p.rope_base = d["rope_base"].cast<float>();
    p.rope_freq_scale = d["rope_freq_scale"].cast<float>();
    p.window = d["window"].cast<int32_t>();
    params.push_back(p);
    auto get = [&](const char* key) {
      const py::object spec = d.contains(key) ? py::object(d[key]) : py::object(py::none());
      return to_weight(spec, at + key, out->keep_alive);
    };
    LayerWeights w;
    w.attn_norm = get("attn_norm");
    w.wq = get("attn_q");
    w.wk = get("attn_k");
    w.wv = get("attn_v");
    w.wo = get("attn_output");
    w.bq = get("attn_q.bias");
    w.bk = get("attn_k.bias");
    w.bv = get("attn_v.bias");
    w.q_norm = get("attn_q_norm");
    w.k_norm = get("attn_k_norm");
    w.post_attn_norm = get("post_attention_norm");
    w.ffn_norm = get("ffn_norm");
    w.w_gate = get("ffn_gate");
    w.w_up = get("ffn_up");
    w.w_down = get("ffn_down");
    w.post_ffn_norm = get("post_ffw_norm");
    weights.push_back(w);
  }
  out->stage = std::make_unique<Stage>(cfg, std::move(params), std::move(weights), n_cells, checked_type(cache_k),
                                       checked_type(cache_v));
  return out.release();
}

py::array_t<float> forward_py(PyStage& s, const Floats& hidden, const Ints& seq, const Ints& pos) {
  if (hidden.ndim() != 2) throw py::value_error("hidden must be (n_tokens, n_embd)");
  const int64_t n = hidden.shape(0);
  if (seq.size() != n || pos.size() != n) throw py::value_error("seq and pos must be (n_tokens,)");
  py::array_t<float> out({n, int64_t(hidden.shape(1))});  // (n, n_embd)
  std::copy(hidden.data(), hidden.data() + hidden.size(), out.mutable_data());
  py::gil_scoped_release release;
  s.stage->forward(out.mutable_data(), seq.data(), pos.data(), n);
  return out;
}

// Rows `ids` of a (rows, cols) matrix of any type, as float32 (n, cols): the embedding lookup.
py::array_t<float> get_rows_py(uint32_t type_id, const Bytes& data, int64_t rows, int64_t cols, const Ints& ids) {
  const QType type = checked_type(type_id);
  const size_t rb = row_bytes(type, cols);
  if (rows <= 0 || size_t(data.size()) != size_t(rows) * rb) throw py::value_error("get_rows: data size mismatch");
  const int64_t n = ids.size();
  for (int64_t i = 0; i < n; ++i)
    if (ids.data()[i] < 0 || ids.data()[i] >= rows)
      throw py::value_error("token id " + std::to_string(ids.data()[i]) + " is outside the vocabulary [0, " +
                            std::to_string(rows) + ")");
  py::array_t<float> out({n, cols});  // (n, cols)
  float* o = out.mutable_data();
  const uint8_t* d = data.data();
  const int32_t* id = ids.data();
  py::gil_scoped_release release;
  parallel_ranges(cpu_pool(), n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dequantize_serial(type, d + size_t(id[i]) * rb, o + i * cols, cols);
  });
  return out;
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<PyStage>(m, "Stage", "A range of decoder layers with its KV cache (see csrc/model/stage.h).")
      .def(py::init(&make_stage), py::arg("config"), py::arg("layers"), py::arg("n_cells"), py::arg("cache_type_k"),
           py::arg("cache_type_v"))
      .def("forward", &forward_py, py::arg("hidden"), py::arg("seq"), py::arg("pos"))
      .def("clear", [](PyStage& s) { s.stage->cache().clear(); })
      .def("remove_sequence", [](PyStage& s, int32_t seq, int32_t p0, int32_t p1) {
        s.stage->cache().remove_sequence(seq, p0, p1);
      }, py::arg("seq"), py::arg("p0") = 0, py::arg("p1") = -1, "Frees cells of seq with p0 <= pos < p1 (p1 < 0: all).")
      .def("shift_sequence", [](PyStage& s, int32_t seq, int32_t p0, int32_t p1, int32_t delta) {
        s.stage->shift_sequence(seq, p0, p1, delta);
      }, py::arg("seq"), py::arg("p0"), py::arg("p1"), py::arg("delta"),
         "Adds delta to the positions of seq's cells in [p0, p1) and re-rotates their keys.")
      .def("copy_sequence", [](PyStage& s, int32_t src, int32_t dst) { s.stage->cache().copy_sequence(src, dst); })
      .def_property_readonly("used_cells", [](PyStage& s) { return s.stage->cache().used_cells(); })
      .def_property_readonly("n_cells", [](PyStage& s) { return s.stage->cache().n_cells(); })
      .def_property_readonly("cache_bytes", [](PyStage& s) { return s.stage->cache().bytes(); });
  m.def("get_rows", &get_rows_py, py::arg("type_id"), py::arg("data"), py::arg("rows"), py::arg("cols"),
        py::arg("ids"));
}
