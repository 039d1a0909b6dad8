// One 32-value chunk of a weight row, and one of a token's activation row
// (act_rows.cuh), as the integer matvec (mmvq.cu) consumes them: codes packed
// four to a 32-bit word, read with the widest loads the layout allows.
//
// Why: a warp whose lanes take neighbouring chunks reads them with one load
// instruction per piece of a chunk, and each instruction costs an L1 wavefront
// per cache line its 32 lanes touch. Byte loads of 18-byte Q4_0 blocks touch
// 5 lines per instruction for 32 bytes of use each; one 16-byte load of a
// planar row's codes touches 4 lines for 512 bytes (bench/RESULTS.md, "Decode
// matvec: what the machine code says").
//
// Row layouts:
//   Blocks    the file's rows of blocks (any row width);
//   Planar    planar rows (planar_blocks.h), any width: the fields through
//             Planar<T>, byte by byte;
//   Planar16  planar rows from a 16-byte aligned base whose every plane that
//             is read wide starts 16-byte aligned (wide_block_multiple): Q4_0,
//             Q8_0, Q4_K and Q6_K read their codes with 16-byte loads (other
//             types as Planar). Llama-3-8B's widths, 4096 and 14336, are all
//             Planar16.
#pragma once
#include "act_rows.cuh"
#include "cuda_common.cuh"

namespace hi::cuda {

enum class RowLayout { Blocks, Planar, Planar16 };

// A weight chunk: value j = s[j / 16] * (code j - kZero) - m[j / 16], where the
// reader's kZero is a constant the matvec takes off its integer sums (sum of
// code * x minus kZero * sum of x: the same integers as the CPU's
// sum of (code - kZero) * x).
struct ChunkWords {
  int32_t q[QK / 4];  // (8,) codes, 4 per word, low byte first: word i holds values 4i .. 4i+3
  float s[2];         // (2,) scale per 16-value half
  float m[2];         // (2,) offset per 16-value half
};

__device__ __forceinline__ void set_scales(const Chunk& ch, ChunkWords& w) {
  w.s[0] = ch.s[0], w.s[1] = ch.s[1], w.m[0] = ch.m[0], w.m[1] = ch.m[1];
}

// One scale for the chunk (d16, a half), no offset: Q4_0, Q8_0.
__device__ __forceinline__ void set_block_scale(uint16_t d16, ChunkWords& w) {
  w.s[0] = w.s[1] = half_to_float(d16);
  w.m[0] = w.m[1] = 0.0f;
}

// 16 bytes at p (16-byte aligned) as 4 words.
__device__ __forceinline__ void load16(const void* p, uint32_t* out /* (4,) */) {
  const int4 v = *static_cast<const int4*>(p);
  out[0] = uint32_t(v.x), out[1] = uint32_t(v.y), out[2] = uint32_t(v.z), out[3] = uint32_t(v.w);
}

// Any type and layout: unpack_chunk's codes (offset already taken off), as words.
template <typename T, RowLayout L>
struct ChunkReader {
  static constexpr int kZero = 0;
  // Chunk c of a row of k values.
  __device__ static void read(const uint8_t* row, int64_t k, int64_t c, ChunkWords& w) {
    Chunk ch;
    unpack_row_chunk<T>(row, k, c, L != RowLayout::Blocks, ch);
    load_words(ch.q, w.q);
    set_scales(ch, w);
  }
};

// Q4_0: codes 0..15 (offset 8), the chunk's 16 code bytes in one load; low
// nibbles are values 0..15, high nibbles 16..31 (unpack_chunk's order).
template <>
struct ChunkReader<block_q4_0, RowLayout::Planar16> {
  static constexpr int kZero = 8;
  __device__ static void read(const uint8_t* row, int64_t k, int64_t c, ChunkWords& w) {
    const Planar<block_q4_0> b(PlanarAt{row, k / QK, c});
    uint32_t qs[4];
    load16(b.qs, qs);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      w.q[i] = int32_t(qs[i] & 0x0f0f0f0fu);
      w.q[i + 4] = int32_t((qs[i] >> 4) & 0x0f0f0f0fu);
    }
    set_block_scale(b.d, w);
  }
};

