// y = W x for every weight type: hi_matvec_<type> (few tokens) and
// hi_matmul_<type> (many tokens, local-memory tiles).
//   w: (rows, k) in the type's row layout, quantised rows planar (planar_blocks.h:
//      the device's weight layout); x: (n, k) floats; y: (n, rows) floats.
//   act: (n, k/32) ActBlock or (n, k/256) ActBlockK (act_blocks.h), x rounded
//        to 8-bit blocks by hi_quantize_act_q32 / _q256; null for float types.
// Quantised weights multiply act with integer dot products, each 32-value chunk
// exactly as the CPU's chunk_dot (csrc/cpu/matmul_scalar.cpp), so results are
// the CPU's up to the order of the float sum over chunks. Float weights (f32,
// f16, bf16) multiply x.
#include "hi_sycl_common.h"

namespace hi {

// ---- activation blocks: one work-item per block ----------------------------
// A row of x is whole blocks (k a multiple of the block), so block b of the
// (n, k/values) output reads x + b * values.
template <typename A>
inline void quantize_act(const float* x, int64_t n, int64_t k, uint8_t* out) {
  constexpr int values = int(sizeof(A::qs));
  const int64_t b = int64_t(syclext::this_work_item::get_nd_item<1>().get_global_linear_id());
  if (b >= n * (k / values)) return;
  quantize_act_block(x + b * values, reinterpret_cast<A*>(out)[b]);
}

// Integer sums of one chunk's two halves: w, x (8,) words of 4 codes.
inline void half_sums(const int32_t* w, const int32_t* x, int& i0, int& i1) {
  i0 = dot4(w[0], x[0]) + dot4(w[1], x[1]) + dot4(w[2], x[2]) + dot4(w[3], x[3]);
  i1 = dot4(w[4], x[4]) + dot4(w[5], x[5]) + dot4(w[6], x[6]) + dot4(w[7], x[7]);
}

// ---- matvec: one work-group (16: one sub-group) per output row -------------
// Work-item l takes chunks l, l+16, ... of the row, so a sub-group reads
// neighbouring chunks; each chunk is unpacked once and dotted with up to kTok
// tokens, then one group reduction per token.
constexpr int kTok = 8;

template <typename T>
inline void matvec(const uint8_t* w, int64_t rows, int64_t k, const float* x, const uint8_t* act, int64_t n,
                   float* y) {
  const sycl::nd_item<1> it = syclext::this_work_item::get_nd_item<1>();
  const int64_t r = int64_t(it.get_group_linear_id());
  if (r >= rows) return;  // whole group leaves together: reductions stay uniform
  const int64_t lid = int64_t(it.get_local_id(0)), nl = int64_t(it.get_local_range(0));
  const uint8_t* row = w + r * row_bytes<T>(k);
  const int64_t nc = n_chunks(k);
  for (int64_t t0 = 0; t0 < n; t0 += kTok) {  // tokens in batches of kTok (n <= 8: one pass)
    const int nt = int(n - t0 < kTok ? n - t0 : kTok);
    float acc[kTok] = {};
    for (int64_t c = lid; c < nc; c += nl) {
      if constexpr (TypeInfo<T>::is_float) {
        float v[QK];  // (32,) weights of chunk c
        const int m = chunk_values<T>(row, k, c, v);
        for (int t = 0; t < nt; ++t) {
          const float* xt = x + (t0 + t) * k + c * QK;
          float s = 0.0f;
          for (int i = 0; i < QK; ++i)  // constant trip count: v stays in registers
            if (i < m) s += v[i] * xt[i];
          acc[t] += s;
        }
      } else {
        using A = ActFor<T>;
        Chunk ch;
        unpack_row_chunk<T>(row, k, c, /*planar=*/true, ch);
        int32_t wq[QK / 4];
        load_words(ch.q, wq);
        for (int t = 0; t < nt; ++t) {
          const ActChunk a = act_chunk(reinterpret_cast<const A*>(act + (t0 + t) * act_row_bytes<T>(k)), c);
          int32_t xq[QK / 4];
          load_words(a.qs, xq);
          int i0, i1;
          half_sums(wq, xq, i0, i1);
          acc[t] += chunk_result(a.d, ch.s, ch.m, i0, i1, a.sum[0], a.sum[1]);
        }
      }
    }
    for (int t = 0; t < nt; ++t) {
      const float s = group_sum(it, acc[t]);
      if (lid == 0) y[(t0 + t) * rows + r] = s;
    }
  }
}

// ---- matmul: 32 rows x 32 tokens per work-group (256) -----------------------
// Per step of kKc chunks (128 values) of k: 128 work-items unpack one weight
// chunk each into local memory, all 256 copy the tokens' slice, then every
// work-item adds its 4 outputs (1 row x 4 tokens) from local memory. Each
// weight chunk is unpacked once per 32 tokens.
constexpr int kTr = 32, kTn = 32, kKc = 4, kKv = kKc * QK, kPad = kKv + 1;  // +1: rows on distinct banks
constexpr int kKw = kKv / 4;                                                 // words of 4 codes per step
constexpr int kTokPerItem = kTn / 8;                                         // 256 items = 32 rows x 8 token groups

struct FloatTiles {
  float wt[kTr][kPad];  // (32 rows, 128 values) weights
  float xt[kTn][kKv];   // (32 tokens, 128 values) x
};
struct QuantTiles {
  int32_t wq[kTr][kKw + 1];  // (32 rows, 32 words) weight codes; +1: rows on distinct banks
  float ws[kTr][kKc][2];     // (32 rows, 4 chunks, 2 halves) scales
  float wm[kTr][kKc][2];     // offsets
  int32_t xq[kTn][kKw];      // (32 tokens, 32 words) activation codes
  float xd[kTn][kKc];        // (32 tokens, 4 chunks) activation scales
  int xs[kTn][kKc][2];       // (32 tokens, 4 chunks, 2 halves) code sums
};
template <typename T>
using TilesOf = typename std::conditional<TypeInfo<T>::is_float, FloatTiles, QuantTiles>::type;

template <typename T>
inline void matmul(const uint8_t* w, int64_t rows, int64_t k, const float* x, const uint8_t* act, int64_t n, float* y,
                   TilesOf<T>& tiles) {
  const sycl::nd_item<1> it = syclext::this_work_item::get_nd_item<1>();
  const int64_t row_tiles = (rows + kTr - 1) / kTr;
  const int64_t g = int64_t(it.get_group_linear_id());
  const int64_t r0 = (g % row_tiles) * kTr, t0 = (g / row_tiles) * kTn;
  if (t0 >= n) return;  // group-uniform
  const int lid = int(it.get_local_id(0));
  const int lr = lid % kTr, lg = lid / kTr;  // output row, token group of this work-item
  const int64_t rb = row_bytes<T>(k), nc = n_chunks(k);
  float acc[kTokPerItem] = {};
  for (int64_t c0 = 0; c0 < nc; c0 += kKc) {
    const int kc = int(nc - c0 < kKc ? nc - c0 : kKc);  // chunks in this step
    if constexpr (TypeInfo<T>::is_float) {
      if (lid < kTr * kKc) {  // weight chunk (row lid / kKc, chunk c0 + lid % kKc)
        const int wr = lid / kKc, wc = lid % kKc;
        float* dst = &tiles.wt[wr][wc * QK];
        if (r0 + wr < rows && wc < kc) {
          chunk_values<T>(w + (r0 + wr) * rb, k, c0 + wc, dst);
        } else {
          for (int i = 0; i < QK; ++i) dst[i] = 0.0f;
        }
      }
      for (int e = lid; e < kTn * kKv; e += 256) {  // x slice, adjacent items on adjacent floats
        const int tt = e / kKv, kk = e % kKv;
        const int64_t col = c0 * QK + kk;
        tiles.xt[tt][kk] = (t0 + tt < n && col < k) ? x[(t0 + tt) * k + col] : 0.0f;
      }
      sycl::group_barrier(it.get_group());
      for (int kk = 0; kk < kKv; ++kk) {
        const float wv = tiles.wt[lr][kk];
        for (int j = 0; j < kTokPerItem; ++j) acc[j] += wv * tiles.xt[lg * kTokPerItem + j][kk];
      }
    } else {
      using A = ActFor<T>;
      constexpr int W = QK / 4;
      if (lid < kTr * kKc) {  // weight chunk (row lid / kKc, chunk c0 + lid % kKc)
        const int wr = lid / kKc, wc = lid % kKc;
        Chunk ch = {};
        if (r0 + wr < rows && wc < kc)
          unpack_row_chunk<T>(w + (r0 + wr) * rb, k, c0 + wc, /*planar=*/true, ch);
        load_words(ch.q, &tiles.wq[wr][wc * W]);
        for (int h = 0; h < 2; ++h) {
          tiles.ws[wr][wc][h] = ch.s[h];
          tiles.wm[wr][wc][h] = ch.m[h];
        }
      }
      const int64_t arb = act_row_bytes<T>(k);
      for (int e = lid; e < kTn * kKw; e += 256) {  // activation codes, adjacent items on adjacent words
        const int tt = e / kKw, wi = e % kKw, cc = wi / W;
        int32_t v = 0;
        if (t0 + tt < n && cc < kc)
          v = reinterpret_cast<const int32_t*>(act_chunk(reinterpret_cast<const A*>(act + (t0 + tt) * arb), c0 + cc).qs)[wi % W];
        tiles.xq[tt][wi] = v;
      }
      if (lid < kTn * kKc) {  // activation scale and sums (token lid / kKc, chunk c0 + lid % kKc)
        const int tt = lid / kKc, cc = lid % kKc;
        ActChunk a = {0.0f, nullptr, {0, 0}};
        if (t0 + tt < n && cc < kc) a = act_chunk(reinterpret_cast<const A*>(act + (t0 + tt) * arb), c0 + cc);
        tiles.xd[tt][cc] = a.d;
        tiles.xs[tt][cc][0] = a.sum[0];
        tiles.xs[tt][cc][1] = a.sum[1];
      }
      sycl::group_barrier(it.get_group());
      for (int cc = 0; cc < kc; ++cc) {  // chunks in order: each output sums them as the CPU does
        int32_t wv[W];
        for (int i = 0; i < W; ++i) wv[i] = tiles.wq[lr][cc * W + i];
        for (int j = 0; j < kTokPerItem; ++j) {
          const int tt = lg * kTokPerItem + j;
          int i0, i1;
          half_sums(wv, &tiles.xq[tt][cc * W], i0, i1);
          acc[j] += chunk_result(tiles.xd[tt][cc], tiles.ws[lr][cc], tiles.wm[lr][cc], i0, i1, tiles.xs[tt][cc][0],
                                 tiles.xs[tt][cc][1]);
        }
      }
    }
    sycl::group_barrier(it.get_group());
  }
  for (int j = 0; j < kTokPerItem; ++j) {
    const int64_t t = t0 + lg * kTokPerItem + j, r = r0 + lr;
    if (t < n && r < rows) y[t * rows + r] = acc[j];
  }
}

}  // namespace hi

