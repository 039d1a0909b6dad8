// Flash attention over the KV cache for decode and prefill
// (csrc/cpu/flash_attn.cpp semantics; kernels/sycl/attention.cpp is the
// one-head-per-work-group version of the same arithmetic).
//
// A block (256 threads, 8 warps) takes up to kRows = 8 query rows that read
// the same KV head g: `hb` query heads of g's group (GQA: K/V rows are read
// once for all of them) times `nt` consecutive query tokens. Tokens of a block
// whose visible slices start at the same index of cells.cells (every token of
// a prompt without a sliding window) see prefixes of one cell list and share
// one pass over it; tokens starting elsewhere get a pass of their own. Per
// pass, cells go in tiles of kTile = 64 counted from the slice's start, each
// in three phases between block barriers:
//   scores:  warp w scores cells 8w .. 8w+7 of the tile: 8 lanes per cell,
//            two cells per lane (a lane's q loads feed both), lanes stride
//            over d in runs of 4 elements, a 3-step xor-shuffle sum;
//            p[cell][row] = scale * q . K (softcapped) in shared memory;
//   softmax: warp w owns row w: the tile's max, exp, running max and sum
//            (online softmax, float, expf), the correction for the old sums;
//   values:  thread = (cell group, 4 output dims): its group's cells of the
//            tile, V rows read 4 elements per thread (coalesced), for every
//            row acc += p * v; groups are summed in a fixed order at the end.
// Every row's arithmetic is the same whatever else the block holds (other
// heads, other tokens, passes), so a token's result depends only on its q and
// its own cells: the launch may pick hb and nt freely (more blocks for
// decode, K/V sharing for prefill) without changing a bit of the output.
//
// Split-KV: a step of up to kAttnSplitTokens queries over a cache of more than
// kSplitCells cells gives each query's cells to `splits` blocks (whole tiles
// each), which write their sums, softmax sum and max to `parts`; merge_kernel
// combines them. The split count comes from the cache's size, so such a
// token's result depends on its q, its cells and the cache's size, never on
// the GPU; it differs from the unsplit sum by float rounding (1e-7 measured).
//
// Instantiations: attention_kernel<K, V> for K, V in {f32, f16, q8_0, q4_0}:
// 16 kernels, head sizes (<= 256) and everything else at run time.
#include "fattn.cuh"

#include <cuda_fp16.h>

#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda_common.cuh"

namespace hi::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / kWarp;  // 8
constexpr int kTile = 64;                 // cells per tile
constexpr int kRows = 8;                  // query rows (token, head) per block
constexpr int kMaxD = 256;                // largest d_k / d_v
constexpr int kCellLanes = 8;             // lanes per cell when scoring
constexpr int kCellsPerLane = 2;
constexpr int64_t kSplitCells = 512;  // a decode step splits caches of more cells, one split per this many
constexpr int kMergeThreads = 128;
static_assert(kWarps == kRows, "softmax: warp w owns row w");
static_assert(kWarps * (kWarp / kCellLanes) * kCellsPerLane == kTile, "scores: warp w scores cells 8w .. 8w+7");

// ---- reading 4 consecutive cache elements d .. d+3 (d % 4 == 0) ----------
// Values equal elem_value() (row_values.h) for every non-NaN input: the same
// s * q products; half -> float by the hardware conversion (exact; only a NaN
// payload may differ, which attention does not care about). `vec`: the row is
// aligned for the wide loads (decided on the host); otherwise narrow loads
// guarded by n (float rows of a length that is not a multiple of 4).

__device__ __forceinline__ float h2f(uint16_t u) { return __half2float(__ushort_as_half(u)); }

__device__ __forceinline__ uint16_t load_u16(const uint8_t* p, bool aligned) {
  return aligned ? *reinterpret_cast<const uint16_t*>(p) : uint16_t(p[0] | (p[1] << 8));
}

__device__ __forceinline__ float4 load4(const f32_t*, const uint8_t* row, int d, int n, bool vec) {
  const float* p = reinterpret_cast<const float*>(row) + d;
  if (vec) return *reinterpret_cast<const float4*>(p);
  return make_float4(d < n ? p[0] : 0.0f, d + 1 < n ? p[1] : 0.0f, d + 2 < n ? p[2] : 0.0f, d + 3 < n ? p[3] : 0.0f);
}

