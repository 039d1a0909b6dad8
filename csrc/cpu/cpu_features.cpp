#include "cpu_features.h"

#include <atomic>
#include <stdexcept>

namespace hi {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures r;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    r.avx2 = __builtin_cpu_supports("avx2");
    r.fma = __builtin_cpu_supports("fma");
    r.f16c = __builtin_cpu_supports("f16c");
#endif
    return r;
  }();
  return f;
}

namespace {
KernelPath best_path() { return cpu_features().has_avx2_path() ? KernelPath::Avx2 : KernelPath::Scalar; }
std::atomic<KernelPath> g_path{best_path()};
}  // namespace

KernelPath kernel_path() { return g_path.load(std::memory_order_relaxed); }

void set_kernel_path(const std::string& name) {
  if (name == "auto") {
    g_path = best_path();
  } else if (name == "scalar") {
    g_path = KernelPath::Scalar;
  } else if (name == "avx2") {
    if (!cpu_features().has_avx2_path())
      throw std::invalid_argument("this CPU lacks AVX2/FMA/F16C; the avx2 kernel path is unavailable");
    g_path = KernelPath::Avx2;
  } else {
    throw std::invalid_argument("kernel path must be 'auto', 'scalar' or 'avx2', got '" + name + "'");
  }
}

const char* kernel_path_name(KernelPath path) { return path == KernelPath::Avx2 ? "avx2" : "scalar"; }

}  // namespace hi