// Launch: local 64, global round_up(n * k/32, 64) (q32) or round_up(n * k/256, 64) (q256).
HI_KERNEL hi_quantize_act_q32(const float* x, int64_t n, int64_t k, uint8_t* out) {
  hi::quantize_act<hi::ActBlock>(x, n, k, out);
}
HI_KERNEL hi_quantize_act_q256(const float* x, int64_t n, int64_t k, uint8_t* out) {
  hi::quantize_act<hi::ActBlockK>(x, n, k, out);
}

// Launch: matvec local 16, global rows*16 (any local size works).
//         matmul local 256, global ceil(rows/32) * ceil(n/32) * 256.
#define HI_MATMUL_KERNELS(NAME, T)                                                                     \
  HI_KERNEL hi_matvec_##NAME(const uint8_t* w, int64_t rows, int64_t k, const float* x,               \
                             const uint8_t* act, int64_t n, float* y) {                                \
    hi::matvec<T>(w, rows, k, x, act, n, y);                                                           \
  }                                                                                                    \
  HI_KERNEL hi_matmul_##NAME(const uint8_t* w, int64_t rows, int64_t k, const float* x,               \
                             const uint8_t* act, int64_t n, float* y) {                                \
    syclexp::work_group_static<hi::TilesOf<T>> tiles;                                                  \
    hi::matmul<T>(w, rows, k, x, act, n, y, tiles);                                                    \
  }
HI_ALL_TYPES(HI_MATMUL_KERNELS)
