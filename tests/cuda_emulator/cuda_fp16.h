// The few half-precision helpers kernels/cuda uses, for the CPU emulation
// (see cuda_runtime.h here). The conversion is float_bits.h's, exact like the
// hardware's for every non-NaN value.
#pragma once
#include <cstdint>

#include "cuda_runtime.h"
#include "float_bits.h"

struct __half {
  uint16_t bits;
};
inline __half __ushort_as_half(unsigned short u) { return __half{uint16_t(u)}; }
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
inline float __half2float(__half h) { return hi::half_to_float(h.bits); }
