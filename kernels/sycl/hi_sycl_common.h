// Device helpers shared by the SYCL kernel sources (compiled at run time with
// the kernel_compiler extension; each .cpp includes this by its quoted name).
// Reading rows of every type is kernels/common/row_values.h, shared with CUDA.
#pragma once
// Contraction: the device compiler fuses a*b + c within an expression by
// default. chunk_to_float's s*q - m is immune (wherever m != 0 the product s*q
// is exact in float, and fma(s, q, -0.0f) == s*q), so dequantisation stays
// bit-exact and dot products keep their FMAs. Code that must not fuse uses
// "#pragma clang fp contract(off)" (rows.cpp quantisers).

#include <sycl/sycl.hpp>
#include <sycl/ext/oneapi/work_group_static.hpp>

#include "row_values.h"

namespace syclext = sycl::ext::oneapi;
namespace syclexp = sycl::ext::oneapi::experimental;

// A free-function kernel with a 1-D nd_range.
#define HI_KERNEL extern "C" SYCL_EXT_ONEAPI_FUNCTION_PROPERTY((syclexp::nd_range_kernel<1>)) void

namespace hi {

// ---- integer dot products with 8-bit activation blocks ---------------------
// Sum of the products of the four signed bytes of a and b (dp4a).
inline int dot4(int32_t a, int32_t b) {
  return int(int8_t(a)) * int(int8_t(b)) + int(int8_t(a >> 8)) * int(int8_t(b >> 8)) +
         int(int8_t(a >> 16)) * int(int8_t(b >> 16)) + int((a >> 24)) * int((b >> 24));
}

// One chunk's value from its integer sums: isum[h] = sum q*x over half h,
// xsum[h] = sum x over half h (the activation codes). The float ops of the
// CPU's chunk_dot (csrc/cpu/matmul_scalar.cpp), unfused, so each chunk is
// bit-identical to the CPU's.
inline float chunk_result(float xd, const float* s, const float* m, int isum0, int isum1, int xsum0, int xsum1) {
#pragma clang fp contract(off)
  return xd * (s[0] * float(isum0) + s[1] * float(isum1) - (m[0] * float(xsum0) + m[1] * float(xsum1)));
}

inline float group_sum(const sycl::nd_item<1>& it, float v) {
  return sycl::reduce_over_group(it.get_group(), v, sycl::plus<float>());
}
inline float group_max(const sycl::nd_item<1>& it, float v) {
  return sycl::reduce_over_group(it.get_group(), v, sycl::maximum<float>());
}

}  // namespace hi
