// Opens a backend plugin (libhetinfer_sycl.so, libhetinfer_cuda.so) at run
// time. _core links neither libsycl nor the CUDA runtime: without them a
// plugin fails to load, or sees no devices, and every other device still
// works. The Python side (hetinfer/sycl_runtime.py, cuda_runtime.py) finds the
// plugin and prepares its runtime's environment first.
#pragma once
#include <memory>
#include <string>

#include "device.h"
#include "plugin_abi.h"

namespace hi {

// Devices the plugin's backend sees; throws std::runtime_error with the reason
// (the plugin's dlopen error, or the runtime's) when it cannot see any.
int plugin_device_count(const std::string& plugin_path);

// Device `index` of the plugin's backend as a Device named `name`.
std::shared_ptr<Device> make_plugin_device(const std::string& plugin_path, int index, const std::string& name,
                                           size_t cap);

// What the plugin says about device `index`; throws when it cannot say.
hi_device_desc describe_plugin_device(const std::string& plugin_path, int index);

}  // namespace hi
