// float32 -> GGUF tensor bytes, for every supported type (used to write test
// models and to quantise activations' reference data in tests).
#pragma once
#include <cstdint>

#include "../qtypes.h"

namespace hi {

// src: (n,) floats, n a multiple of the type's block; dst: row_bytes(type, n) bytes.
// Deterministic: the same input gives the same bytes.
void quantize(QType type, const float* src, uint8_t* dst, int64_t n);

}  // namespace hi
