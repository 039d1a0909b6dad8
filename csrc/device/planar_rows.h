// Rows of quantised weights rearranged into planar rows (kernels/common/
// planar_blocks.h: each block field stored apart), as devices whose kernels
// read them that way hold their weights (Device::planar_weights).
#pragma once
#include <cstdint>

#include "../qtypes.h"

namespace hi {

// True for the types planar rows rearrange: the quantised ones (float rows are
// one value per element and stay as they are).
bool has_planar_rows(QType type);

// dst (rows, row_bytes(type, cols)) = src's rows, planar. dst and src do not overlap.
void make_planar_rows(QType type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t cols);

}  // namespace hi
