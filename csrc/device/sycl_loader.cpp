#include "sycl_loader.h"

#include <dlfcn.h>

#include <mutex>
#include <stdexcept>

#include "../sycl/sycl_plugin.h"

namespace hi {

namespace {

struct Plugin {
  hi_sycl_device_count_fn device_count;
  hi_sycl_create_device_fn create_device;
};

// The plugin stays loaded for the life of the process: its devices' code lives there.
const Plugin& plugin(const std::string& path) {
  static std::mutex mutex;
  static std::string loaded_path;
  static Plugin loaded{};
  std::lock_guard<std::mutex> lock(mutex);
  if (loaded.create_device) {
    if (path != loaded_path) throw std::runtime_error("the SYCL plugin is already loaded from " + loaded_path);
    return loaded;
  }
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) throw std::runtime_error(std::string("cannot load the SYCL backend: ") + dlerror());
  const auto abi = reinterpret_cast<hi_sycl_plugin_abi_fn>(dlsym(handle, "hi_sycl_plugin_abi"));
  const auto count = reinterpret_cast<hi_sycl_device_count_fn>(dlsym(handle, "hi_sycl_device_count"));
  const auto create = reinterpret_cast<hi_sycl_create_device_fn>(dlsym(handle, "hi_sycl_create_device"));
  if (!abi || !count || !create || abi() != HI_SYCL_PLUGIN_ABI) {
    dlclose(handle);
    throw std::runtime_error(path + " is not this build's SYCL plugin; reinstall hetinfer");
  }
  loaded = {count, create};
  loaded_path = path;
  return loaded;
}

}  // namespace

int sycl_device_count(const std::string& plugin_path) {
  char error[1024] = "";
  const int n = plugin(plugin_path).device_count(error, sizeof error);
  if (n < 0) throw std::runtime_error(std::string("the SYCL runtime found no devices: ") + error);
  return n;
}

std::shared_ptr<Device> make_sycl_device(const std::string& plugin_path, int index, const std::string& name,
                                         size_t cap) {
  char error[4096] = "";
  Device* device = plugin(plugin_path).create_device(index, name.c_str(), cap, error, sizeof error);
  if (!device) throw std::runtime_error(error);
  return std::shared_ptr<Device>(device);
}

}  // namespace hi
