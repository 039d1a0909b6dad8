// Which SIMD kernels this CPU can run, and which the user asked for.
#pragma once
#include <string>

namespace hi {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool has_avx2_path() const { return avx2 && fma && f16c; }
};

const CpuFeatures& cpu_features();

enum class KernelPath { Scalar, Avx2 };

// The path CPU kernels take: the best the CPU supports unless forced.
KernelPath kernel_path();
// "auto", "scalar" or "avx2"; asking for avx2 on a CPU without it throws.
void set_kernel_path(const std::string& name);
const char* kernel_path_name(KernelPath path);

}  // namespace hi
