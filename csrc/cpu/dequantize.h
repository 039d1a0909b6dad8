// GGUF tensor bytes -> float32 on the CPU, bit-exact with gguf.quants.dequantize.
#pragma once
#include <cstdint>

#include "../qtypes.h"

namespace hi {

// src: row_bytes(type, n) bytes; dst: (n,) floats. Runs on the CPU pool.
void dequantize(QType type, const uint8_t* src, float* dst, int64_t n);

// The same on the calling thread only (for use inside pool tasks).
void dequantize_serial(QType type, const uint8_t* src, float* dst, int64_t n);

}  // namespace hi
