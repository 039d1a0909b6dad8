// The SYCL kernel sources (kernels/sycl) and the shared block math
// (kernels/common), embedded at build time by cmake/sycl_sources.cmake so the
// plugin needs no files at run time.
#pragma once
#include <cstddef>

namespace hi {

struct SourceFile {
  const char* name;  // as included ("quant_blocks.h") or compiled ("matmul.cpp")
  const char* text;
};

extern const SourceFile kSyclHeaders[];  // included by the kernels
extern const size_t kSyclHeaderCount;
extern const SourceFile kSyclKernels[];  // compiled together, as one kernel bundle
extern const size_t kSyclKernelCount;

}  // namespace hi
