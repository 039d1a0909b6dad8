// The plugin's C entry points, found with dlsym by csrc/device/sycl_loader.cpp.
// Errors come back as text: no C++ exception crosses the library boundary.
#include <cstring>
#include <exception>
#include <string>

#include "sycl_device.h"
#include "sycl_plugin.h"

namespace {

void set_error(char* error, size_t size, const std::string& what) {
  if (!error || !size) return;
  std::strncpy(error, what.c_str(), size - 1);
  error[size - 1] = '\0';
}

}  // namespace

extern "C" {

HI_SYCL_EXPORT int hi_sycl_plugin_abi() { return HI_SYCL_PLUGIN_ABI; }

HI_SYCL_EXPORT int hi_sycl_device_count(char* error, size_t error_size) {
  try {
    return int(sycl::device::get_devices().size());
  } catch (const std::exception& e) {
    set_error(error, error_size, e.what());
    return -1;
  }
}

HI_SYCL_EXPORT hi::Device* hi_sycl_create_device(int index, const char* name, size_t cap, char* error,
                                                 size_t error_size) {
  try {
    const std::vector<sycl::device> devices = sycl::device::get_devices();
    if (index < 0 || size_t(index) >= devices.size()) {
      set_error(error, error_size,
                std::string(name) + " does not exist: " + std::to_string(devices.size()) + " SYCL devices found");
      return nullptr;
    }
    return new hi::SyclDevice(devices[size_t(index)], name, cap);
  } catch (const std::exception& e) {
    set_error(error, error_size, e.what());
    return nullptr;
  }
}

}  // extern "C"
