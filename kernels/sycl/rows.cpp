// Row gather (embedding lookup, cache read) and row scatter (cache write).
// One work-item per 32-value chunk of a row: local 64,
// global round_up(n * ceil(cols/32), 64).
#include "hi_sycl_common.h"

namespace hi {

// out: (n, cols) = table rows ids (n,), times scale. Values are bit-identical
// to chunk_to_float; scale 1 multiplies nothing. planar: the table is placed
// weights (planar rows, planar_blocks.h), not a cache.
template <typename T>
inline void get_rows(const uint8_t* table, bool planar, int64_t cols, const int32_t* ids, int64_t n, float scale,
                     float* out) {
  const int64_t nc = n_chunks(cols), i = int64_t(syclext::this_work_item::get_nd_item<1>().get_global_id(0));
  if (i >= n * nc) return;
  const int64_t r = i / nc, c = i % nc;
  float v[QK];  // (32,)
  const int m = chunk_values<T>(table + int64_t(ids[r]) * row_bytes<T>(cols), cols, c, v, planar);
  float* o = out + r * cols + c * QK;
  // Constant trip counts keep v in registers. Two loops, not a select: a
  // select may become v * (scale or 1), which quietens signalling NaNs.
  if (scale != 1.0f) {
    for (int j = 0; j < QK; ++j)
      if (j < m) o[j] = v[j] * scale;
  } else {
    for (int j = 0; j < QK; ++j)
      if (j < m) o[j] = v[j];
  }
}

// ---- quantisers: same ops, same order as csrc/quant/quantize_legacy.cpp ----
inline float inverse_or_zero(float d) { return d == 0.0f ? 0.0f : 1.0f / d; }

inline void put_chunk(f32_t* dst, const float* x, int m) {
  for (int j = 0; j < m; ++j) dst[j].v = x[j];
}
inline void put_chunk(f16_t* dst, const float* x, int m) {
  for (int j = 0; j < m; ++j) dst[j].v = float_to_half(x[j]);
}
inline void put_chunk(block_q8_0* dst, const float* x, int) {
  float amax = 0.0f;
  for (int j = 0; j < QK; ++j) amax = sycl::fmax(amax, sycl::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = inverse_or_zero(d);
  for (int j = 0; j < QK; ++j) dst->qs[j] = int8_t(sycl::round(x[j] * id));  // half away from zero, as std::round
  dst->d = float_to_half(d);
}
inline void put_chunk(block_q4_0* dst, const float* x, int) {
  // x*id + 8.5f must not become an fma: it changes codes. The device compiler
  // fuses within an expression by default and ignores "#pragma STDC
  // FP_CONTRACT OFF" and a file-scope clang pragma before the includes; this
  // block-scope one is honoured (tested).
#pragma clang fp contract(off)
  float amax = 0.0f, max = 0.0f;  // signed value of largest magnitude, first on ties
  for (int j = 0; j < QK; ++j)
    if (sycl::fabs(x[j]) > amax) {
      amax = sycl::fabs(x[j]);
      max = x[j];
    }
  const float d = max / -8.0f;
  const float id = inverse_or_zero(d);
  uint8_t q[QK];
  for (int j = 0; j < QK; ++j) {
    const int t = int(sycl::trunc(x[j] * id + 8.5f));
    q[j] = uint8_t(t < 15 ? t : 15);
  }
  for (int j = 0; j < QK / 2; ++j) dst->qs[j] = uint8_t((q[j] & 0x0f) | (q[j + 16] << 4));
  dst->d = float_to_half(d);
}

// dst rows rows[i] = quantised src row i: src (n, cols), dst (n_cells, cols) in T's layout.
template <typename T>
inline void set_rows(uint8_t* dst, int64_t cols, const int32_t* rows, int64_t n, const float* src) {
  const int64_t nc = n_chunks(cols), i = int64_t(syclext::this_work_item::get_nd_item<1>().get_global_id(0));
  if (i >= n * nc) return;
  const int64_t r = i / nc, c = i % nc;
  const int64_t left = cols - c * QK;
  const int m = left < QK ? int(left) : QK;
  // A chunk is one block for q8_0/q4_0 and 32 elements for f32/f16.
  T* d = reinterpret_cast<T*>(dst + int64_t(rows[r]) * row_bytes<T>(cols)) + c * (QK / TypeInfo<T>::values);
  put_chunk(d, src + r * cols + c * QK, m);
}

}  // namespace hi

#define HI_GET_ROWS_KERNEL(NAME, T)                                                                     \
  HI_KERNEL hi_get_rows_##NAME(const uint8_t* table, int32_t planar, int64_t cols, const int32_t* ids, int64_t n, \
                               float scale, float* out) {                                               \
    hi::get_rows<T>(table, planar != 0, cols, ids, n, scale, out);                                       \
  }
HI_ALL_TYPES(HI_GET_ROWS_KERNEL)

#define HI_SET_ROWS_KERNEL(NAME, T)                                                                         \
  HI_KERNEL hi_set_rows_##NAME(uint8_t* dst, int64_t cols, const int32_t* rows, int64_t n, const float* src) { \
    hi::set_rows<T>(dst, cols, rows, n, src);                                                               \
  }
HI_SET_ROWS_KERNEL(f32, hi::f32_t)
HI_SET_ROWS_KERNEL(f16, hi::f16_t)
HI_SET_ROWS_KERNEL(q8_0, hi::block_q8_0)
HI_SET_ROWS_KERNEL(q4_0, hi::block_q4_0)
