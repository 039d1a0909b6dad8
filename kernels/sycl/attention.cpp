// Flash attention over the KV cache (csrc/cpu/flash_attn.cpp semantics).
// One work-group (64) per (query token, query head); global n_q*n_head*64.
// Cells are visited in tiles of 64 in slice order with an online softmax:
//   scores: each sub-group takes cells of the tile, its lanes stride over d_k
//           (adjacent lanes read adjacent K elements), then a sub-group sum;
//   softmax: work-item l owns cell l of the tile (group max / sum);
//   values: work-item l owns output dims l, l+64, ... and reads V rows
//           element-wise (adjacent lanes, adjacent elements).
#include "hi_sycl_common.h"

namespace hi {

constexpr int kTile = 64;     // cells per tile == work-group size
constexpr int kMaxD = 256;    // largest d_k / d_v
constexpr int kDPer = kMaxD / kTile;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct AttnLocal {
  float q[kMaxD];   // (d_k,) this head's query
  float p[kTile];   // (tile,) scores, then softmax weights
};

// sc[j] = scale * q . K[cell j] (softcapped) for the tile's n cells.
template <typename KT>
inline void score_tile(const sycl::nd_item<1>& it, const KT* kt, const uint8_t* k, int64_t k_stride, int64_t dk,
                       const int32_t* cells, int n, float scale, float softcap, AttnLocal& L) {
  const sycl::sub_group sg = it.get_sub_group();
  const int lane = int(sg.get_local_linear_id()), ns = int(sg.get_local_linear_range());
  const int sgi = int(sg.get_group_linear_id()), nsg = int(sg.get_group_linear_range());
  for (int j = sgi; j < n; j += nsg) {
    const uint8_t* row = k + int64_t(cells[j]) * k_stride;
    float s = 0.0f;
    for (int64_t d = lane; d < dk; d += ns) s += L.q[d] * elem_value(kt, row, d);
    s = sycl::reduce_over_group(sg, s, sycl::plus<float>()) * scale;
    if (softcap > 0.0f) s = softcap * sycl::tanh(s / softcap);
    if (lane == 0) L.p[j] = s;
  }
}

// acc[i] += sum_j p[j] * V[cell j][lid + 64 i] for the tile's n cells.
template <typename VT>
inline void add_values(const VT* vt, const uint8_t* v, int64_t v_stride, int64_t dv, const int32_t* cells, int n,
                       int lid, const AttnLocal& L, float (&acc)[kDPer]) {
  for (int j = 0; j < n; ++j) {
    const uint8_t* row = v + int64_t(cells[j]) * v_stride;
    const float p = L.p[j];
    for (int i = 0; i < kDPer; ++i) {
      const int64_t d = lid + int64_t(kTile) * i;
      if (d < dv) acc[i] += p * elem_value(vt, row, d);
    }
  }
}

inline void attention(const float* q, int64_t n_q, int64_t n_head, const uint8_t* k, int32_t k_type,
                      int64_t n_head_kv, int64_t dk, const uint8_t* v, int32_t v_type, int64_t dv,
                      const int32_t* cells, const int64_t* begin, const int64_t* end, float scale, float softcap,
                      float* out, AttnLocal& L) {
  const sycl::nd_item<1> it = syclext::this_work_item::get_nd_item<1>();
  const int64_t th = int64_t(it.get_group_linear_id());
  if (th >= n_q * n_head) return;  // group-uniform
  const int64_t t = th / n_head, h = th % n_head, g = h / (n_head / n_head_kv);
  const int lid = int(it.get_local_id(0));
  const int64_t k_stride = n_head_kv * cache_row_bytes(k_type, dk);  // bytes from one cell to the next
  const int64_t v_stride = n_head_kv * cache_row_bytes(v_type, dv);
  const uint8_t* kg = k + g * cache_row_bytes(k_type, dk);            // head g of cell 0
  const uint8_t* vg = v + g * cache_row_bytes(v_type, dv);
  for (int64_t d = lid; d < dk; d += kTile) L.q[d] = q[th * dk + d];
  float acc[kDPer] = {};  // (dv / 64,) running sum of p * v for dims lid + 64 i
  float run_max = kNegInf, run_sum = 0.0f;
  const int64_t b = begin[t], e = end[t];
  for (int64_t c0 = b; c0 < e; c0 += kTile) {
    const int n = int(e - c0 < kTile ? e - c0 : kTile);
    sycl::group_barrier(it.get_group());  // q loaded / previous tile's p consumed
    with_cache_type(k_type, [&](auto kt) { score_tile(it, kt, kg, k_stride, dk, cells + c0, n, scale, softcap, L); });
    sycl::group_barrier(it.get_group());
    const float s = lid < n ? L.p[lid] : kNegInf;
    const float new_max = sycl::fmax(run_max, group_max(it, s));
    const float p = lid < n ? sycl::exp(s - new_max) : 0.0f;
    const float corr = sycl::exp(run_max - new_max);  // 0 on the first tile
    run_sum = run_sum * corr + group_sum(it, p);      // the reduction also orders the reads of L.p above
    run_max = new_max;
    L.p[lid] = p;
    sycl::group_barrier(it.get_group());
    for (int i = 0; i < kDPer; ++i) acc[i] *= corr;
    with_cache_type(v_type, [&](auto vt) { add_values(vt, vg, v_stride, dv, cells + c0, n, lid, L, acc); });
  }
  const float inv = run_sum > 0.0f ? 1.0f / run_sum : 0.0f;
  for (int i = 0; i < kDPer; ++i) {
    const int64_t d = lid + int64_t(kTile) * i;
    if (d < dv) out[th * dv + d] = acc[i] * inv;
  }
}

}  // namespace hi

HI_KERNEL hi_attention(const float* q, int64_t n_q, int64_t n_head, const uint8_t* k, int32_t k_type,
                       int64_t n_head_kv, int64_t dk, const uint8_t* v, int32_t v_type, int64_t dv,
                       const int32_t* cells, const int64_t* begin, const int64_t* end, float scale, float softcap,
                       float* out) {
  syclexp::work_group_static<hi::AttnLocal> L;
  hi::attention(q, n_q, n_head, k, k_type, n_head_kv, dk, v, v_type, dv, cells, begin, end, scale, softcap, out, L);
}