// Q8_0: the 32 code bytes are the words.
template <>
struct ChunkReader<block_q8_0, RowLayout::Planar16> {
  static constexpr int kZero = 0;
  __device__ static void read(const uint8_t* row, int64_t k, int64_t c, ChunkWords& w) {
    const Planar<block_q8_0> b(PlanarAt{row, k / QK, c});
    load16(b.qs, reinterpret_cast<uint32_t*>(w.q));
    load16(b.qs + 16, reinterpret_cast<uint32_t*>(w.q) + 4);
    set_block_scale(b.d, w);
  }
};

// Q4_K: chunk j of a super-block is nibble j % 2 of code bytes 32*(j/2) .. +32.
template <>
struct ChunkReader<block_q4_K, RowLayout::Planar16> {
  static constexpr int kZero = 0;
  __device__ static void read(const uint8_t* row, int64_t k, int64_t c, ChunkWords& w) {
    const int j = int(c % 8);
    const Planar<block_q4_K> b(PlanarAt{row, k / QK_K, c / 8});
    uint32_t qs[8];
    load16(b.qs + 32 * (j / 2), qs);
    load16(b.qs + 32 * (j / 2) + 16, qs + 4);
    const int shift = 4 * (j % 2);
#pragma unroll
    for (int i = 0; i < 8; ++i) w.q[i] = int32_t((qs[i] >> shift) & 0x0f0f0f0fu);
    Chunk ch;
    set_k4_scales(b.d, b.dmin, b.scales, j, ch);
    set_scales(ch, w);
  }
};

// Q6_K: codes 0..63 (offset 32); chunk j = 4h + kk takes nibble kk / 2 of
// ql[64h + 32(kk % 2) ..] and bits 2kk of qh[32h ..] (unpack_chunk's order).
template <>
struct ChunkReader<block_q6_K, RowLayout::Planar16> {
  static constexpr int kZero = 32;
  __device__ static void read(const uint8_t* row, int64_t k, int64_t c, ChunkWords& w) {
    const int j = int(c % 8), h = j / 4, kk = j % 4;
    const Planar<block_q6_K> b(PlanarAt{row, k / QK_K, c / 8});
    uint32_t ql[8], qh[8];
    load16(b.ql + 64 * h + 32 * (kk % 2), ql);
    load16(b.ql + 64 * h + 32 * (kk % 2) + 16, ql + 4);
    load16(b.qh + 32 * h, qh);
    load16(b.qh + 32 * h + 16, qh + 4);
    const int lo_shift = 4 * (kk / 2), hi_shift = 2 * kk;
#pragma unroll
    for (int i = 0; i < 8; ++i)
      w.q[i] = int32_t(((ql[i] >> lo_shift) & 0x0f0f0f0fu) | (((qh[i] >> hi_shift) & 0x03030303u) << 4));
    const float d = half_to_float(b.d);
    w.s[0] = d * float(b.scales[2 * j]);
    w.s[1] = d * float(b.scales[2 * j + 1]);
    w.m[0] = w.m[1] = 0.0f;
  }
};

// True for the types whose Planar16 reader differs from Planar's.
template <typename T>
constexpr bool has_wide_reader() {
  return std::is_same<T, block_q4_0>::value || std::is_same<T, block_q8_0>::value ||
         std::is_same<T, block_q4_K>::value || std::is_same<T, block_q6_K>::value;
}

// Rows of a multiple of this many blocks from a 16-byte aligned base keep
// every plane the wide reader loads 16-byte aligned. Q4_K: any number (rows of
// 144-byte blocks, codes at 16 nb); Q4_0, Q8_0, Q6_K: 8 (rows of 18, 34, 210
// bytes a block; Q4_0's and Q8_0's codes at 2 nb).
template <typename T>
constexpr int wide_block_multiple() {
  return std::is_same<T, block_q4_K>::value ? 1 : 8;
}

// An activation chunk with its codes as words.
struct ActWords {
  float d;
  int32_t q[QK / 4];  // (8,) codes, 4 per word
  int sum[2];         // (2,) code sums per 16-value half
};

// A chunk (at) of a token's activation row: two 16-byte loads of codes, one
// 4-byte load each of the scale and the half sums.
template <int V>
__device__ __forceinline__ void read_act(const uint8_t* row, const ActChunkAt<V>& at, ActWords& a) {
  load16(at.codes_in(row), reinterpret_cast<uint32_t*>(a.q));
  load16(at.codes_in(row) + 16, reinterpret_cast<uint32_t*>(a.q) + 4);
  a.d = at.scale_in(row);
  at.sums_in(row, a.sum[0], a.sum[1]);
}

}  // namespace hi::cuda
