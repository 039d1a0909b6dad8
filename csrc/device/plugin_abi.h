// The C interface between hetinfer._core and a backend plugin
// (libhetinfer_sycl.so, libhetinfer_cuda.so): each plugin exports these
// functions under these names. Both sides are built together from one tree;
// the ABI number guards against a stale plugin next to a newer core. Errors
// come back as text: no C++ exception crosses the library boundary.
#pragma once
#include <cstddef>
#include <cstdint>

#define HI_PLUGIN_ABI 7
#define HI_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

namespace hi {
class Device;
}

// What a plugin says about one of its devices.
struct hi_device_desc {
  char name[256];         // the product name
  uint64_t total_memory;  // bytes
  uint64_t free_memory;   // bytes, now
  int compute_units;      // SMs / execution units
  char detail[128];       // backend facts, such as "compute capability 9.0"
};

extern "C" {
// "hi_plugin_abi"
using hi_plugin_abi_fn = int (*)();
// "hi_plugin_device_count": devices the backend sees (its own order: cuda:N,
// sycl:N is the Nth), or -1 and a reason.
using hi_plugin_device_count_fn = int (*)(char* error, size_t error_size);
// "hi_plugin_create_device": a new device (delete through hi::Device), or null and a reason.
using hi_plugin_create_device_fn = hi::Device* (*)(int index, const char* name, size_t cap, char* error,
                                                   size_t error_size);
// "hi_plugin_describe_device" (optional: the SYCL side lists devices through
// dpctl): 0 and *out filled, or -1 and a reason.
using hi_plugin_describe_device_fn = int (*)(int index, hi_device_desc* out, char* error, size_t error_size);
}

namespace hi {

// Copies a reason into a plugin function's error buffer.
inline void set_plugin_error(char* error, size_t size, const char* what) {
  if (!error || !size) return;
  size_t i = 0;
  for (; i + 1 < size && what[i]; ++i) error[i] = what[i];
  error[i] = '\0';
}

}  // namespace hi
