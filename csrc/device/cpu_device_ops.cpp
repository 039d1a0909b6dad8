// CpuDevice's op set: the CPU kernels of csrc/cpu, on host memory.
#include <cstring>

#include "../cpu/dequantize.h"
#include "../cpu/flash_attn.h"
#include "../cpu/matmul.h"
#include "../cpu/ops.h"
#include "../cpu/thread_pool.h"
#include "../quant/quantize.h"
#include "cpu_device.h"

namespace hi {

void CpuDevice::to_device(void* dst, const void* host, size_t bytes) { std::memcpy(dst, host, bytes); }
void CpuDevice::to_host(void* host, const void* src, size_t bytes) { std::memcpy(host, src, bytes); }
void CpuDevice::copy(void* dst, const void* src, size_t bytes) { std::memmove(dst, src, bytes); }
void CpuDevice::fill_zero(void* dst, size_t bytes) { std::memset(dst, 0, bytes); }

void CpuDevice::round_activations(int64_t values, const float* x, int64_t n, int64_t k, void* act) {
  round_activation_rows(values, x, n, k, act);
}

void CpuDevice::multiply(const MatmulOut* outs, size_t n_outs, int64_t k, const float* x, const void* act,
                         int64_t n) {
  matmul_rounded(outs, n_outs, k, x, act, n);
}

void CpuDevice::rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  hi::rms_norm(x, w, y, rows, dim, eps);
}

void CpuDevice::rope(float* x, int64_t n_heads, float* x2, int64_t n_heads2, const int32_t* pos, int64_t n_tokens,
                     int64_t head_dim, int64_t n_rot, float base, float freq_scale, RopeStyle style) {
  hi::rope(x, pos, n_tokens, n_heads, head_dim, n_rot, base, freq_scale, style);
  if (x2) hi::rope(x2, pos, n_tokens, n_heads2, head_dim, n_rot, base, freq_scale, style);
}

void CpuDevice::gated_activation(const float* gate, const float* up, float* out, int64_t n, Activation act) {
  hi::gated_activation(gate, up, out, n, act);
}

void CpuDevice::add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void CpuDevice::add_bias(float* y, const float* b, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] += b[c];
}

void CpuDevice::softcap(float* x, int64_t n, float cap) { hi::softcap(x, n, cap); }

void CpuDevice::get_rows(QType type, Table, const uint8_t* table, int64_t cols, const int32_t* ids, int64_t n,
                         float scale, float* out) {
  const size_t rb = row_bytes(type, cols);
  parallel_ranges(cpu_pool(), n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* row = out + i * cols;
      dequantize_serial(type, table + size_t(ids[i]) * rb, row, cols);
      if (scale != 1.0f)
        for (int64_t j = 0; j < cols; ++j) row[j] *= scale;
    }
  });
}

void CpuDevice::set_rows(QType type, uint8_t* table, int64_t cols, const int32_t* ids, int64_t n,
                         const float* src) {
  const size_t rb = row_bytes(type, cols);
  for (int64_t i = 0; i < n; ++i) quantize(type, src + i * cols, table + size_t(ids[i]) * rb, cols);
}

void CpuDevice::attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                          const AttnCells& cells, float scale, float softcap, float* out, float* /*parts: no split*/) {
  flash_attention(q, n_q, n_head, k, v, cells, scale, softcap, out);
}

}  // namespace hi