__device__ __forceinline__ float4 load4(const f16_t*, const uint8_t* row, int d, int n, bool vec) {
  const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + d;
  if (vec) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    return make_float4(h2f(uint16_t(u.x & 0xffffu)), h2f(uint16_t(u.x >> 16)), h2f(uint16_t(u.y & 0xffffu)),
                       h2f(uint16_t(u.y >> 16)));
  }
  return make_float4(d < n ? h2f(p[0]) : 0.0f, d + 1 < n ? h2f(p[1]) : 0.0f, d + 2 < n ? h2f(p[2]) : 0.0f,
                     d + 3 < n ? h2f(p[3]) : 0.0f);
}

// q8_0 / q4_0: n is a multiple of 32 (the caller validates head sizes), so
// the 4 elements lie in one block. vec: the data is 2-byte aligned (blocks
// are 34 / 18 bytes, so every block and code pair then is).
__device__ __forceinline__ float4 load4(const block_q8_0*, const uint8_t* row, int d, int, bool vec) {
  const uint8_t* b = row + (d / QK) * int(sizeof(block_q8_0));
  const int o = d % QK;
  const float s = h2f(load_u16(b, vec));
  const uint16_t lo = load_u16(b + 2 + o, vec), hi = load_u16(b + 4 + o, vec);
  return make_float4(s * float(int8_t(lo & 0xff)), s * float(int8_t(lo >> 8)), s * float(int8_t(hi & 0xff)),
                     s * float(int8_t(hi >> 8)));
}

__device__ __forceinline__ float4 load4(const block_q4_0*, const uint8_t* row, int d, int, bool vec) {
  const uint8_t* b = row + (d / QK) * int(sizeof(block_q4_0));
  const int o = d % QK;
  const int shift = o < QK / 2 ? 0 : 4;  // elements 0..15: low nibbles of qs[0..15]; 16..31: high nibbles
  const uint8_t* qs = b + 2 + (o % (QK / 2));
  const float s = h2f(load_u16(b, vec));
  const uint32_t w = uint32_t(load_u16(qs, vec)) | (uint32_t(load_u16(qs + 2, vec)) << 16);
  return make_float4(s * float(int((w >> shift) & 15u) - 8), s * float(int((w >> (8 + shift)) & 15u) - 8),
                     s * float(int((w >> (16 + shift)) & 15u) - 8), s * float(int((w >> (24 + shift)) & 15u) - 8));
}

struct AttnArgs {
  const float* q;             // (n_q, n_head, dk)
  float* out;                 // (n_q, n_head, dv)
  const uint8_t* k;           // K head 0 of cell 0
  const uint8_t* v;
  int64_t k_stride, v_stride;          // bytes from one cell to the next
  int64_t k_head_bytes, v_head_bytes;  // bytes of one head vector
  const int32_t* cells;
  const int64_t* begin;
  const int64_t* end;
  float* parts;  // (n_q, n_head, splits, dv + 2) partial results when splits > 1
  int64_t n_q, n_head, n_head_kv, n_rep;
  int64_t n_tblk, n_hblk, total;  // token blocks, head blocks per KV head, blocks in all (x splits)
  int splits;                     // blocks sharing each query's cells (> 1: nt is 1)
  int dk, dv;
  int hb, nt;  // query heads and tokens per block (hb * nt <= kRows; hb divides n_rep)
  float scale, softcap;
  bool k_vec, v_vec;
};

#ifdef HI_CUDA_EMULATOR  // tests/cuda_emulator checks that a launch's pointers are device memory
inline std::vector<const void*> hi_emu_pointers(const AttnArgs& a) {
  return {a.q, a.out, a.k, a.v, a.cells, a.begin, a.end, a.parts};
}
#endif

__device__ __forceinline__ float finish_score(float s, float scale, float softcap) {
  s *= scale;
  if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
  return s;
}

