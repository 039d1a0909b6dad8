// Row gather (embedding lookup, cache read) and row scatter (KV cache write);
// kernels/sycl/rows.cpp semantics.
//
// get_rows: one thread per 32-value chunk (chunk_values: bit-identical to
// chunk_to_float, 13 instantiations). Chunk i = r * n_chunks + c lands at
// out[r * cols + 32 c ..], so a block's 128 consecutive chunks fill one
// contiguous stretch of `out`: the values are staged in shared memory and
// stored coalesced.
// set_rows: one warp per chunk, lane j owning value j: the chunk's absmax
// through warp reductions, coalesced loads and stores; byte-identical to
// csrc/quant/quantize_legacy.cpp. One kernel for f32, f16, q8_0 and q4_0 (a
// warp-uniform switch on the type) that writes one table or two at the same
// rows (a layer's keys and values in one launch): the first table's chunks,
// then the second's.
#include "rows.cuh"

#include <climits>
#include <stdexcept>
#include <string>

#include "cuda_common.cuh"
#include "qtypes.h"
#include "weight_types.cuh"

namespace hi::cuda {

namespace {

constexpr int kGetThreads = 128;
constexpr int kSetThreads = 256;
constexpr int64_t kMaxGrid = INT_MAX;

unsigned grid_for(int64_t blocks) { return unsigned(blocks < kMaxGrid ? blocks : kMaxGrid); }

// Shared-memory index of staged value p: one pad word per 32 keeps thread t's
// stores (at 32 t + j) on distinct banks.
__device__ __forceinline__ int staged(int64_t p) { return int(p + p / QK); }

template <typename T>
__global__ void __launch_bounds__(kGetThreads) get_rows_kernel(const uint8_t* table, int64_t cols, const int32_t* ids,
                                                               int64_t n, float scale, float* out, bool planar) {
  __shared__ float stage[kGetThreads * QK + kGetThreads];
  const int64_t nc = n_chunks(cols), total = n * nc, rb = row_bytes<T>(cols);
  for (int64_t i0 = int64_t(blockIdx.x) * kGetThreads; i0 < total; i0 += int64_t(gridDim.x) * kGetThreads) {
    const int64_t i1 = i0 + kGetThreads < total ? i0 + kGetThreads : total;  // this round's chunks [i0, i1)
    const int64_t first = (i0 / nc) * cols + (i0 % nc) * QK;                 // where chunk i0 lands
    const int64_t last = i1 == total ? n * cols : (i1 / nc) * cols + (i1 % nc) * QK;
    const int64_t i = i0 + threadIdx.x;
    __syncthreads();  // the previous round's stores have read `stage`
    if (i < total) {
      const int64_t r = i / nc, c = i % nc;
      float v[QK];  // (32,)
      const int m = chunk_values<T>(table + int64_t(ids[r]) * rb, cols, c, v, planar);
      const int64_t at = r * cols + c * QK - first;
      // Two loops, not a select: a select may become v * (scale or 1), which
      // would touch NaN bits that a copy keeps.
      if (scale != 1.0f) {
#pragma unroll
        for (int j = 0; j < QK; ++j)
          if (j < m) stage[staged(at + j)] = v[j] * scale;
      } else {
#pragma unroll
        for (int j = 0; j < QK; ++j)
          if (j < m) stage[staged(at + j)] = v[j];
      }
    }
    __syncthreads();
    const int len = int(last - first);  // <= 128 * 32
    for (int k = threadIdx.x; k < len; k += kGetThreads) out[first + k] = stage[staged(k)];
  }
}

// ---- quantisers: csrc/quant/quantize_legacy.cpp's ops in its order --------
// x: this lane's value (0 past m); lane j owns value j of the chunk. Products
// and sums are spelt __fmul_rn / __fadd_rn (never fused into an FMA) and the
// divisions __fdiv_rn, whatever the compiler flags.

__device__ __forceinline__ float inverse_or_zero(float d) { return d == 0.0f ? 0.0f : __fdiv_rn(1.0f, d); }

__device__ __forceinline__ void store_half(uint8_t* p, float d) {  // blocks are only 2-byte aligned: bytes
  const uint16_t h = float_to_half(d);
  p[0] = uint8_t(h & 0xff);
  p[1] = uint8_t(h >> 8);
}

__device__ __forceinline__ void put_chunk(const f32_t*, uint8_t* row, int64_t c, float x, int lane, int m) {
  if (lane < m) reinterpret_cast<float*>(row)[c * QK + lane] = x;
}

__device__ __forceinline__ void put_chunk(const f16_t*, uint8_t* row, int64_t c, float x, int lane, int m) {
  if (lane < m) reinterpret_cast<uint16_t*>(row)[c * QK + lane] = float_to_half(x);
}

__device__ __forceinline__ void put_chunk(const block_q8_0*, uint8_t* row, int64_t c, float x, int lane, int) {
  uint8_t* b = row + c * int64_t(sizeof(block_q8_0));
  // amax = max(amax, |x|) from 0: NaNs never win (fmaxf drops them too).
  const float amax = warp_max(fmaxf(0.0f, fabsf(x)));
  const float d = __fdiv_rn(amax, 127.0f);
  const float id = inverse_or_zero(d);
  // std::round: half away from zero, as roundf. |x * id| <= 127.5 never holds
  // above 127, so the int8 conversion is exact.
  b[2 + lane] = uint8_t(int8_t(int(roundf(__fmul_rn(x, id)))));
  if (lane == 0) store_half(b, d);
}

__device__ __forceinline__ void put_chunk(const block_q4_0*, uint8_t* row, int64_t c, float x, int lane, int) {
  uint8_t* b = row + c * int64_t(sizeof(block_q4_0));
  // The signed value of largest magnitude, the first on ties; 0 when every
  // |x| is 0 or NaN (the CPU's running "fabs(x) > amax" from 0 never fires).
  const float ax = fabsf(x);
  const float amax = warp_max(ax > 0.0f ? ax : 0.0f);
  float max = 0.0f;
  if (amax > 0.0f) {  // warp-uniform
    const unsigned hit = __ballot_sync(0xffffffffu, ax == amax);
    max = __shfl_sync(0xffffffffu, x, __ffs(int(hit)) - 1);
  }
  const float d = __fdiv_rn(max, -8.0f);
  const float id = inverse_or_zero(d);
  const int t = int(truncf(__fadd_rn(__fmul_rn(x, id), 8.5f)));
  const uint8_t q = uint8_t(t < 15 ? t : 15);
  const uint8_t q_hi = uint8_t(__shfl_down_sync(0xffffffffu, unsigned(q), QK / 2));  // value lane + 16
  if (lane < QK / 2) b[2 + lane] = uint8_t((q & 0x0f) | (q_hi << 4));
  if (lane == 0) store_half(b, d);
}

// A table set_rows_kernel writes: src (n, cols) into rows ids[i] of table.
struct SetTable {
  int32_t type;  // QType id: f32, f16, q8_0, q4_0
  uint8_t* table;
  const float* src;
  int64_t cols, chunks, row_bytes;  // chunks: 32-value chunks a row
};

#ifdef HI_CUDA_EMULATOR  // tests/cuda_emulator checks that a launch's pointers are device memory
inline std::vector<const void*> hi_emu_pointers(const SetTable& t) { return {t.table, t.src}; }
#endif

__global__ void __launch_bounds__(kSetThreads) set_rows_kernel(const SetTable a, const SetTable b,
                                                               const int32_t* ids, int64_t n) {
  const int lane = int(threadIdx.x) % kWarp;
  const int64_t warps = int64_t(gridDim.x) * (kSetThreads / kWarp);
  const int64_t in_a = n * a.chunks, total = in_a + n * b.chunks;
  // Warp-uniform loop: every lane of a warp takes the same chunk.
  for (int64_t i = (int64_t(blockIdx.x) * kSetThreads + threadIdx.x) / kWarp; i < total; i += warps) {
    // Field by field, so the arguments stay in the constant bank (choosing
    // the whole struct by a condition copies both to local memory).
    const bool first = i < in_a;
    const int64_t chunks = first ? a.chunks : b.chunks, cols = first ? a.cols : b.cols;
    const int64_t j = first ? i : i - in_a, r = j / chunks, c = j % chunks;
    const int64_t left = cols - c * QK;
    const int m = left < QK ? int(left) : QK;
    const float x = lane < m ? (first ? a.src : b.src)[r * cols + c * QK + lane] : 0.0f;
    uint8_t* row = (first ? a.table : b.table) + int64_t(ids[r]) * (first ? a.row_bytes : b.row_bytes);
    with_cache_type(first ? a.type : b.type, [&](auto tag) { put_chunk(tag, row, c, x, lane, m); });
  }
}

template <typename T>
void launch_get(const uint8_t* table, int64_t cols, const int32_t* ids, int64_t n, float scale, float* out,
                bool planar, cudaStream_t stream) {
  const int64_t chunks = n * n_chunks(cols);
  get_rows_kernel<T><<<grid_for((chunks + kGetThreads - 1) / kGetThreads), kGetThreads, 0, stream>>>(
      table, cols, ids, n, scale, out, planar);
}

SetTable set_table(const RowsTarget& t) {
  switch (t.type) {
    case QType::F32:
    case QType::F16:
    case QType::Q8_0:
    case QType::Q4_0: break;
    default:
      throw std::invalid_argument(std::string("set_rows: type ") + qtype_info(t.type).name +
                                  " is not one of f32, f16, q8_0, q4_0");
  }
  if (t.cols < 0) throw std::invalid_argument("set_rows: negative size");
  return {int32_t(t.type), t.table, t.src, t.cols, n_chunks(t.cols), cache_row_bytes(int32_t(t.type), t.cols)};
}

}  // namespace

void get_rows(QType type, const uint8_t* table, int64_t cols, const int32_t* ids, int64_t n, float scale, float* out,
              bool planar, cudaStream_t stream) {
  if (n <= 0 || cols <= 0) {
    (void)qtype_info(type);  // still rejects an unknown type id
    return;
  }
  with_weight_type(type, "get_rows", [&](auto tag, const char*) {
    launch_get<WeightOf<decltype(tag)>>(table, cols, ids, n, scale, out, planar, stream);
  });
  check_launch("get_rows");
}

void set_rows(const RowsTarget& a, const RowsTarget* b, const int32_t* ids, int64_t n, cudaStream_t stream) {
  const SetTable ta = set_table(a);
  SetTable tb = b ? set_table(*b) : SetTable{int32_t(QType::F32), nullptr, nullptr, 0, 0, 0};  // none: no chunks
  if (n <= 0) return;
  constexpr int per_block = kSetThreads / kWarp;  // chunks per block
  const int64_t chunks = n * (ta.chunks + tb.chunks);
  if (chunks == 0) return;
  set_rows_kernel<<<grid_for((chunks + per_block - 1) / per_block), kSetThreads, 0, stream>>>(ta, tb, ids, n);
  check_launch("set_rows");
}

}  // namespace hi::cuda
