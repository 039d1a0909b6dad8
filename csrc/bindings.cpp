// pybind11 module hetinfer._core: the native entry points the Python package
// wraps. Every size is checked here before native code touches a buffer.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <string>

#include "bindings_common.h"
#include "cpu/cpu_features.h"
#include "cpu/dequantize.h"
#include "cpu/thread_pool.h"
#include "qtypes.h"
#include "quant/quantize.h"

namespace py = pybind11;
using namespace hi;

void bind_ops(py::module_& m);    // bindings_ops.cpp
void bind_model(py::module_& m);  // bindings_model.cpp

namespace {

using Bytes = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;

void require_bytes(const Bytes& data, size_t needed, const char* what) {
  if (size_t(data.size()) != needed)
    throw py::value_error(std::string(what) + ": expected " + std::to_string(needed) + " bytes, got " +
                          std::to_string(data.size()));
}

py::array_t<float> dequantize_py(uint32_t type_id, const Bytes& data, int64_t n) {
  const QType type = checked_type(type_id);
  require_bytes(data, row_bytes(type, n), "dequantize");
  py::array_t<float> out(n);  // (n,)
  {
    py::gil_scoped_release release;
    dequantize(type, data.data(), out.mutable_data(), n);
  }
  return out;
}

py::array_t<uint8_t> quantize_py(uint32_t type_id, const Floats& x) {
  const QType type = checked_type(type_id);
  const int64_t n = x.size();
  py::array_t<uint8_t> out(row_bytes(type, n));  // (row_bytes,)
  {
    py::gil_scoped_release release;
    quantize(type, x.data(), out.mutable_data(), n);
  }
  return out;
}

// memcpy on the CPU pool: the bandwidth reference the matvec benchmarks compare with.
void parallel_copy_py(const Bytes& src, py::array_t<uint8_t, py::array::c_style> dst) {
  if (dst.size() != src.size()) throw py::value_error("parallel_copy: src and dst sizes differ");
  const uint8_t* s = src.data();
  uint8_t* d = dst.mutable_data();
  const int64_t n = src.size();
  py::gil_scoped_release release;
  ThreadPool& pool = cpu_pool();
  parallel_ranges(pool, n, (n + pool.size() - 1) / pool.size(),
                  [&](int64_t b, int64_t e) { std::memcpy(d + b, s + b, size_t(e - b)); });
}

py::dict type_info_py(uint32_t type_id) {
  const QTypeInfo& t = qtype_info(checked_type(type_id));
  py::dict d;
  d["name"] = t.name;
  d["block_values"] = t.block_values;
  d["block_bytes"] = t.block_bytes;
  return d;
}

py::dict cpu_features_py() {
  const CpuFeatures& f = cpu_features();
  py::dict d;
  d["avx2"] = f.avx2;
  d["fma"] = f.fma;
  d["f16c"] = f.f16c;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "hetinfer native core";
  // pybind11 maps std::invalid_argument to ValueError and std::runtime_error to RuntimeError.
  m.def("dequantize", &dequantize_py, py::arg("type_id"), py::arg("data"), py::arg("n"),
        "Raw tensor bytes of a GGUF type -> float32 (n,).");
  m.def("quantize", &quantize_py, py::arg("type_id"), py::arg("x"),
        "float32 values (flattened) -> raw bytes of a GGUF type.");
  m.def("type_info", &type_info_py, py::arg("type_id"));
  m.def("parallel_copy", &parallel_copy_py, py::arg("src"), py::arg("dst"),
        "Copy bytes with every CPU thread (a memory-bandwidth reference).");
  m.def("set_num_threads", &set_cpu_threads, py::arg("n"));
  m.def("get_num_threads", &cpu_threads);
  m.def("cpu_features", &cpu_features_py);
  m.def("set_kernel_path", &set_kernel_path, py::arg("name"));
  m.def("kernel_path", [] { return std::string(kernel_path_name(kernel_path())); });
  bind_model(m);  // first: it registers Device, which the ops take
  bind_ops(m);
}
