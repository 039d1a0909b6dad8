// Reading rows of any weight or cache type, shared by the device kernels
// (SYCL sources compiled at run time, CUDA compiled by nvcc).
//
// Every weight/cache type is read the same way: a row is cut into 32-value
// chunks and chunk_values() dequantises chunk c of a row into 32 floats with
// exactly the float ops of quant_blocks.h's chunk_to_float (bit-identical to
// the CPU and gguf.quants). Float rows (f32/f16/bf16) may have any length; the
// values of their last chunk past the row end read as 0.
#pragma once
#include <cstdint>
#include <type_traits>

#include "act_blocks.h"
#include "quant_blocks.h"
#include "planar_blocks.h"

namespace hi {

// Row element types that are not blocks: one value per element.
struct f32_t { float v; };
struct f16_t { uint16_t v; };
struct bf16_t { uint16_t v; };

// values: values per block (1 for float rows); bytes: bytes per block.
template <typename T>
struct TypeInfo {
  static constexpr bool is_float = false;
  static constexpr int values = BlockTraits<T>::values;
  static constexpr int chunks = BlockTraits<T>::chunks;
  static constexpr int bytes = BlockTraits<T>::bytes;
};
#define HI_FLOAT_INFO(T, BYTES)               \
  template <>                                 \
  struct TypeInfo<T> {                        \
    static constexpr bool is_float = true;    \
    static constexpr int values = 1;          \
    static constexpr int bytes = BYTES;       \
  };
HI_FLOAT_INFO(f32_t, 4)
HI_FLOAT_INFO(f16_t, 2)
HI_FLOAT_INFO(bf16_t, 2)
#undef HI_FLOAT_INFO

// Every type a weight row may have, as X(suffix, type): one kernel per entry.
#define HI_ALL_TYPES(X)                                                                    \
  X(f32, hi::f32_t) X(f16, hi::f16_t) X(bf16, hi::bf16_t) X(q4_0, hi::block_q4_0)          \
  X(q4_1, hi::block_q4_1) X(q5_0, hi::block_q5_0) X(q5_1, hi::block_q5_1)                  \
  X(q8_0, hi::block_q8_0) X(q2_K, hi::block_q2_K) X(q3_K, hi::block_q3_K)                  \
  X(q4_K, hi::block_q4_K) X(q5_K, hi::block_q5_K) X(q6_K, hi::block_q6_K)

template <typename T>
HI_HD int64_t row_bytes(int64_t k) { return k / TypeInfo<T>::values * TypeInfo<T>::bytes; }

HI_HD int64_t n_chunks(int64_t k) { return (k + QK - 1) / QK; }

HI_HD float load_value(const f32_t* p, int64_t i) { return p[i].v; }
HI_HD float load_value(const f16_t* p, int64_t i) { return half_to_float(p[i].v); }
HI_HD float load_value(const bf16_t* p, int64_t i) { return bf16_to_float(p[i].v); }

// Chunk c of a quantised row of k values -> ch. planar: the row is a planar row
// (planar_blocks.h), as weights placed on a Device::planar_weights device are.
template <typename T>
HI_HD void unpack_row_chunk(const uint8_t* row, int64_t k, int64_t c, bool planar, Chunk& ch) {
  constexpr int C = TypeInfo<T>::chunks;
  if (planar)
    unpack_chunk(Planar<T>(PlanarAt{row, k / TypeInfo<T>::values, c / C}), int(c % C), ch);
  else
    unpack_chunk(reinterpret_cast<const T*>(row)[c / C], int(c % C), ch);
}

// Chunk c of a row of k values -> v (32,). Returns how many are real (< 32 only
// for the last chunk of a float row; the rest are set to 0). planar: as
// unpack_row_chunk (float rows are never planar).
template <typename T>
HI_HD int chunk_values(const uint8_t* row, int64_t k, int64_t c, float* v, bool planar = false) {
  if constexpr (TypeInfo<T>::is_float) {
    const T* p = reinterpret_cast<const T*>(row) + c * QK;
    const int64_t left = k - c * QK;
    const int n = left < QK ? int(left) : QK;
    for (int i = 0; i < QK; ++i) v[i] = i < n ? load_value(p, i) : 0.0f;
    return n;
  } else {
    Chunk ch;
    unpack_row_chunk<T>(row, k, c, planar, ch);
    chunk_to_float(ch, v);
    return QK;
  }
}

// Bytes of one token's row of the activation blocks (act_blocks.h ActFor<T>)
// that pair with weight type T.
template <typename T>
HI_HD int64_t act_row_bytes(int64_t k) {
  return k / int64_t(sizeof(ActFor<T>::qs)) * int64_t(sizeof(ActFor<T>));
}

// 32 codes at p (4-byte aligned) as 8 words of 4 codes.
HI_HD void load_words(const int8_t* p, int32_t* out /* (8,) */) {
  for (int i = 0; i < QK / 4; ++i) out[i] = reinterpret_cast<const int32_t*>(p)[i];
}

// ---- cache types (f32, f16, q8_0, q4_0): one value at a time ---------------
// Same value as chunk_to_float (s*q - m with m = 0), for reads where adjacent
// threads take adjacent elements of one row (coalesced).
HI_HD float elem_value(const f32_t*, const uint8_t* row, int64_t i) { return reinterpret_cast<const float*>(row)[i]; }
HI_HD float elem_value(const f16_t*, const uint8_t* row, int64_t i) {
  return half_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
}
HI_HD float elem_value(const block_q8_0*, const uint8_t* row, int64_t i) {
  const block_q8_0& b = reinterpret_cast<const block_q8_0*>(row)[i / QK];
  return half_to_float(b.d) * float(b.qs[i % QK]) - 0.0f;
}
HI_HD float elem_value(const block_q4_0*, const uint8_t* row, int64_t i) {
  const block_q4_0& b = reinterpret_cast<const block_q4_0*>(row)[i / QK];
  const int j = int(i % QK);
  const int q = (j < 16 ? (b.qs[j] & 0x0f) : (b.qs[j - 16] >> 4)) - 8;
  return half_to_float(b.d) * float(q) - 0.0f;
}

// Calls f(T*) with a null pointer of the cache type named by a QType id
// (F32, F16, Q8_0, Q4_0); other ids do nothing.
template <typename F>
HI_HD void with_cache_type(int32_t type, F&& f) {
  switch (type) {
    case int32_t(QType::F32): f((const f32_t*)nullptr); break;
    case int32_t(QType::F16): f((const f16_t*)nullptr); break;
    case int32_t(QType::Q8_0): f((const block_q8_0*)nullptr); break;
    case int32_t(QType::Q4_0): f((const block_q4_0*)nullptr); break;
    default: break;
  }
}

HI_HD int64_t cache_row_bytes(int32_t type, int64_t d) {
  switch (type) {
    case int32_t(QType::F32): return d * 4;
    case int32_t(QType::F16): return d * 2;
    case int32_t(QType::Q8_0): return d / QK * int64_t(sizeof(block_q8_0));
    case int32_t(QType::Q4_0): return d / QK * int64_t(sizeof(block_q4_0));
    default: return 0;
  }
}

}  // namespace hi
