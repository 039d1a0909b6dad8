// Activations rounded to 8-bit blocks (act_q8.cuh), bit-identical to the
// CPU's quantize_act_block (kernels/common/act_blocks.h), written as
// activation rows (act_rows.cuh: the blocks' fields stored apart).
//
// Kernels (2): quantize_q32 (32-value blocks), quantize_q256 (256-value blocks).
// quantize_gated_act is the same kernels forming the down projection's input
// act(gate) * up on the way (gating.cuh), stored back to gate as
// gated_activation would: one launch instead of two.
//
// One warp per block, not one thread per block: lane l reads values l, l+32,
// ... so every load is 128 contiguous bytes (one thread per block would have
// neighbouring threads 128 or 1024 bytes apart). Bit-identity with the
// sequential CPU loop holds because every reduction here is exact in any order:
//   amax: fmax of |x| over the block and 0 (fmax drops a NaN operand, and the
//         CPU's running fmax starting from 0 does the same), so it is the max
//         of 0 and the non-NaN |x|;
//   d = amax/127, id = 1/d (0 when d is 0): correctly rounded divisions;
//   codes nearbyint(x*id) with the product rounded on its own (__fmul_rn);
//   per-16 sums of codes in int (|sum| <= 16*127).
#include "act_q8.cuh"
#include "act_rows.cuh"
#include "cuda_common.cuh"
#include "gating.cuh"

namespace hi::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;  // 256 threads, one activation block per warp

__device__ __forceinline__ int code(float v, float id) { return int(nearbyintf(__fmul_rn(v, id))); }

// Sum over the 16 lanes of each half-warp (lanes 0-15 and 16-31 apart).
__device__ __forceinline__ int half_warp_sum(int v) {
  for (int o = 8; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// x[i], or, with up, act(x[i]) * up[i] stored back to x[i].
__device__ __forceinline__ float input_at(float* x, const float* up, Activation act, int64_t i) {
  if (!up) return x[i];
  const float v = gated_value(act, x[i], up[i]);
  x[i] = v;
  return v;
}

__device__ __forceinline__ void scale_of(float amax, float& d, float& id) {
  d = __fdiv_rn(amax, 127.0f);
  id = d == 0.0f ? 0.0f : __fdiv_rn(1.0f, d);
}

// Block b of n * k/32 (token b / (k/32), block j = b % (k/32)) reads x + 32*b
// (rows of x are whole blocks) and writes row b / (k/32) of out, rows `stride` bytes apart.
__global__ void __launch_bounds__(kWarpsPerBlock* kWarp)
    quantize_q32(float* __restrict__ x, const float* __restrict__ up, Activation act, int64_t blocks, int64_t k,
                 int64_t stride, uint8_t* __restrict__ out) {
  const int64_t b = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (b >= blocks) return;  // the whole warp leaves: shuffles stay full-warp
  const int lane = threadIdx.x % kWarp;
  const float v = input_at(x, up, act, b * QK + lane);
  const float amax = warp_max(fmaxf(0.0f, fabsf(v)));
  float d, id;
  scale_of(amax, d, id);
  const int q = code(v, id);
  const int sum = half_warp_sum(q);  // lanes 0-15: half 0, 16-31: half 1
  const int64_t nb = k / QK, j = b % nb;
  const ActRowOut<QK> o{out + (b / nb) * stride, k};
  o.codes()[QK * j + lane] = int8_t(q);
  if (lane % 16 == 0) o.sums()[2 * j + lane / 16] = int16_t(sum);
  if (lane == 0) o.scales()[j] = d;
}

// Block b of n * k/256, as quantize_q32; lane l takes values l + 32*i (i < 8),
// which lie in half 2*i + l/16.
__global__ void __launch_bounds__(kWarpsPerBlock* kWarp)
    quantize_q256(float* __restrict__ x, const float* __restrict__ up, Activation act, int64_t blocks, int64_t k,
                  int64_t stride, uint8_t* __restrict__ out) {
  constexpr int kPer = QK_K / kWarp;  // 8 values per lane
  const int64_t b = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (b >= blocks) return;
  const int lane = threadIdx.x % kWarp;
  float v[kPer];
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    v[i] = input_at(x, up, act, b * QK_K + kWarp * i + lane);
    amax = fmaxf(amax, fabsf(v[i]));
  }
  amax = warp_max(amax);
  float d, id;
  scale_of(amax, d, id);
  const int64_t nb = k / QK_K, j = b % nb;
  const ActRowOut<QK_K> o{out + (b / nb) * stride, k};
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int q = code(v[i], id);
    o.codes()[QK_K * j + kWarp * i + lane] = int8_t(q);
    const int sum = half_warp_sum(q);
    if (lane % 16 == 0) o.sums()[QK_K / 16 * j + 2 * i + lane / 16] = int16_t(sum);
  }
  if (lane == 0) o.scales()[j] = d;
}

void launch_quantize(int values, float* x, const float* up, Activation act, int64_t n, int64_t k, uint8_t* out,
                     cudaStream_t stream) {
  if (values != QK && values != QK_K)
    throw std::invalid_argument("quantize_act: block of " + std::to_string(values) + " values (32 or 256)");
  if (n <= 0 || k <= 0) return;
  if (k % values != 0)
    throw std::invalid_argument("quantize_act: k=" + std::to_string(k) + " is not a multiple of " +
                                std::to_string(values));
  const int64_t blocks = n * (k / values);
  const int64_t grid = (blocks + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (grid > int64_t(0x7fffffff)) throw std::invalid_argument("quantize_act: too many blocks");
  if (reinterpret_cast<uintptr_t>(out) % 16 != 0) throw std::invalid_argument("quantize_act: out not 16-byte aligned");
  const int64_t stride = act_row_stride(values, k);
  if (values == QK) {
    quantize_q32<<<unsigned(grid), kWarpsPerBlock * kWarp, 0, stream>>>(x, up, act, blocks, k, stride, out);
    check_launch("quantize_act q32");
  } else {
    quantize_q256<<<unsigned(grid), kWarpsPerBlock * kWarp, 0, stream>>>(x, up, act, blocks, k, stride, out);
    check_launch("quantize_act q256");
  }
}

}  // namespace

// x is only read: the kernels write it only when given up.
void quantize_act(int values, const float* x, int64_t n, int64_t k, uint8_t* out, cudaStream_t stream) {
  launch_quantize(values, const_cast<float*>(x), nullptr, Activation::Silu, n, k, out, stream);
}

void quantize_gated_act(int values, float* gate, const float* up, Activation act, int64_t n, int64_t k, uint8_t* out,
                        cudaStream_t stream) {
  launch_quantize(values, gate, up, act, n, k, out, stream);
}

}  // namespace hi::cuda
