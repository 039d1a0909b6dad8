#include "plugin_loader.h"

#include <dlfcn.h>

#include <map>
#include <mutex>
#include <stdexcept>

namespace hi {

namespace {

struct Plugin {
  hi_plugin_device_count_fn device_count;
  hi_plugin_create_device_fn create_device;
  hi_plugin_describe_device_fn describe_device;  // null: not provided
};

// A plugin stays loaded for the life of the process: its devices' code lives there.
const Plugin& plugin(const std::string& path) {
  static std::mutex mutex;
  static std::map<std::string, Plugin> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = loaded.find(path);
  if (it != loaded.end()) return it->second;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) throw std::runtime_error(std::string("cannot load ") + path + ": " + dlerror());
  const auto abi = reinterpret_cast<hi_plugin_abi_fn>(dlsym(handle, "hi_plugin_abi"));
  Plugin p{reinterpret_cast<hi_plugin_device_count_fn>(dlsym(handle, "hi_plugin_device_count")),
           reinterpret_cast<hi_plugin_create_device_fn>(dlsym(handle, "hi_plugin_create_device")),
           reinterpret_cast<hi_plugin_describe_device_fn>(dlsym(handle, "hi_plugin_describe_device"))};
  if (!abi || !p.device_count || !p.create_device || abi() != HI_PLUGIN_ABI) {
    dlclose(handle);
    throw std::runtime_error(path + " is not a plugin of this build of hetinfer; reinstall hetinfer");
  }
  return loaded.emplace(path, p).first->second;
}

}  // namespace

int plugin_device_count(const std::string& plugin_path) {
  char error[1024] = "";
  const int n = plugin(plugin_path).device_count(error, sizeof error);
  if (n < 0) throw std::runtime_error(error);
  return n;
}

std::shared_ptr<Device> make_plugin_device(const std::string& plugin_path, int index, const std::string& name,
                                           size_t cap) {
  char error[4096] = "";
  Device* device = plugin(plugin_path).create_device(index, name.c_str(), cap, error, sizeof error);
  if (!device) throw std::runtime_error(error);
  return std::shared_ptr<Device>(device);
}

hi_device_desc describe_plugin_device(const std::string& plugin_path, int index) {
  const Plugin& p = plugin(plugin_path);
  if (!p.describe_device) throw std::runtime_error(plugin_path + " does not describe its devices");
  hi_device_desc desc{};
  char error[1024] = "";
  if (p.describe_device(index, &desc, error, sizeof error) != 0) throw std::runtime_error(error);
  return desc;
}

}  // namespace hi
