// Bindings of devices (csrc/device), the decoder stage, the embedding lookup
// and the output head (csrc/model). Weights arrive from Python as (type_id,
// uint8 array, rows, cols) views of the GGUF mapping; each object keeps the
// arrays it points into alive as long as it lives.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>

#include "bindings_common.h"
#include "device/cpu_device.h"
#include "device/plugin_loader.h"
#include "model/ends.h"
#include "model/stage.h"

namespace py = pybind11;
using namespace hi;

namespace {

using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Ints = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using Bytes = py::array_t<uint8_t, py::array::c_style>;

// A native object with the weight arrays it points into.
template <typename T>
struct Held {
  std::unique_ptr<T> object;
  py::list keep_alive;
};
using PyStage = Held<Stage>;
using PyEmbedding = Held<Embedding>;
using PyHead = Held<OutputHead>;

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

BlockConfig block_config(const py::dict& c) {
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
  return cfg;
}

PyStage* make_stage(const std::shared_ptr<Device>& device, const py::dict& c, const py::list& layers,
                    int64_t n_cells, uint32_t cache_k, uint32_t cache_v, int64_t max_tokens,
                    const std::vector<std::shared_ptr<Device>>& row_devices, const std::vector<double>& row_shares) {
  const BlockConfig cfg = block_config(c);
  if (n_cells <= 0) throw py::value_error("n_cells must be positive");
  if (max_tokens <= 0) throw py::value_error("max_tokens must be positive");

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
  std::unique_ptr<RowSplit> rows;
  if (!row_devices.empty()) {
    if (row_devices.front() != device) throw py::value_error("a row split's first device must be the stage's");
    rows = std::make_unique<RowSplit>(row_devices, row_shares, cfg, max_tokens);
  }
  out->object = std::make_unique<Stage>(device, cfg, std::move(params), std::move(weights), n_cells,
                                        checked_type(cache_k), checked_type(cache_v), max_tokens, std::move(rows));
  return out.release();
}

PyEmbedding* make_embedding(const std::shared_ptr<Device>& device, const py::object& table, float scale,
                            int64_t max_tokens) {
  if (max_tokens <= 0) throw py::value_error("max_tokens must be positive");
  auto out = std::make_unique<PyEmbedding>();
  out->object =
      std::make_unique<Embedding>(device, to_weight(table, "token_embd", out->keep_alive), scale, max_tokens);
  return out.release();
}

PyHead* make_head(const std::shared_ptr<Device>& device, const py::object& norm, const py::object& output, float eps,
                  float softcap, int64_t max_tokens) {
  if (max_tokens <= 0) throw py::value_error("max_tokens must be positive");
  auto out = std::make_unique<PyHead>();
  const Weight n = to_weight(norm, "output_norm", out->keep_alive), o = to_weight(output, "output", out->keep_alive);
  if (!n.present() || !o.present()) throw py::value_error("the output head needs output_norm and output weights");
  out->object = std::make_unique<OutputHead>(device, n, o, eps, softcap, max_tokens);
  return out.release();
}

py::array_t<float> embed_py(PyEmbedding& e, const Ints& ids) {
  if (ids.ndim() != 1) throw py::value_error("ids must be (n_tokens,)");
  const int64_t n = ids.size();
  py::array_t<float> out({n, e.object->n_embd()});  // (n, n_embd)
  py::gil_scoped_release release;
  e.object->lookup(ids.data(), n, out.mutable_data());
  return out;
}

py::array_t<float> head_py(PyHead& h, const Floats& hidden) {
  if (hidden.ndim() != 2 || hidden.shape(1) != h.object->n_embd())
    throw py::value_error("hidden must be (n_tokens, " + std::to_string(h.object->n_embd()) + ")");
  const int64_t n = hidden.shape(0);
  py::array_t<float> out({n, h.object->n_vocab()});  // (n, n_vocab)
  if (n == 0) return out;
  py::gil_scoped_release release;
  h.object->forward(hidden.data(), n, out.mutable_data());
  return out;
}

py::dict counters_py(const Device& d) {
  const MemoryCounters c = d.counters();
  py::dict out;
  const char* names[kMemKinds] = {"weights", "kv", "compute"};
  for (int k = 0; k < kMemKinds; ++k) out[names[k]] = py::dict(py::arg("used") = c.used[k], py::arg("high_water") = c.high_water[k]);
  out["total"] = py::dict(py::arg("used") = c.total_used, py::arg("high_water") = c.total_high_water);
  return out;
}

py::array_t<float> forward_py(PyStage& s, const Floats& hidden, const Ints& seq, const Ints& pos,
                              const std::optional<Ints>& wanted) {
  if (hidden.ndim() != 2) throw py::value_error("hidden must be (n_tokens, n_embd)");
  const int64_t n = hidden.shape(0), e = hidden.shape(1);
  if (seq.size() != n || pos.size() != n) throw py::value_error("seq and pos must be (n_tokens,)");
  if (wanted && wanted->ndim() != 1) throw py::value_error("wanted must be (n_wanted,)");
  py::array_t<float> out({n, e});  // (n, n_embd); the wanted rows come back first
  std::copy(hidden.data(), hidden.data() + hidden.size(), out.mutable_data());
  std::vector<int32_t> rows;  // (n_wanted,)
  if (wanted) rows.assign(wanted->data(), wanted->data() + wanted->size());
  {
    py::gil_scoped_release release;
    s.object->forward(out.mutable_data(), seq.data(), pos.data(), n, wanted ? &rows : nullptr);
  }
  if (!wanted || wanted->size() == n) return out;
  py::array_t<float> kept({int64_t(rows.size()), e});  // (n_wanted, n_embd)
  std::copy(out.data(), out.data() + kept.size(), kept.mutable_data());
  return kept;
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<Device, std::shared_ptr<Device>>(m, "Device", "Where stages live and run (see csrc/device/device.h).")
      .def_property_readonly("name", &Device::name)
      .def_property_readonly("cap", &Device::cap, "Bytes the device may hold (0 = no cap).")
      .def_property_readonly("host_memory", &Device::host_memory, "True when its memory is host memory (the CPU).")
      .def("counters", &counters_py, "Bytes used and high-water marks per kind (weights, kv, compute) and in total.");
  py::class_<CpuDevice, Device, std::shared_ptr<CpuDevice>>(m, "CpuDevice")
      .def(py::init([](const std::string& name, int n_threads, size_t cap) {
             return std::make_shared<CpuDevice>(name, n_threads, cap);
           }), py::arg("name"), py::arg("n_threads") = 0, py::arg("cap") = 0,
           "n_threads 0: the process-wide pool; cap: bytes (0 = none).")
      .def_property_readonly("n_threads", &CpuDevice::n_threads);
  m.def("plugin_device_count", [](const std::string& plugin) {
    py::gil_scoped_release release;
    return plugin_device_count(plugin);
  }, py::arg("plugin"), "Devices the backend of the plugin at this path sees (RuntimeError: why none).");
  m.def("make_plugin_device", [](const std::string& plugin, int index, const std::string& name, size_t cap) {
    py::gil_scoped_release release;  // the first build of SYCL kernels takes a while
    return make_plugin_device(plugin, index, name, cap);
  }, py::arg("plugin"), py::arg("index"), py::arg("name"), py::arg("cap") = 0,
     "Device `index` of the plugin's backend as a Device named `name`.");
  m.def("describe_plugin_device", [](const std::string& plugin, int index) {
    hi_device_desc d{};
    {
      py::gil_scoped_release release;
      d = describe_plugin_device(plugin, index);
    }
    py::dict out;
    out["name"] = std::string(d.name);
    out["total_memory"] = d.total_memory;
    out["free_memory"] = d.free_memory;
    out["compute_units"] = d.compute_units;
    out["detail"] = std::string(d.detail);
    return out;
  }, py::arg("plugin"), py::arg("index"), "{name, total_memory, free_memory, compute_units, detail} of a device.");

  py::class_<PyStage>(m, "Stage", "A range of decoder layers with its KV cache (see csrc/model/stage.h).")
      .def(py::init(&make_stage), py::arg("device"), py::arg("config"), py::arg("layers"), py::arg("n_cells"),
           py::arg("cache_type_k"), py::arg("cache_type_v"), py::arg("max_tokens"),
           py::arg("row_devices") = std::vector<std::shared_ptr<Device>>{}, py::arg("row_shares") = std::vector<double>{},
           "row_devices (first: device) and row_shares: cut every matrix by rows across those devices.")
      .def_property_readonly("row_transfers", [](PyStage& s) {
        const RowSplit* r = s.object->rows();
        return r ? py::make_tuple(r->transfers(), r->transfer_bytes()) : py::make_tuple(int64_t(0), int64_t(0));
      }, "(count, bytes) of inputs sent and slices gathered by a row split.")
      .def("forward", &forward_py, py::arg("hidden"), py::arg("seq"), py::arg("pos"), py::arg("wanted") = py::none(),
           "(n, n_embd) -> (n, n_embd); wanted (strictly increasing row indices, on the model's last stage): "
           "only those rows' states, the last layer's feed-forward run for them alone.")
      .def("clear", [](PyStage& s) { s.object->cache().clear(); })
      .def("remove_sequence", [](PyStage& s, int32_t seq, int32_t p0, int32_t p1) {
        s.object->cache().remove_sequence(seq, p0, p1);
      }, py::arg("seq"), py::arg("p0") = 0, py::arg("p1") = -1, "Frees cells of seq with p0 <= pos < p1 (p1 < 0: all).")
      .def("shift_sequence", [](PyStage& s, int32_t seq, int32_t p0, int32_t p1, int32_t delta) {
        s.object->shift_sequence(seq, p0, p1, delta);
      }, py::arg("seq"), py::arg("p0"), py::arg("p1"), py::arg("delta"),
         "Adds delta to the positions of seq's cells in [p0, p1) and re-rotates their keys.")
      .def("copy_sequence", [](PyStage& s, int32_t src, int32_t dst) { s.object->cache().copy_sequence(src, dst); })
      .def_property_readonly("used_cells", [](PyStage& s) { return s.object->cache().used_cells(); })
      .def_property_readonly("n_cells", [](PyStage& s) { return s.object->cache().n_cells(); })
      .def_property_readonly("cache_bytes", [](PyStage& s) { return s.object->cache().bytes(); });
  py::class_<PyEmbedding>(m, "Embedding", "The token embedding lookup on a device.")
      .def(py::init(&make_embedding), py::arg("device"), py::arg("table"), py::arg("scale"), py::arg("max_tokens"))
      .def("__call__", &embed_py, py::arg("ids"));
  py::class_<PyHead>(m, "OutputHead", "Final norm, output matrix and logit softcap on a device.")
      .def(py::init(&make_head), py::arg("device"), py::arg("norm"), py::arg("output"), py::arg("eps"),
           py::arg("softcap"), py::arg("max_tokens"))
      .def("__call__", &head_py, py::arg("hidden"));

  // The planner's figures, from the same code that allocates.
  m.def("stage_workspace_bytes", [](const py::dict& c, int64_t max_tokens, int64_t n_cells) {
    return stage_workspace_bytes(block_config(c), max_tokens, n_cells);
  }, py::arg("config"), py::arg("max_tokens"), py::arg("n_cells"));
  m.def("embedding_workspace_bytes", &Embedding::workspace_bytes, py::arg("n_embd"), py::arg("max_tokens"));
  m.def("kv_cache_bytes", [](const py::dict& c, int64_t n_layers, int64_t n_cells, uint32_t type_k, uint32_t type_v) {
    const BlockConfig cfg = block_config(c);
    return KVCache::bytes_for(n_layers, n_cells, cfg.n_head_kv, cfg.head_dim_k, cfg.head_dim_v, checked_type(type_k),
                              checked_type(type_v));
  }, py::arg("config"), py::arg("n_layers"), py::arg("n_cells"), py::arg("cache_type_k"), py::arg("cache_type_v"));
  m.def("split_rows", &split_rows, py::arg("rows"), py::arg("shares"),
        "Row bounds (len(shares) + 1,) of a matrix cut in the ratio shares.");
  m.def("row_split_workspace_bytes", [](const py::dict& c, int64_t max_tokens, const std::vector<double>& shares) {
    return row_split_workspace_bytes(block_config(c), max_tokens, shares);
  }, py::arg("config"), py::arg("max_tokens"), py::arg("shares"));
  m.def("head_workspace_bytes", [](uint32_t output_type, int64_t n_embd, int64_t n_vocab, int64_t max_tokens,
                                   bool host_memory) {
    return OutputHead::workspace_bytes(checked_type(output_type), n_embd, n_vocab, max_tokens, host_memory);
  }, py::arg("output_type"), py::arg("n_embd"), py::arg("n_vocab"), py::arg("max_tokens"), py::arg("host_memory"));
}
