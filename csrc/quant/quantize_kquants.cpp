// K-quant quantisers (Q2_K..Q6_K). Every type runs the same three steps on a
// 256-value super-block:
//   1. each sub-block gets a continuous scale (and min) from a search over
//      step sizes, each candidate refitted by least squares on its codes;
//   2. the sub-block scales/mins are quantised to their stored widths against
//      an f16 d (and dmin), trying the neighbouring integer scale/min codes and
//      re-rounding the values against what the decoder will really compute;
//   3. d and dmin are refitted by least squares on the integer codes and
//      step 2 repeats while the error keeps falling.
// The error measure is plain (unweighted) squared error: without an importance
// matrix nothing says which weights matter more, and it is what RMSE measures.
#include "quantize_kquants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hi {

namespace {

constexpr int kMaxSub = QK_K / 16;  // sub-blocks per super-block at most
constexpr int kMaxSubLen = 32;      // values per sub-block at most

// Step-size sweep of the sub-block search: the edge value maps to code
// edge + t for t in [kSweepLo, kSweepLo + kSweepSteps * kSweepStep].
constexpr float kSweepLo = -1.0f;
constexpr float kSweepStep = 0.2f;
constexpr int kSweepSteps = 10;
constexpr int kSuperRefits = 3;   // rounds of step 3 at most
constexpr float kTiny = 1e-30f;   // spreads below this are treated as constant
constexpr float kHalfMax = 65504.0f;

// How a K type stores a super-block: sub-block j decodes as
//   value = (d * sc[j]) * q - (dmin * mn[j]),
// q in [qlo, qhi], sc in [slo, shi], mn in [0, mhi].
struct Format {
  int sub;       // values per sub-block: 16 or 32
  int qlo, qhi;  // value code range
  int slo, shi;  // sub-block scale code range
  int mhi;       // sub-block min codes are 0..mhi; 0 for types without mins
  int n_sub() const { return QK_K / sub; }
  bool has_min() const { return mhi > 0; }
};

constexpr Format kQ2K{16, 0, 3, 0, 15, 15};
constexpr Format kQ3K{16, -4, 3, -32, 31, 0};
constexpr Format kQ4K{32, 0, 15, 0, 63, 63};
constexpr Format kQ5K{32, 0, 31, 0, 63, 63};
constexpr Format kQ6K{16, -32, 31, -128, 127, 0};

// A super-block's codes before bit packing.
struct Codes {
  uint16_t d = 0, dmin = 0;  // f16 scale of the sub-block scales / mins
  int sc[kMaxSub];           // (n_sub,) sub-block scale codes
  int mn[kMaxSub];           // (n_sub,) sub-block min codes
  int q[QK_K];               // (256,) value codes
};

// Continuous scale and min of one sub-block: x ~ s * q - m.
struct Fit {
  float s = 0.0f, m = 0.0f;
};

// Nearest integer in [lo, hi]; NaN goes to lo so no input can escape the range.
int round_code(float v, int lo, int hi) {
  v = std::min(std::max(float(lo), v), float(hi));  // this argument order maps NaN to lo
  return lo + int(v - float(lo) + 0.5f);            // truncation floors: the operand is >= 0
}

// f16 for d and dmin. Saturates so that huge inputs get the largest step
// rather than inf, and keeps a nonzero value nonzero (smallest subnormal):
// a zero d would zero every scale and no later step could recover from it,
// while a too-small one is made up for by larger scale codes.
uint16_t to_half(float v) {
  const uint16_t h = float_to_half(std::min(std::max(v, -kHalfMax), kHalfMax));
  return (h & 0x7fffu) == 0 && v != 0.0f ? uint16_t(h | 1u) : h;
}

// Rounds x to its nearest codes under (s, m) and returns the squared error,
// computed with the decoder's own float expression s * q - m.
float round_and_error(const float* x /* (n,) */, int n, float s, float m, const Format& f,
                      int* q /* (n,) out */) {
  const float inv = s != 0.0f ? 1.0f / s : 0.0f;
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    q[i] = round_code((x[i] + m) * inv, f.qlo, f.qhi);
    const float e = s * float(q[i]) - m - x[i];
    err += e * e;
  }
  return err;
}

