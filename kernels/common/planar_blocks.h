// Quantised weight rows with each block field stored apart ("planar rows": one
// plane per field), the layout in which devices that read a row across many
// threads hold their weights (SYCL; Device::planar_weights).
//
// A row of nb blocks of T holds, for each field of T in declaration order, that
// field of all nb blocks (block 0's first): field f of block b is at
//   row + nb * offsetof(T, f) + b * sizeof(T::f).
// The row keeps its size, so rows, slices of rows and plans are unchanged.
// Threads reading neighbouring blocks then read neighbouring bytes: one
// block's codes follow the last one's with no scales between, and when nb is a
// multiple of 8 (k a multiple of 256 for 32-value blocks, of 2048 for
// super-blocks: Llama-3-8B's 4096 and 14336 are both) every plane starts
// 16-byte aligned, so a sub-group's reads are whole, aligned lines.
//
// Planar<T> is a view of one block with T's member names (arrays as pointers,
// scalars loaded), so quant_blocks.h's unpack_chunk reads it as it reads a T.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant_blocks.h"

namespace hi {

struct Field {
  int offset;  // in T, bytes
  int size;    // bytes
};
#define HI_FIELD(T, f) Field{int(offsetof(T, f)), int(sizeof(T::f))}

// Block b of a planar row of nb blocks.
struct PlanarAt {
  const uint8_t* row;
  int64_t nb, b;
  template <typename P>
  HI_HD const P* field(Field f) const {
    return reinterpret_cast<const P*>(row + nb * f.offset + b * f.size);
  }
  // 2-byte aligned: rows start aligned (every block size is even, and
  // planar_rows.cpp asserts that every half's offset is even too).
  HI_HD uint16_t half(Field f) const { return *field<uint16_t>(f); }
};

template <>
struct Planar<block_q4_0> {
  static constexpr int kFields = 2;
  static constexpr Field fields[kFields] = {HI_FIELD(block_q4_0, d), HI_FIELD(block_q4_0, qs)};
  uint16_t d;
  const uint8_t* qs;
  HI_HD explicit Planar(PlanarAt a) : d(a.half(fields[0])), qs(a.field<uint8_t>(fields[1])) {}
};

template <>
struct Planar<block_q4_1> {
  static constexpr int kFields = 3;
  static constexpr Field fields[kFields] = {HI_FIELD(block_q4_1, d), HI_FIELD(block_q4_1, m),
                                            HI_FIELD(block_q4_1, qs)};
  uint16_t d, m;
  const uint8_t* qs;
  HI_HD explicit Planar(PlanarAt a) : d(a.half(fields[0])), m(a.half(fields[1])), qs(a.field<uint8_t>(fields[2])) {}
};

template <>
struct Planar<block_q5_0> {
  static constexpr int kFields = 3;
  static constexpr Field fields[kFields] = {HI_FIELD(block_q5_0, d), HI_FIELD(block_q5_0, qh),
                                            HI_FIELD(block_q5_0, qs)};
  uint16_t d;
  const uint8_t *qh, *qs;
  HI_HD explicit Planar(PlanarAt a)
      : d(a.half(fields[0])), qh(a.field<uint8_t>(fields[1])), qs(a.field<uint8_t>(fields[2])) {}
};

template <>
struct Planar<block_q5_1> {
  static constexpr int kFields = 4;
  static constexpr Field fields[kFields] = {HI_FIELD(block_q5_1, d), HI_FIELD(block_q5_1, m),
                                            HI_FIELD(block_q5_1, qh), HI_FIELD(block_q5_1, qs)};
  uint16_t d, m;
  const uint8_t *qh, *qs;
  HI_HD explicit Planar(PlanarAt a)
      : d(a.half(fields[0])), m(a.half(fields[1])), qh(a.field<uint8_t>(fields[2])), qs(a.field<uint8_t>(fields[3])) {}
};

template <>
struct Planar<block_q8_0> {
  static constexpr int kFields = 2;
  static constexpr Field fields[kFields] = {HI_FIELD(block_q8_0, d), HI_FIELD(block_q8_0, qs)};
  uint16_t d;
  const int8_t* qs;
  HI_HD explicit Planar(PlanarAt a) : d(a.half(fields[0])), qs(a.field<int8_t>(fields[1])) {}
};

template <>
struct Planar<block_q2_K> {
  static constexpr int kFields = 4;
  static constexpr Field fields[kFields] = {HI_FIELD(block_q2_K, scales), HI_FIELD(block_q2_K, qs),
                                            HI_FIELD(block_q2_K, d), HI_FIELD(block_q2_K, dmin)};
  const uint8_t *scales, *qs;
  uint16_t d, dmin;
  HI_HD explicit Planar(PlanarAt a)
      : scales(a.field<uint8_t>(fields[0])), qs(a.field<uint8_t>(fields[1])), d(a.half(fields[2])),
        dmin(a.half(fields[3])) {}
};

template <>
struct Planar<block_q3_K> {
  static constexpr int kFields = 4;
  static constexpr Field fields[kFields] = {HI_FIELD(block_q3_K, hmask), HI_FIELD(block_q3_K, qs),
                                            HI_FIELD(block_q3_K, scales), HI_FIELD(block_q3_K, d)};
  const uint8_t *hmask, *qs, *scales;
  uint16_t d;
  HI_HD explicit Planar(PlanarAt a)
      : hmask(a.field<uint8_t>(fields[0])), qs(a.field<uint8_t>(fields[1])), scales(a.field<uint8_t>(fields[2])),
        d(a.half(fields[3])) {}
};

template <>
struct Planar<block_q4_K> {
  static constexpr int kFields = 4;
  static constexpr Field fields[kFields] = {HI_FIELD(block_q4_K, d), HI_FIELD(block_q4_K, dmin),
                                            HI_FIELD(block_q4_K, scales), HI_FIELD(block_q4_K, qs)};
  uint16_t d, dmin;
  const uint8_t *scales, *qs;
  HI_HD explicit Planar(PlanarAt a)
      : d(a.half(fields[0])), dmin(a.half(fields[1])), scales(a.field<uint8_t>(fields[2])),
        qs(a.field<uint8_t>(fields[3])) {}
};

template <>
struct Planar<block_q5_K> {
  static constexpr int kFields = 5;
  static constexpr Field fields[kFields] = {HI_FIELD(block_q5_K, d), HI_FIELD(block_q5_K, dmin),
                                            HI_FIELD(block_q5_K, scales), HI_FIELD(block_q5_K, qh),
                                            HI_FIELD(block_q5_K, qs)};
  uint16_t d, dmin;
  const uint8_t *scales, *qh, *qs;
  HI_HD explicit Planar(PlanarAt a)
      : d(a.half(fields[0])), dmin(a.half(fields[1])), scales(a.field<uint8_t>(fields[2])),
        qh(a.field<uint8_t>(fields[3])), qs(a.field<uint8_t>(fields[4])) {}
};

template <>
struct Planar<block_q6_K> {
  static constexpr int kFields = 4;
  static constexpr Field fields[kFields] = {HI_FIELD(block_q6_K, ql), HI_FIELD(block_q6_K, qh),
                                            HI_FIELD(block_q6_K, scales), HI_FIELD(block_q6_K, d)};
  const uint8_t *ql, *qh;
  const int8_t* scales;
  uint16_t d;
  HI_HD explicit Planar(PlanarAt a)
      : ql(a.field<uint8_t>(fields[0])), qh(a.field<uint8_t>(fields[1])), scales(a.field<int8_t>(fields[2])),
        d(a.half(fields[3])) {}
};

#undef HI_FIELD

}  // namespace hi
