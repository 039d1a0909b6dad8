// The feed-forward's gated activation act(gate) * up, one value at a time,
// for the element-wise kernel (elementwise.cu) and the quantiser that forms
// the down projection's input on the way (act_q8.cu): the same function, so
// the two give the same bits. Every product and sum is rounded on its own
// (__fmul_rn, __fadd_rn): nvcc may not contract them into FMAs differently in
// the two kernels. expf / tanhf are the accurate versions (no
// --use_fast_math).
#pragma once
#include <cuda_runtime.h>

#include "op_types.h"

namespace hi::cuda {

__device__ __forceinline__ float silu(float g) { return __fdiv_rn(g, __fadd_rn(1.0f, expf(-g))); }

__device__ __forceinline__ float gelu_tanh(float g) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const float cube = __fmul_rn(__fmul_rn(__fmul_rn(0.044715f, g), g), g);
  const float t = tanhf(__fmul_rn(kSqrt2OverPi, __fadd_rn(g, cube)));
  return __fmul_rn(__fmul_rn(0.5f, g), __fadd_rn(1.0f, t));
}

__device__ __forceinline__ float gated_value(Activation act, float gate, float up) {
  return __fmul_rn(act == Activation::Silu ? silu(gate) : gelu_tanh(gate), up);
}

}  // namespace hi::cuda
