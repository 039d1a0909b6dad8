// How a CUDA device lays out a token's activations rounded to 8-bit blocks
// (act_blocks.h: the same codes, scales and half sums as the CPU's blocks,
// stored field by field): an "activation row" of k values in blocks of V
// (32, or 256 for K-quant weights):
//
//   codes  (k,)       int8   at 0               chunk c's 32 codes at 32 c
//   scales (k / V,)   float  at k               chunk c's at 4 (c / (V / 32))
//   sums   (k / 16,)  int16  at k + 4 k / V     chunk c's two half sums at 4 c
//
// Rows are act_row_stride(V, k) bytes apart (a multiple of 16), so every
// chunk's codes are 16-byte aligned and a lane reads them with two 16-byte
// loads. In the CPU's blocks (40 or 292 bytes each) 32 lanes reading
// neighbouring chunks' codes touched 10 cache lines per 4-byte load; here 8
// per 16-byte load (bench/RESULTS.md).
#pragma once
#include "cuda_common.cuh"

namespace hi::cuda {

// Byte offsets of the planes in a row of k values (the table above), for the
// reader and the writer alike.
__device__ __forceinline__ int64_t act_scales_at(int64_t k) { return k; }
template <int V>
__device__ __forceinline__ int64_t act_sums_at(int64_t k) { return k + 4 * (k / V); }

// Where chunk c's fields lie in every token's row of k values: worked out
// once per chunk, so a kernel reading several tokens' rows adds only the row.
template <int V>
struct ActChunkAt {
  static_assert(V == QK || V == QK_K, "activation blocks of 32 or 256 values");
  int64_t codes, scale, sums;  // byte offsets in a row

  __device__ ActChunkAt(int64_t k, int64_t c)
      : codes(QK * c), scale(act_scales_at(k) + 4 * (c / (V / QK))), sums(act_sums_at<V>(k) + 4 * c) {}

  // row: a token's row, act_row_stride(V, k) bytes.
  __device__ const int8_t* codes_in(const uint8_t* row) const { return reinterpret_cast<const int8_t*>(row + codes); }
  __device__ float scale_in(const uint8_t* row) const { return *reinterpret_cast<const float*>(row + scale); }
  // The chunk's half sums (both in one 4-byte load: sum[0] is the low half).
  __device__ void sums_in(const uint8_t* row, int& s0, int& s1) const {
    const uint32_t v = *reinterpret_cast<const uint32_t*>(row + sums);
    s0 = int(int16_t(v & 0xffffu));
    s1 = int(int16_t(v >> 16));
  }
};

// The same row, to write: quantize_act's kernels.
template <int V>
struct ActRowOut {
  uint8_t* row;
  int64_t k;

  __device__ int8_t* codes() const { return reinterpret_cast<int8_t*>(row); }
  __device__ float* scales() const { return reinterpret_cast<float*>(row + act_scales_at(k)); }  // (k / V,)
  __device__ int16_t* sums() const { return reinterpret_cast<int16_t*>(row + act_sums_at<V>(k)); }   // (k / 16,)
};

// Values per activation block for weight type T (V of its activation rows).
template <typename T>
constexpr int kActValues = TypeInfo<T>::values == QK_K ? QK_K : QK;

}  // namespace hi::cuda