template <typename KT, typename VT>
__global__ void __launch_bounds__(kThreads, 2) attention_kernel(const AttnArgs a) {
  // q: the rows' queries (zero past dk and for rows not in the pass); red:
  // the value groups' partial sums at the end of a pass (q is dead by then).
  __shared__ __align__(16) union {
    float q[kRows][kMaxD];
    float red[kThreads * 4 * kRows];  // (groups, kRows, 4 * dims per group), at most kThreads * 4 per row
  } big;
  __shared__ __align__(16) float p_t[kTile][kRows];  // scores, then softmax weights, per (cell, row)
  __shared__ __align__(16) float corr_s[kRows];      // this tile's correction of each row's old sums
  __shared__ int tn_s[kRows];                        // this tile's cells seen by each row
  __shared__ float l_s[kRows], m_s[kRows];           // each row's softmax sum and max
  __shared__ int32_t cell_s[kTile];                  // the tile's cells
  __shared__ int64_t b_s[kRows], e_s[kRows];         // the block's tokens' slices

  const KT* kt = nullptr;
  const VT* vt = nullptr;
  const int tid = int(threadIdx.x), warp = tid / kWarp, lane = tid % kWarp;
  const int sub = lane % kCellLanes, cg = lane / kCellLanes;  // scores: lane in cell, cell in warp
  const int dk = a.dk, dv = a.dv, hb = a.hb;
  const int tpc = (dv + 3) / 4, cpp = kThreads / tpc;  // values: threads per cell, cells at once
  const int vg_i = tid / tpc, dt = tid % tpc;          // values: this thread's cell group and dims 4dt..4dt+3
  const int dpad = 4 * tpc;
  const int dq = (dk + 3) & ~3;  // q filled (zeros past dk) up to here

  for (int64_t blk = blockIdx.x; blk < a.total; blk += gridDim.x) {
    const int split = int(blk % a.splits);
    const int64_t hbi = blk / a.splits % a.n_hblk, rest = blk / a.splits / a.n_hblk;
    const int64_t g = rest % a.n_head_kv;
    const int64_t tok0 = (a.n_tblk - 1 - rest / a.n_head_kv) * a.nt;  // latest tokens (longest slices) first
    const int nt = int(a.n_q - tok0 < a.nt ? a.n_q - tok0 : a.nt);
    const int nrows = nt * hb;                      // row r: token tok0 + r / hb, head h0 + r % hb
    const int64_t h0 = g * a.n_rep + hbi * hb;
    const uint8_t* kg = a.k + g * a.k_head_bytes;
    const uint8_t* vg = a.v + g * a.v_head_bytes;

    __syncthreads();  // the previous block's passes are done with the shared arrays
    if (tid < nt) {
      b_s[tid] = a.begin[tok0 + tid];
      e_s[tid] = a.end[tok0 + tid];
    }
    __syncthreads();

    // Passes: all not yet done tokens whose slice starts where the first one's does.
    const unsigned all = (1u << nt) - 1u;
    unsigned done = 0;
    while (done != all) {  // block-uniform: every thread reads the same b_s / e_s
      const int64_t B = b_s[__ffs(~done) - 1];
      unsigned pass = 0;
      int64_t n_max = 0, n_min = LLONG_MAX;
      for (int i = 0; i < nt; ++i) {
        if (((done >> i) & 1u) || b_s[i] != B) continue;
        pass |= 1u << i;
        const int64_t n = e_s[i] > B ? e_s[i] - B : 0;
        n_max = n > n_max ? n : n_max;
        n_min = n < n_min ? n : n_min;
      }
      done |= pass;
      const bool all_rows = pass == all;
      // This block's share of the pass's cells: all of them, or split `split`
      // of a split step's (one token: every row sees n_max cells), in whole
      // tiles, so an empty share is a split past the cells' end.
      int64_t c_begin = 0, c_end = n_max;
      if (a.splits > 1) {
        const int64_t share = ((n_max + a.splits - 1) / a.splits + kTile - 1) / kTile * kTile;
        c_begin = split * share < n_max ? split * share : n_max;
        c_end = c_begin + share < n_max ? c_begin + share : n_max;
      }
      // Softmax state of this warp's row (warp-uniform).
      const bool row_on = warp < nrows && ((pass >> (warp / hb)) & 1u);
      const int64_t row_n = row_on ? (e_s[warp / hb] > B ? e_s[warp / hb] - B : 0) : 0;
      float run_max = -INFINITY, run_sum = 0.0f;
      float acc[kRows][4];
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[r][e] = 0.0f;

      __syncthreads();  // the previous pass's combine has read big.red
      for (int idx = tid; idx < kRows * dq; idx += kThreads) {
        const int r = idx / dq, d = idx % dq;
        float x = 0.0f;
        if (r < nrows && ((pass >> (r / hb)) & 1u) && d < dk)
          x = a.q[((tok0 + r / hb) * a.n_head + h0 + r % hb) * int64_t(dk) + d];
        big.q[r][d] = x;
      }

      for (int64_t c0 = c_begin; c0 < c_end; c0 += kTile) {
        const int n_tile = int(c_end - c0 < kTile ? c_end - c0 : kTile);
        const int32_t* tile_cells = a.cells + B + c0;
        // Every row sees all n_tile cells: no per-row guards in the value loop.
        const bool full = all_rows && n_min - c0 >= n_tile;
        __syncthreads();  // q stored / the previous tile's values phase is done with p_t, cell_s, corr_s

        // ---- scores: cells ja and jb of this lane's 8-lane group ----
        {
          const int ja = warp * (kTile / kWarps) + cg, jb = ja + kWarp / kCellLanes;
          // Past the tile's end: score cell 0 again (valid memory), never stored.
          const int32_t ca = tile_cells[ja < n_tile ? ja : 0], cb = tile_cells[jb < n_tile ? jb : 0];
          const uint8_t* rowa = kg + int64_t(ca) * a.k_stride;
          const uint8_t* rowb = kg + int64_t(cb) * a.k_stride;
          float sa[kRows], sb[kRows];
#pragma unroll
          for (int r = 0; r < kRows; ++r) sa[r] = sb[r] = 0.0f;
#pragma unroll 2
          for (int d = 4 * sub; d < dk; d += 4 * kCellLanes) {
            const float4 ka = load4(kt, rowa, d, dk, a.k_vec);
            const float4 kb = load4(kt, rowb, d, dk, a.k_vec);
#pragma unroll
            for (int r = 0; r < kRows; ++r) {
              if (r < nrows) {
                const float4 qv = *reinterpret_cast<const float4*>(&big.q[r][d]);
                sa[r] = fmaf(qv.x, ka.x, sa[r]);
                sa[r] = fmaf(qv.y, ka.y, sa[r]);
                sa[r] = fmaf(qv.z, ka.z, sa[r]);
                sa[r] = fmaf(qv.w, ka.w, sa[r]);
                sb[r] = fmaf(qv.x, kb.x, sb[r]);
                sb[r] = fmaf(qv.y, kb.y, sb[r]);
                sb[r] = fmaf(qv.z, kb.z, sb[r]);
                sb[r] = fmaf(qv.w, kb.w, sb[r]);
              }
            }
          }
#pragma unroll
          for (int r = 0; r < kRows; ++r) {
            if (r < nrows) {  // block-uniform: every lane shuffles
#pragma unroll
              for (int o = kCellLanes / 2; o > 0; o /= 2) {
                sa[r] += __shfl_xor_sync(0xffffffffu, sa[r], o);
                sb[r] += __shfl_xor_sync(0xffffffffu, sb[r], o);
              }
            }
          }
          if (sub < 2) {  // lane 0 of the group stores cell ja, lane 1 cell jb
            const int j = sub == 0 ? ja : jb;
            if (j < n_tile) {
              float o[kRows];
#pragma unroll
              for (int r = 0; r < kRows; ++r) o[r] = finish_score(sub == 0 ? sa[r] : sb[r], a.scale, a.softcap);
              *reinterpret_cast<float4*>(&p_t[j][0]) = make_float4(o[0], o[1], o[2], o[3]);
              *reinterpret_cast<float4*>(&p_t[j][4]) = make_float4(o[4], o[5], o[6], o[7]);
              cell_s[j] = sub == 0 ? ca : cb;
            }
          }
        }
        __syncthreads();

        // ---- softmax: warp `warp` folds row `warp` ----
        {
          const int64_t left = (row_n < c_end ? row_n : c_end) - c0;
          const int tn = left <= 0 ? 0 : int(left < kTile ? left : kTile);
          float corr = 1.0f;
          if (tn > 0) {  // warp-uniform
            const float s0 = lane < tn ? p_t[lane][warp] : -INFINITY;
            const float s1 = lane + kWarp < tn ? p_t[lane + kWarp][warp] : -INFINITY;
            const float new_max = fmaxf(run_max, warp_max(fmaxf(s0, s1)));
            const float p0 = lane < tn ? expf(s0 - new_max) : 0.0f;
            const float p1 = lane + kWarp < tn ? expf(s1 - new_max) : 0.0f;
            corr = expf(run_max - new_max);  // 0 on the row's first tile
            run_sum = run_sum * corr + warp_sum(p0 + p1);
            run_max = new_max;
            if (lane < tn) p_t[lane][warp] = p0;
            if (lane + kWarp < tn) p_t[lane + kWarp][warp] = p1;
          }
          if (lane == 0) {
            corr_s[warp] = corr;
            tn_s[warp] = tn;
          }
        }
        __syncthreads();

        // ---- values: acc[r][0..3] += p[j][r] * V[cell j][4dt .. 4dt+3] ----
        if (vg_i < cpp) {
          const float4 c_lo = *reinterpret_cast<const float4*>(&corr_s[0]);
          const float4 c_hi = *reinterpret_cast<const float4*>(&corr_s[4]);
          const float corr[kRows] = {c_lo.x, c_lo.y, c_lo.z, c_lo.w, c_hi.x, c_hi.y, c_hi.z, c_hi.w};
#pragma unroll
          for (int r = 0; r < kRows; ++r)
            if (r < nrows)
#pragma unroll
              for (int e = 0; e < 4; ++e) acc[r][e] *= corr[r];
          const int d = 4 * dt;
          // A full tile (every row sees every cell) has no per-row limit.
          int tn[kRows];
#pragma unroll
          for (int r = 0; r < kRows; ++r) tn[r] = full ? n_tile : tn_s[r];
          for (int j = vg_i; j < n_tile; j += cpp) {
            const float4 x = load4(vt, vg + int64_t(cell_s[j]) * a.v_stride, d, dv, a.v_vec);
            const float4 p_lo = *reinterpret_cast<const float4*>(&p_t[j][0]);
            const float4 p_hi = *reinterpret_cast<const float4*>(&p_t[j][4]);
            const float p[kRows] = {p_lo.x, p_lo.y, p_lo.z, p_lo.w, p_hi.x, p_hi.y, p_hi.z, p_hi.w};
#pragma unroll
            for (int r = 0; r < kRows; ++r) {
              if (r < nrows && j < tn[r]) {
                acc[r][0] = fmaf(p[r], x.x, acc[r][0]);
                acc[r][1] = fmaf(p[r], x.y, acc[r][1]);
                acc[r][2] = fmaf(p[r], x.z, acc[r][2]);
                acc[r][3] = fmaf(p[r], x.w, acc[r][3]);
              }
            }
          }
        }
      }

      // ---- combine the value groups, normalise, store the pass's rows ----
      if (lane == 0) {
        l_s[warp] = run_sum;
        m_s[warp] = run_max;
      }
      __syncthreads();  // every thread is past its last use of big.q
      if (vg_i < cpp) {
#pragma unroll
        for (int r = 0; r < kRows; ++r)
          if (r < nrows)
            *reinterpret_cast<float4*>(&big.red[(vg_i * kRows + r) * dpad + 4 * dt]) =
                make_float4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
      }
      __syncthreads();
      for (int idx = tid; idx < nrows * dv; idx += kThreads) {
        const int r = idx / dv, d = idx % dv, ti = r / hb;
        if (!((pass >> ti) & 1u)) continue;
        float s = 0.0f;
        for (int k = 0; k < cpp; ++k) s += big.red[(k * kRows + r) * dpad + d];
        const float l = l_s[r];
        const int64_t row = (tok0 + ti) * a.n_head + h0 + r % hb;  // of out: (n_q, n_head)
        if (a.splits > 1) {  // the split's sums, merged by merge_kernel
          float* part = a.parts + (row * a.splits + split) * (dv + 2);
          part[d] = s;
          if (d == 0) {
            part[dv] = l;
            part[dv + 1] = m_s[r];
          }
        } else {
          // As the CPU: acc / sum; a row that saw no cell keeps its zeros.
          a.out[row * dv + d] = l > 0.0f ? s / l : s;
        }
      }
    }
  }
}