// Sums over one sub-block for a least-squares fit of x ~ s * q - m.
struct Sums {
  float n = 0.0f, x = 0.0f, xx = 0.0f;  // fixed by the sub-block
  float q = 0.0f, qq = 0.0f, qx = 0.0f;  // depend on the codes
};

// Least-squares (s, m) from the sums, and its squared error (the normal
// equations make it xx - s*qx - offset*x). Stored mins are unsigned, so a fit
// wanting m < 0 (or a type without mins) falls back to s alone with m = 0.
Fit solve(const Sums& t, bool with_min, float& err) {
  if (with_min) {
    const float det = t.n * t.qq - t.q * t.q;  // > 0 unless all codes are equal
    if (det > 0.0f) {
      const float s = (t.n * t.qx - t.q * t.x) / det;
      const float offset = (t.qq * t.x - t.q * t.qx) / det;  // x ~ s * q + offset
      if (offset <= 0.0f) {
        err = t.xx - s * t.qx - offset * t.x;
        return {s, -offset};
      }
    }
  }
  const float s = t.qq > 0.0f ? t.qx / t.qq : 0.0f;
  err = t.xx - s * t.qx;
  return {s, 0.0f};
}

// One step-size candidate: codes of x measured from `zero` at 1/iscale per
// code, then the least-squares (s, m) for those codes; kept when it beats `best`.
void try_step(const float* x /* (n,) */, int n, float iscale, float zero, const Format& f,
              Sums t, Fit& best, float& best_err) {
  for (int i = 0; i < n; ++i) {
    const float q = float(round_code(iscale * (x[i] - zero), f.qlo, f.qhi));
    t.q += q;
    t.qq += q * q;
    t.qx += q * x[i];
  }
  float err;
  const Fit cand = solve(t, f.has_min(), err);
  if (err < best_err) {
    best = cand;
    best_err = err;
  }
}

// Step 1 for one sub-block. With mins, [min(x, 0), max x] is spread over
// codes 0..qhi+t (the zero point stays <= 0: stored mins are >= 0). Without,
// the value of largest magnitude is sent to either end of the signed code
// range (the ends differ in size: -4..3), again stretched by t.
Fit search_sub(const float* x /* (n,) */, int n, const Format& f) {
  Sums sums;
  float lo = 0.0f, hi = x[0], amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    if (std::fabs(x[i]) > std::fabs(amax)) amax = x[i];
    sums.x += x[i];
    sums.xx += x[i] * x[i];
  }
  sums.n = float(n);
  // Fallback s = 0, every value decoding to lo (0 without mins).
  Fit best{0.0f, f.has_min() ? -lo : 0.0f};
  float best_err = sums.xx + best.m * (2.0f * sums.x + float(n) * best.m);
  for (int k = 0; k <= kSweepSteps; ++k) {
    const float t = kSweepLo + kSweepStep * float(k);
    if (f.has_min()) {
      if (hi - lo > kTiny)
        try_step(x, n, (float(f.qhi) + t) / (hi - lo), lo, f, sums, best, best_err);
    } else if (std::fabs(amax) > kTiny) {
      try_step(x, n, (float(f.qlo) - t) / amax, 0.0f, f, sums, best, best_err);
      try_step(x, n, (float(f.qhi) + t) / amax, 0.0f, f, sums, best, best_err);
    }
  }
  return best;
}

// Step 2: with d and dmin fixed (f16 values), each sub-block takes the
// scale/min codes around its continuous fit that give the least error once
// its values are re-rounded. Returns the super-block's squared error.
float pick_codes(const float* x /* (256,) */, const Format& f, const Fit* fits /* (n_sub,) */,
                 float d, float dmin, Codes& c) {
  const float inv_d = d != 0.0f ? 1.0f / d : 0.0f;
  const float inv_dmin = dmin != 0.0f ? 1.0f / dmin : 0.0f;
  int q[kMaxSubLen];  // (sub,) scratch codes
  float total = 0.0f;
  for (int j = 0; j < f.n_sub(); ++j) {
    const float* xj = x + j * f.sub;
    const int sc0 = round_code(fits[j].s * inv_d, f.slo, f.shi);
    const int mn0 = round_code(fits[j].m * inv_dmin, 0, f.mhi);
    float best = 0.0f;
    bool first = true;  // the first candidate is always taken, whatever its error
    for (int sc = std::max(f.slo, sc0 - 1); sc <= std::min(f.shi, sc0 + 1); ++sc) {
      for (int mn = std::max(0, mn0 - 1); mn <= std::min(f.mhi, mn0 + 1); ++mn) {
        const float err = round_and_error(xj, f.sub, d * float(sc), dmin * float(mn), f, q);
        if (first || err < best) {
          first = false;
          best = err;
          c.sc[j] = sc;
          c.mn[j] = mn;
          std::memcpy(c.q + j * f.sub, q, sizeof(int) * size_t(f.sub));
        }
      }
    }
    total += best;
  }
  return total;
}

