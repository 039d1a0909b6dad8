// Activations rounded to 8-bit blocks on the device, exactly as the CPU does
// (kernels/common/act_blocks.h): the right-hand side of the integer matmuls.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace hi::cuda {

// x: (n, k) floats -> out: (n, k / values) ActBlock (values 32) or ActBlockK
// (values 256); k is a multiple of values.
void quantize_act(int values, const float* x, int64_t n, int64_t k, uint8_t* out, cudaStream_t stream);

}  // namespace hi::cuda