// out row r (n_q * n_head rows of dv) from its splits' partial results
// (parts: (rows, splits, dv + 2): sums, softmax sum, softmax max), in split
// order: out = sum_s e^(m_s - m) acc_s / sum_s e^(m_s - m) l_s with m the
// largest max of the splits that saw cells (softmax sum not 0); a row no split
// saw a cell of keeps zeros, as the CPU's. A NaN sum (a NaN key, an infinite
// score) is not 0, so it reaches the output as the unsplit kernel's does.
__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const float* parts, int64_t rows, int splits, int dv,
                                                              float* out) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // block-uniform
    const float* row = parts + r * splits * int64_t(dv + 2);
    float m = -INFINITY, l = 0.0f;
    for (int s = 0; s < splits; ++s)
      if (row[s * (dv + 2) + dv] != 0.0f) m = fmaxf(m, row[s * (dv + 2) + dv + 1]);
    for (int s = 0; s < splits; ++s)
      if (row[s * (dv + 2) + dv] != 0.0f) l += row[s * (dv + 2) + dv] * expf(row[s * (dv + 2) + dv + 1] - m);
    for (int d = threadIdx.x; d < dv; d += kMergeThreads) {
      float acc = 0.0f;
      for (int s = 0; s < splits; ++s)
        if (row[s * (dv + 2) + dv] != 0.0f) acc += row[s * (dv + 2) + d] * expf(row[s * (dv + 2) + dv + 1] - m);
      out[r * dv + d] = l != 0.0f ? acc / l : 0.0f;
    }
  }
}