// Step 3: least-squares d and dmin for fixed integer codes, x ~ d * a - dmin * b
// with a = sc * q, b = mn. Keeps dmin (fitting d alone) when the joint fit is
// degenerate (no mins) or asks for a negative dmin.
void refit_super(const float* x /* (256,) */, const Format& f, const Codes& c, float& d,
                 float& dmin) {
  double saa = 0, sab = 0, sbb = 0, sax = 0, sbx = 0;
  for (int i = 0; i < QK_K; ++i) {
    const double a = double(c.sc[i / f.sub] * c.q[i]), b = double(c.mn[i / f.sub]);
    saa += a * a;
    sab += a * b;
    sbb += b * b;
    sax += a * x[i];
    sbx += b * x[i];
  }
  const double det = saa * sbb - sab * sab;
  if (sbb > 0 && det > 1e-9 * saa * sbb) {
    const double d2 = (sax * sbb - sab * sbx) / det;
    const double dmin2 = -(saa * sbx - sab * sax) / det;
    if (dmin2 >= 0) {
      d = float(d2);
      dmin = float(dmin2);
      return;
    }
  }
  if (saa > 0) d = float((sax + double(dmin) * sab) / saa);
}

// All three steps for one super-block.
void quantize_super(const float* x /* (256,) */, const Format& f, Codes& c) {
  Fit fits[kMaxSub];  // (n_sub,) continuous sub-block fits
  float s_ext = 0.0f, m_max = 0.0f;  // scale of largest magnitude (signed), largest min
  for (int j = 0; j < f.n_sub(); ++j) {
    fits[j] = search_sub(x + j * f.sub, f.sub, f);
    if (std::fabs(fits[j].s) > std::fabs(s_ext)) s_ext = fits[j].s;
    m_max = std::max(m_max, fits[j].m);
  }
  // Signed scale codes: send the extreme scale to the longer (negative) end.
  c.d = to_half(s_ext / float(f.slo < 0 ? f.slo : f.shi));
  c.dmin = to_half(f.has_min() ? m_max / float(f.mhi) : 0.0f);
  float best = pick_codes(x, f, fits, half_to_float(c.d), half_to_float(c.dmin), c);
  for (int round = 0; round < kSuperRefits; ++round) {
    float d = half_to_float(c.d), dmin = half_to_float(c.dmin);
    refit_super(x, f, c, d, dmin);
    Codes trial;
    trial.d = to_half(d);
    trial.dmin = to_half(dmin);
    if (trial.d == c.d && trial.dmin == c.dmin) break;  // converged at f16 precision
    const float err =
        pick_codes(x, f, fits, half_to_float(trial.d), half_to_float(trial.dmin), trial);
    if (!(err < best)) break;
    best = err;
    c = trial;
  }
}

// ---- bit packing: the inverse of unpack_chunk in quant_blocks.h -------------
// Value i sits in chunk k = i / 32 at lane l = i % 32; sub-block j holds
// values [j * sub, (j + 1) * sub).

void pack(const Codes& c, block_q2_K& b) {
  std::memset(&b, 0, sizeof b);
  b.d = c.d;
  b.dmin = c.dmin;
  for (int j = 0; j < QK_K / 16; ++j) b.scales[j] = uint8_t(c.sc[j] | c.mn[j] << 4);
  for (int i = 0; i < QK_K; ++i) {
    const int k = i / QK, l = i % QK;
    b.qs[32 * (k / 4) + l] |= uint8_t(c.q[i] << (2 * (k % 4)));
  }
}

