// The C interface between hetinfer._core and libhetinfer_sycl.so. Both sides
// are built together from one tree; the ABI number guards against a stale
// plugin next to a newer core.
#pragma once
#include <cstddef>

#define HI_SYCL_PLUGIN_ABI 1
#define HI_SYCL_EXPORT __attribute__((visibility("default")))

namespace hi {
class Device;
}

extern "C" {
using hi_sycl_plugin_abi_fn = int (*)();
// Number of SYCL devices (sycl::device::get_devices() order: sycl:N is the Nth), or -1 and a reason.
using hi_sycl_device_count_fn = int (*)(char* error, size_t error_size);
// A new device (delete through hi::Device), or null and a reason.
using hi_sycl_create_device_fn = hi::Device* (*)(int index, const char* name, size_t cap, char* error,
                                                 size_t error_size);
}