// Whether a cache tensor's rows suit load4's wide loads.
bool wide_loads_ok(QType type, const uint8_t* data, int64_t d) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(data);
  switch (type) {
    case QType::F32: return d % 4 == 0 && p % 16 == 0;
    case QType::F16: return d % 4 == 0 && p % 8 == 0;
    default: return p % 2 == 0;  // q8_0, q4_0
  }
}

template <typename KT, typename VT>
void launch_typed(const AttnArgs& a, unsigned grid, cudaStream_t stream) {
  attention_kernel<KT, VT><<<grid, kThreads, 0, stream>>>(a);
}

template <typename KT>
void launch_v(QType v_type, const AttnArgs& a, unsigned grid, cudaStream_t stream) {
  switch (v_type) {
    case QType::F32: return launch_typed<KT, f32_t>(a, grid, stream);
    case QType::F16: return launch_typed<KT, f16_t>(a, grid, stream);
    case QType::Q8_0: return launch_typed<KT, block_q8_0>(a, grid, stream);
    case QType::Q4_0: return launch_typed<KT, block_q4_0>(a, grid, stream);
    default: break;
  }
  throw std::invalid_argument(std::string("attention: cache type ") + qtype_info(v_type).name +
                              " is not one of f32, f16, q8_0, q4_0");
}

