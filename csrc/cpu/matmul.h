// Quantised weight x float activation products on the CPU: y = x @ W^T, in
// the two halves of Device::matmuls.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../device/op_types.h"

namespace hi {

// x: (n, k) floats -> act: (n, k / values) activation blocks (ActBlock for
// values 32, ActBlockK for 256), rows back to back, rows in parallel.
void round_activation_rows(int64_t values, const float* x, int64_t n, int64_t k, void* act);

// y_i (n, rows_i) = x (n, k) @ w_i^T for outs[0 .. n_outs), whose weights
// (rows packed back to back, 2-byte aligned) all pair with one activation
// kind: act holds x's blocks of it (round_activation_rows), or is null for
// F32/F16/BF16 weights, which multiply x in float. Quantised weights use
// integer dot products, with the kernel path from cpu_features.h. The rows of
// every product are shared among the CPU pool's threads in one dispatch.
void matmul_rounded(const MatmulOut* outs, size_t n_outs, int64_t k, const float* x, const void* act, int64_t n);

// Bytes of quantised activations a matmul needs for (n, k) inputs and `type` weights.
size_t matmul_scratch_bytes(QType type, int64_t n, int64_t k);

}  // namespace hi
