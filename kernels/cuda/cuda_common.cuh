// Device helpers shared by the CUDA kernels (kernels/cuda/*.cu), and the
// launch check every launcher ends with. Reading rows of every type is
// kernels/common/row_values.h, shared with the SYCL kernels.
//
// Contraction: nvcc fuses a*b + c into an FMA by default. chunk_to_float's
// s*q - m is immune (wherever m != 0 the product s*q is exact in float), so
// dequantisation stays bit-exact and dot products keep their FMAs. Code that
// must round each op on its own spells it with __fmul_rn / __fadd_rn, which
// are never fused (chunk_result here; the quantisers in rows.cu).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "row_values.h"

namespace hi::cuda {

constexpr int kWarp = 32;

// Throws std::runtime_error naming `what` when the last launch failed.
inline void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(e));
}

// One chunk's value from its integer sums: isum[h] = sum q*x over half h,
// xsum[h] = sum x over half h (the activation codes). The float ops of the
// CPU's chunk_dot (csrc/cpu/matmul_scalar.cpp), unfused, so each chunk is
// bit-identical to the CPU's.
__device__ __forceinline__ float chunk_result(float xd, const float* s, const float* m, int isum0, int isum1,
                                              int xsum0, int xsum1) {
  const float w = __fadd_rn(__fmul_rn(s[0], float(isum0)), __fmul_rn(s[1], float(isum1)));
  const float off = __fadd_rn(__fmul_rn(m[0], float(xsum0)), __fmul_rn(m[1], float(xsum1)));
  return __fmul_rn(xd, __fsub_rn(w, off));
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024);
// every thread gets the result. `shared`: (32,) floats of shared memory. All
// threads of the block must call it.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : 0.0f;
  return warp_sum(v);
}

}  // namespace hi::cuda
