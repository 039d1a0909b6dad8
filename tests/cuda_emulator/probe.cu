// Launches for tests/test_cuda_emulated_plugin.py, built into the emulated
// plugin only: a copy kernel given its pointers directly or in a struct,
// whose launches the emulation must refuse when a pointer is not memory of
// the current device, and an empty kernel, refused on another device's
// stream. Test machinery only.
#include <cuda_runtime.h>

#include <vector>

namespace {

struct CopyArgs {
  const float* src;
  float* dst;
};

std::vector<const void*> hi_emu_pointers(const CopyArgs& a) { return {a.src, a.dst}; }

__global__ void copy_kernel(const float* src, float* dst) { dst[threadIdx.x] = src[threadIdx.x]; }

__global__ void copy_struct_kernel(const CopyArgs a) { a.dst[threadIdx.x] = a.src[threadIdx.x]; }

__global__ void empty_kernel() {}

}  // namespace

// Copies 32 floats src -> dst on the legacy stream, the pointers given
// directly (in_struct 0) or in a struct; returns the launch's error code.
extern "C" int hi_emu_probe_copy(const float* src, float* dst, int in_struct) {
  (void)cudaGetLastError();  // this launch's error alone
  if (in_struct)
    copy_struct_kernel<<<1, 32>>>(CopyArgs{src, dst});
  else
    copy_kernel<<<1, 32>>>(src, dst);
  return int(cudaGetLastError());
}

// Launches a kernel of no arguments on `stream`; returns the launch's error code.
extern "C" int hi_emu_probe_empty(cudaStream_t stream) {
  (void)cudaGetLastError();
  empty_kernel<<<1, 32, 0, stream>>>();
  return int(cudaGetLastError());
}