void pack(const Codes& c, block_q3_K& b) {
  std::memset(&b, 0, sizeof b);
  b.d = c.d;
  for (int j = 0; j < QK_K / 16; ++j) {
    const int v = c.sc[j] + 32;  // 6 bits: low nibble, then 2 high bits
    b.scales[j % 8] |= uint8_t((v & 0x0f) << (4 * (j / 8)));
    b.scales[8 + j % 4] |= uint8_t((v >> 4) << (2 * (j / 4)));
  }
  for (int i = 0; i < QK_K; ++i) {
    const int k = i / QK, l = i % QK;
    const int u = c.q[i] + 4;  // bit 2 set <=> code >= 0 (no -4 offset)
    b.qs[32 * (k / 4) + l] |= uint8_t((u & 3) << (2 * (k % 4)));
    b.hmask[l] |= uint8_t((u >> 2) << k);
  }
}

// The 12 scale bytes shared by Q4_K and Q5_K (inverse of k4_scale_min).
void pack_k4_scales(const Codes& c, uint8_t* s /* (12,) */) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t(c.sc[j]);
    s[j + 4] = uint8_t(c.mn[j]);
  }
  for (int j = 4; j < 8; ++j) {
    s[j + 4] = uint8_t((c.sc[j] & 0x0f) | (c.mn[j] & 0x0f) << 4);
    s[j - 4] |= uint8_t((c.sc[j] >> 4) << 6);
    s[j] |= uint8_t((c.mn[j] >> 4) << 6);
  }
}

void pack(const Codes& c, block_q4_K& b) {
  std::memset(&b, 0, sizeof b);
  b.d = c.d;
  b.dmin = c.dmin;
  pack_k4_scales(c, b.scales);
  for (int i = 0; i < QK_K; ++i) {
    const int k = i / QK, l = i % QK;
    b.qs[32 * (k / 2) + l] |= uint8_t(c.q[i] << (4 * (k % 2)));
  }
}

void pack(const Codes& c, block_q5_K& b) {
  std::memset(&b, 0, sizeof b);
  b.d = c.d;
  b.dmin = c.dmin;
  pack_k4_scales(c, b.scales);
  for (int i = 0; i < QK_K; ++i) {
    const int k = i / QK, l = i % QK;
    b.qs[32 * (k / 2) + l] |= uint8_t((c.q[i] & 0x0f) << (4 * (k % 2)));
    b.qh[l] |= uint8_t((c.q[i] >> 4) << k);
  }
}

void pack(const Codes& c, block_q6_K& b) {
  std::memset(&b, 0, sizeof b);
  b.d = c.d;
  for (int j = 0; j < QK_K / 16; ++j) b.scales[j] = int8_t(c.sc[j]);
  for (int i = 0; i < QK_K; ++i) {
    const int h = i / 128, k = (i / QK) % 4, l = i % QK;
    const int u = c.q[i] + 32;  // 6 bits: low nibble in ql, 2 high bits in qh
    b.ql[64 * h + 32 * (k % 2) + l] |= uint8_t((u & 0x0f) << (4 * (k / 2)));
    b.qh[32 * h + l] |= uint8_t((u >> 4) << (2 * k));
  }
}

template <typename Block>
void quantize_all(const float* x /* (n_blocks * 256,) */, Block* y /* (n_blocks,) */,
                  int64_t n_blocks, const Format& f) {
  Codes c;
  for (int64_t b = 0; b < n_blocks; ++b) {
    quantize_super(x + b * QK_K, f, c);
    pack(c, y[b]);
  }
}

}  // namespace

void quantize_blocks(const float* x, block_q2_K* y, int64_t n_blocks) {
  quantize_all(x, y, n_blocks, kQ2K);
}
void quantize_blocks(const float* x, block_q3_K* y, int64_t n_blocks) {
  quantize_all(x, y, n_blocks, kQ3K);
}
void quantize_blocks(const float* x, block_q4_K* y, int64_t n_blocks) {
  quantize_all(x, y, n_blocks, kQ4K);
}
void quantize_blocks(const float* x, block_q5_K* y, int64_t n_blocks) {
  quantize_all(x, y, n_blocks, kQ5K);
}
void quantize_blocks(const float* x, block_q6_K* y, int64_t n_blocks) {
  quantize_all(x, y, n_blocks, kQ6K);
}

}  // namespace hi
