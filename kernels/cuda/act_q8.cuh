// Activations rounded to 8-bit blocks on the device, exactly as the CPU does
// (kernels/common/act_blocks.h), laid out as activation rows (act_rows.cuh):
// the right-hand side of the integer matmuls.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "op_types.h"

namespace hi::cuda {

// x: (n, k) floats -> out: n activation rows (act_rows.cuh) of blocks of
// `values` (32 or 256), act_row_stride(values, k) bytes apart; k is a multiple
// of values; out is 16-byte aligned.
void quantize_act(int values, const float* x, int64_t n, int64_t k, uint8_t* out, cudaStream_t stream);
// quantize_act of act(gate) * up (gate, up: (n, k)), which is stored to gate
// as gated_activation would leave it (gating.cuh): one launch for both.
void quantize_gated_act(int values, float* gate, const float* up, Activation act, int64_t n, int64_t k, uint8_t* out,
                        cudaStream_t stream);

}  // namespace hi::cuda
