// The CUDA plugin's C entry points (csrc/device/plugin_abi.h). The CUDA
// runtime is linked statically and finds the driver (libcuda.so) itself when
// first called: without one, the count reports why.
#include <cuda_runtime.h>

#include <cstdio>
#include <exception>
#include <string>

#include "../device/plugin_abi.h"
#include "cuda_device.h"

namespace {

// The runtime's reason, worded for someone who has no usable GPU.
std::string why_none(cudaError_t e) {
  switch (e) {
    case cudaErrorNoDevice: return "no NVIDIA GPU was found (" + std::string(cudaGetErrorString(e)) + ")";
    case cudaErrorInsufficientDriver:
      return "the NVIDIA driver is missing or older than this build's CUDA runtime (" +
             std::string(cudaGetErrorString(e)) + ")";
    default: return std::string("the CUDA runtime failed to start: ") + cudaGetErrorString(e);
  }
}

}  // namespace

HI_PLUGIN_EXPORT int hi_plugin_abi() { return HI_PLUGIN_ABI; }

HI_PLUGIN_EXPORT int hi_plugin_device_count(char* error, size_t error_size) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  hi::quietly(e);  // reported here
  if (e == cudaErrorNoDevice) return 0;
  if (e != cudaSuccess) {
    hi::set_plugin_error(error, error_size, why_none(e).c_str());
    return -1;
  }
  return count;
}

HI_PLUGIN_EXPORT hi::Device* hi_plugin_create_device(int index, const char* name, size_t cap, char* error,
                                                     size_t error_size) {
  try {
    return new hi::CudaDevice(index, name, cap);
  } catch (const std::exception& e) {
    hi::set_plugin_error(error, error_size, e.what());
    return nullptr;
  }
}

HI_PLUGIN_EXPORT int hi_plugin_describe_device(int index, hi_device_desc* out, char* error, size_t error_size) {
  cudaDeviceProp prop{};
  cudaError_t e = cudaGetDeviceProperties(&prop, index);
  size_t free = 0, total = 0;
  if (e == cudaSuccess) e = hi::make_current(index);     // left current, as every CUDA call of hetinfer leaves it
  if (e == cudaSuccess) e = cudaMemGetInfo(&free, &total);  // starts the device's context: free memory needs one
  hi::quietly(e);                                           // reported here
  if (e != cudaSuccess) {
    hi::set_plugin_error(error, error_size, (std::string("cuda:") + std::to_string(index) + ": " +
                                             cudaGetErrorString(e)).c_str());
    return -1;
  }
  std::snprintf(out->name, sizeof out->name, "%s", prop.name);
  out->total_memory = total;
  out->free_memory = free;
  out->compute_units = prop.multiProcessorCount;
  std::snprintf(out->detail, sizeof out->detail, "compute capability %d.%d", prop.major, prop.minor);
  return 0;
}