int multiprocessors() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms <= 0) {
    (void)cudaGetLastError();  // only our own failed query: fall back to a mid-size GPU
    sms = 80;
  }
  return sms;
}

}  // namespace

void attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v, const AttnCells& cells,
               float scale, float softcap, float* out, float* parts, cudaStream_t stream) {
  if (n_q <= 0 || n_head <= 0 || v.head_dim <= 0) return;  // nothing to write
  if (k.n_head_kv <= 0 || n_head % k.n_head_kv != 0 || v.n_head_kv != k.n_head_kv)
    throw std::invalid_argument("attention: n_head must be a multiple of n_head_kv, and K and V must match");
  if (k.head_dim < 0 || k.head_dim > kMaxD || v.head_dim > kMaxD)
    throw std::invalid_argument("attention: head sizes up to " + std::to_string(kMaxD) + " are supported");

  AttnArgs a{};
  a.q = q;
  a.out = out;
  a.k = k.data;
  a.v = v.data;
  a.k_head_bytes = cache_row_bytes(int32_t(k.type), k.head_dim);
  a.v_head_bytes = cache_row_bytes(int32_t(v.type), v.head_dim);
  a.k_stride = k.n_head_kv * a.k_head_bytes;
  a.v_stride = v.n_head_kv * a.v_head_bytes;
  a.cells = cells.cells;
  a.begin = cells.begin;
  a.end = cells.end;
  a.n_q = n_q;
  a.n_head = n_head;
  a.n_head_kv = k.n_head_kv;
  a.n_rep = n_head / k.n_head_kv;
  a.dk = int(k.head_dim);
  a.dv = int(v.head_dim);
  a.scale = scale;
  a.softcap = softcap;
  a.k_vec = wide_loads_ok(k.type, k.data, k.head_dim);
  a.v_vec = wide_loads_ok(v.type, v.data, v.head_dim);
  // Splits: from the cache's size and the step's, never the GPU's, so the
  // output is the same on every GPU (only the plan's heads and tokens a block
  // vary with the SM count, and they change no bit). A step's visible cells
  // are known on the device only: a recorded step replays for every length.
  const int64_t by_size = (k.n_cells + kSplitCells - 1) / kSplitCells;  // <= 1 for caches of up to kSplitCells
  a.parts = parts;
  a.splits = parts && n_q <= kAttnSplitTokens && by_size > 1 ? int(by_size < kAttnSplits ? by_size : kAttnSplits) : 1;

  // Rows per block: hb heads (a divisor of n_rep) x nt tokens <= kRows. The
  // output does not depend on the choice (see the top of the file).
  const int64_t target = 2 * int64_t(multiprocessors());
  const auto blocks = [&](int64_t nt, int64_t hb) {
    return (n_q + nt - 1) / nt * a.n_head_kv * (a.n_rep / hb) * a.splits;
  };
  int hb = 1, nt = 1;
  for (int c = kRows; c >= 1; --c)
    if (a.n_rep % c == 0) {
      hb = c;
      break;
    }
  if (a.splits > 1 || blocks(1, hb) < target) {
    // Few blocks (decode; a split step is one token a block): spread a
    // group's heads over more blocks; each reads the group's K/V again,
    // mostly from L2.
    for (int c = hb - 1; c >= 1 && blocks(1, hb) < target; --c)
      if (a.n_rep % c == 0) hb = c;
  } else {
    // Many (prefill): consecutive tokens share each K/V tile while enough
    // blocks remain.
    for (int c = kRows / hb; c > 1; --c)
      if (blocks(c, hb) >= target) {
        nt = c;
        break;
      }
  }
  a.hb = hb;
  a.nt = nt;
  a.n_tblk = (n_q + nt - 1) / nt;
  a.n_hblk = a.n_rep / hb;
  a.total = a.n_tblk * a.n_head_kv * a.n_hblk * a.splits;
  const unsigned grid = unsigned(a.total < INT_MAX ? a.total : INT_MAX);  // the kernel strides over the rest

  switch (k.type) {
    case QType::F32: launch_v<f32_t>(v.type, a, grid, stream); break;
    case QType::F16: launch_v<f16_t>(v.type, a, grid, stream); break;
    case QType::Q8_0: launch_v<block_q8_0>(v.type, a, grid, stream); break;
    case QType::Q4_0: launch_v<block_q4_0>(v.type, a, grid, stream); break;
    default:
      throw std::invalid_argument(std::string("attention: cache type ") + qtype_info(k.type).name +
                                  " is not one of f32, f16, q8_0, q4_0");
  }
  check_launch("attention");
  if (a.splits > 1) {
    const int64_t rows = n_q * n_head;
    merge_kernel<<<unsigned(rows < INT_MAX ? rows : INT_MAX), kMergeThreads, 0, stream>>>(parts, rows, a.splits, a.dv,
                                                                                           out);
    check_launch("attention merge");
  }
}

}  // namespace hi::cuda
