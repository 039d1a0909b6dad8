// Rotary position embedding, in place (csrc/cpu/ops.cpp semantics; the angle
// as kernels/sycl/elementwise.cpp forms it). One thread per (token, head,
// pair); adjacent threads take adjacent pairs, so loads and stores coalesce.
// Two tensors at the same positions (q and k) go in one launch, a token's
// heads of the first then of the second.
//
// inv_freq: the CPU's table, float(pow(double base, -2i / n_rot)), computed
// on the host with the same libm (bit-identical to the CPU's) and passed by
// value; a float powf (2 ulp in CUDA) would not do: at the positions of
// tests/test_ops.py one ulp of inv_freq already costs ~4e-5 relative error.
// The CPU forms the angle in double; here pos * freq_scale * inv_freq is kept
// as an exact float pair (hi + lo, via fma) and sin/cos(hi + lo) are corrected
// to first order in lo, so large positions lose no more than the float
// inv_freq itself. sincosf is the accurate version (this file must not be
// built with --use_fast_math).
#include "rope.cuh"

#include <climits>
#include <cmath>
#include <cstring>

#include "cuda_common.cuh"

namespace hi::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxPairs = 512;  // tables up to n_rot = 1024 travel as a kernel argument

struct InvFreq {
  float v[kMaxPairs];  // (n_rot / 2,) used
};

#ifdef HI_CUDA_EMULATOR  // tests/cuda_emulator checks that a launch's pointers are device memory
inline std::vector<const void*> hi_emu_pointers(const InvFreq&) { return {}; }
#endif

// Heads [0, n_heads) of a token are x's, [n_heads, n_heads + n_heads2) x2's.
__global__ void __launch_bounds__(kThreads) rope_kernel(float* x, int64_t n_heads, float* x2, int64_t n_heads2,
                                                        const int32_t* pos, int64_t n_tokens, int64_t head_dim,
                                                        int64_t n_rot, float base, float freq_scale, bool neox,
                                                        const InvFreq table) {
  __shared__ float inv_s[kMaxPairs];
  const int64_t half = n_rot / 2, heads = n_heads + n_heads2, total = n_tokens * heads * half;
  const bool tabled = half <= kMaxPairs;
  if (tabled)
    for (int64_t p = threadIdx.x; p < half; p += kThreads) inv_s[p] = table.v[p];
  __syncthreads();
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < total; i += int64_t(gridDim.x) * kThreads) {
    const int64_t p = i % half, th = i / half, t = th / heads, h = th % heads;
    const float inv_freq =
        tabled ? inv_s[p] : float(pow(double(base), -2.0 * double(p) / double(n_rot)));  // as the CPU
    const float pf = float(pos[t]);
    const float a_hi = __fmul_rn(pf, freq_scale), a_lo = fmaf(pf, freq_scale, -a_hi);  // pos * freq_scale exactly
    const float hi = __fmul_rn(a_hi, inv_freq);
    const float lo = fmaf(a_hi, inv_freq, -hi) + a_lo * inv_freq;  // angle = hi + lo
    float s0, c0;
    sincosf(hi, &s0, &c0);
    const float sn = s0 + lo * c0, cs = c0 - lo * s0;
    float* v = h < n_heads ? x + (t * n_heads + h) * head_dim : x2 + (t * n_heads2 + h - n_heads) * head_dim;
    const int64_t a = neox ? p : 2 * p, b = neox ? p + half : 2 * p + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * cs - x1 * sn;
    v[b] = x0 * sn + x1 * cs;
  }
}

// The CPU's inv_freq table for (base, n_rot), cached per host thread: decode
// calls rope with the same few (base, n_rot) every layer.
const InvFreq& inv_freq_table(float base, int64_t n_rot) {
  struct Entry {
    uint32_t base_bits = 0;
    int64_t n_rot = -1;
    InvFreq table;
  };
  constexpr int kEntries = 4;
  thread_local Entry cache[kEntries];
  thread_local int next = 0;
  uint32_t bits;
  std::memcpy(&bits, &base, sizeof bits);
  for (Entry& e : cache)
    if (e.n_rot == n_rot && e.base_bits == bits) return e.table;
  Entry& e = cache[next];
  next = (next + 1) % kEntries;
  e.base_bits = bits;
  e.n_rot = n_rot;
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < kMaxPairs; ++i)
    e.table.v[i] = i < half ? float(std::pow(double(base), -2.0 * double(i) / double(n_rot))) : 0.0f;
  return e.table;
}

}  // namespace

void rope(float* x, int64_t n_heads, float* x2, int64_t n_heads2, const int32_t* pos, int64_t n_tokens,
          int64_t head_dim, int64_t n_rot, float base, float freq_scale, RopeStyle style, cudaStream_t stream) {
  if (!x2) n_heads2 = 0;
  if (n_tokens <= 0 || n_heads < 0 || n_heads2 < 0 || n_heads + n_heads2 <= 0 || n_rot / 2 <= 0) return;
  const int64_t total = n_tokens * (n_heads + n_heads2) * (n_rot / 2);
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  static const InvFreq kNoTable{};  // n_rot > 2 * kMaxPairs: the kernel computes inv_freq itself
  const InvFreq& table = n_rot / 2 <= kMaxPairs ? inv_freq_table(base, n_rot) : kNoTable;
  rope_kernel<<<unsigned(blocks < INT_MAX ? blocks : INT_MAX), kThreads, 0, stream>>>(
      x, n_heads, x2, n_heads2, pos, n_tokens, head_dim, n_rot, base, freq_scale, style == RopeStyle::Neox, table);
  check_launch("rope");
}

}  // namespace hi::cuda
