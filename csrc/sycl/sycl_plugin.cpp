// The SYCL plugin's C entry points (csrc/device/plugin_abi.h).
#include <exception>
#include <string>

#include "../device/plugin_abi.h"
#include "sycl_device.h"

HI_PLUGIN_EXPORT int hi_plugin_abi() { return HI_PLUGIN_ABI; }

HI_PLUGIN_EXPORT int hi_plugin_device_count(char* error, size_t error_size) {
  try {
    return int(sycl::device::get_devices().size());
  } catch (const std::exception& e) {
    hi::set_plugin_error(error, error_size, (std::string("the SYCL runtime found no devices: ") + e.what()).c_str());
    return -1;
  }
}

HI_PLUGIN_EXPORT hi::Device* hi_plugin_create_device(int index, const char* name, size_t cap, char* error,
                                                     size_t error_size) {
  try {
    const std::vector<sycl::device> devices = sycl::device::get_devices();
    if (index < 0 || size_t(index) >= devices.size())
      throw std::runtime_error(std::string(name) + " does not exist: " + std::to_string(devices.size()) +
                               " SYCL devices found");
    return new hi::SyclDevice(devices[size_t(index)], name, cap);
  } catch (const std::exception& e) {
    hi::set_plugin_error(error, error_size, e.what());
    return nullptr;
  }
}
