// Opens the SYCL backend, libhetinfer_sycl.so, at run time. _core does not
// link libsycl: without PyPI's intel-sycl-rt the plugin fails to load and
// every other device still works. The Python side (hetinfer/sycl_runtime.py)
// finds the plugin and prepares the runtime's environment first.
#pragma once
#include <memory>
#include <string>

#include "device.h"

namespace hi {

// SYCL devices the runtime sees; throws std::runtime_error with the reason
// (the plugin's dlopen error, or the runtime's) when there are none to see.
int sycl_device_count(const std::string& plugin_path);

// sycl:index as a Device named `name`; kernels are compiled or loaded from the cache.
std::shared_ptr<Device> make_sycl_device(const std::string& plugin_path, int index, const std::string& name,
                                         size_t cap);

}  // namespace hi
