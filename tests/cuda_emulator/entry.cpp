// C entry points over the hi::cuda launchers (kernels/cuda/*.cuh), for
// tests/test_cuda_emulated.py through ctypes. Host memory stands in for
// device memory: every pointer is a numpy buffer. Each returns 0, or 1 with
// the exception's message left for hi_emu_error() (a launch error reported
// by check_launch, or a launcher's argument check). Test machinery only.
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "act_q8.cuh"
#include "cuda_common.cuh"
#include "elementwise.cuh"
#include "fattn.cuh"
#include "matmul.cuh"
#include "mmq.cuh"
#include "mmvq.cuh"
#include "norm.cuh"
#include "rope.cuh"
#include "rows.cuh"

#include "cpu/act_q8.h"  // csrc/cpu: the CPU backend's activation quantiser

namespace {

thread_local std::string t_error;

template <typename F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    t_error = e.what();
  } catch (...) {
    t_error = "unknown exception";
  }
  return 1;
}

cudaStream_t const kStream = nullptr;

}  // namespace

extern "C" {

const char* hi_emu_error() { return t_error.c_str(); }

int hi_emu_quantize_act(int values, const float* x, int64_t n, int64_t k, uint8_t* out) {
  return guarded([&] { hi::cuda::quantize_act(values, x, n, k, out, kStream); });
}

// act: 0 silu, 1 gelu_tanh.
int hi_emu_quantize_gated_act(int values, float* gate, const float* up, int act, int64_t n, int64_t k, uint8_t* out) {
  return guarded([&] {
    hi::cuda::quantize_gated_act(values, gate, up, act ? hi::Activation::GeluTanh : hi::Activation::Silu, n, k, out,
                                 kStream);
  });
}

// As a CUDA device's matmul of one product: x rounded into scratch (quantised
// types), then the product. planar: the weights (table) are planar rows
// (kernels/common/planar_blocks.h).
int hi_emu_matmul(uint32_t type, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y,
                  void* scratch, int planar) {
  return guarded([&] {
    const int values = hi::qtype_info(hi::QType(type)).block_values;
    auto* act = static_cast<uint8_t*>(scratch);
    if (values > 1) hi::cuda::quantize_act(values, x, n, k, act, kStream);
    const hi::MatmulOut out{hi::QType(type), w, rows, y};
    hi::cuda::matmul(&out, 1, k, x, values > 1 ? act : nullptr, n, planar != 0, kStream);
  });
}

// The products of one input, y[i] = x W[i]^T for i < count, from act: x's
// activation blocks of the kind every quantised type among them pairs with.
int hi_emu_matmul_group(int count, const uint32_t* types, const uint8_t* const* ws, const int64_t* rows, int64_t k,
                        const float* x, const uint8_t* act, int64_t n, float* const* ys, int planar) {
  return guarded([&] {
    std::vector<hi::MatmulOut> outs;
    for (int i = 0; i < count; ++i) outs.push_back({hi::QType(types[i]), ws[i], rows[i], ys[i]});
    hi::cuda::matmul(outs.data(), outs.size(), k, x, act, n, planar != 0, kStream);
  });
}

int hi_emu_mmvq(uint32_t type, const uint8_t* w, int64_t rows, int64_t k, const float* x, const uint8_t* act,
                int64_t n, float* y, int planar) {
  const hi::MatmulOut out{hi::QType(type), w, rows, y};
  return guarded([&] { hi::cuda::mmvq(&out, 1, k, x, act, n, planar != 0, kStream); });
}

int hi_emu_mmq(uint32_t type, const uint8_t* w, int64_t rows, int64_t k, const float* x, const uint8_t* act,
               int64_t n, float* y, int planar) {
  return guarded([&] { hi::cuda::mmq(hi::QType(type), w, rows, k, x, act, n, y, planar != 0, kStream); });
}

int hi_emu_get_rows(uint32_t type, const uint8_t* table, int64_t cols, const int32_t* ids, int64_t n, float scale,
                    float* out, int planar) {
  return guarded([&] { hi::cuda::get_rows(hi::QType(type), table, cols, ids, n, scale, out, planar != 0, kStream); });
}

// A second table (type_b, table_b, cols_b, src_b) when table_b is not null: both in one launch.
int hi_emu_set_rows(uint32_t type, uint8_t* table, int64_t cols, const float* src, uint32_t type_b, uint8_t* table_b,
                    int64_t cols_b, const float* src_b, const int32_t* ids, int64_t n) {
  return guarded([&] {
    const hi::RowsTarget b{hi::QType(type_b), table_b, cols_b, src_b};
    hi::cuda::set_rows({hi::QType(type), table, cols, src}, table_b ? &b : nullptr, ids, n, kStream);
  });
}

int hi_emu_rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  return guarded([&] { hi::cuda::rms_norm(x, w, y, rows, dim, eps, kStream); });
}

int hi_emu_add_rms_norm(float* x, const float* delta, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  return guarded([&] { hi::cuda::add_rms_norm(x, delta, w, y, rows, dim, eps, kStream); });
}

// neox: 0 RopeStyle::Normal, 1 RopeStyle::Neox. x2: a second tensor of n_heads2 heads, or null.
int hi_emu_rope(float* x, int64_t n_heads, float* x2, int64_t n_heads2, const int32_t* pos, int64_t n_tokens,
                int64_t head_dim, int64_t n_rot, float base, float freq_scale, int neox) {
  return guarded([&] {
    hi::cuda::rope(x, n_heads, x2, n_heads2, pos, n_tokens, head_dim, n_rot, base, freq_scale,
                   neox ? hi::RopeStyle::Neox : hi::RopeStyle::Normal, kStream);
  });
}

// gelu: 0 Activation::Silu, 1 Activation::GeluTanh.
int hi_emu_gated_activation(const float* gate, const float* up, float* out, int64_t n, int gelu) {
  return guarded([&] {
    hi::cuda::gated_activation(gate, up, out, n, gelu ? hi::Activation::GeluTanh : hi::Activation::Silu, kStream);
  });
}

int hi_emu_add(float* x, const float* y, int64_t n) { return guarded([&] { hi::cuda::add(x, y, n, kStream); }); }

int hi_emu_add_bias(float* y, const float* b, int64_t rows, int64_t cols) {
  return guarded([&] { hi::cuda::add_bias(y, b, rows, cols, kStream); });
}

int hi_emu_softcap(float* x, int64_t n, float cap) {
  return guarded([&] { hi::cuda::softcap(x, n, cap, kStream); });
}

int hi_emu_attention(const float* q, int64_t n_q, int64_t n_head, uint32_t k_type, const uint8_t* k_data,
                     uint32_t v_type, const uint8_t* v_data, int64_t n_cells, int64_t n_head_kv, int64_t d_k,
                     int64_t d_v, const int32_t* cells, const int64_t* begin, const int64_t* end, float scale,
                     float softcap, float* out, float* parts) {
  return guarded([&] {
    const hi::KVView k{hi::QType(k_type), k_data, n_cells, n_head_kv, d_k};
    const hi::KVView v{hi::QType(v_type), v_data, n_cells, n_head_kv, d_v};
    hi::cuda::attention(q, n_q, n_head, k, v, hi::AttnCells{cells, begin, end}, scale, softcap, out, parts, kStream);
  });
}

// The CPU backend's activation blocks (csrc/cpu/act_q8.cpp, linked in): the
// reference for quantize_act. values: 32 or 256; x (n, k) -> out.
int hi_emu_cpu_quantize_activations(int values, const float* x, int64_t n, int64_t k, uint8_t* out) {
  return guarded([&] {
    for (int64_t i = 0; i < n; ++i) {
      if (values == hi::QK)
        hi::quantize_activations(x + i * k, reinterpret_cast<hi::ActBlock*>(out) + i * (k / hi::QK), k);
      else
        hi::quantize_activations(x + i * k, reinterpret_cast<hi::ActBlockK*>(out) + i * (k / hi::QK_K), k);
    }
  });
}

}  // extern "C"

// ---- the emulator's own checks (test_cuda_emulated.py::test_emulator_*) ----------------------
// Small kernels that exercise the emulation itself: the collectives' values,
// per-block shared memory, and the misuse it must report. They go through
// build.py's rewrites like the real kernels.
namespace {

__global__ void selftest_shuffles(const int* in, int* out) {
  const int t = int(threadIdx.x + blockIdx.x * blockDim.x);
  const int v = in[t];
  out[4 * t] = __shfl_xor_sync(0xffffffffu, v, 5);
  out[4 * t + 1] = __shfl_down_sync(0xffffffffu, v, 3);
  out[4 * t + 2] = __shfl_sync(0xffffffffu, v, 7);
  out[4 * t + 3] = int(__ballot_sync(0xffffffffu, v & 1));
}

// out[2b]: the sum of what block b's threads stored in shared memory; out[2b + 1]: a word no thread wrote.
__global__ void selftest_shared(int* out) {
  __shared__ int stored[64];
  __shared__ int unwritten;
  stored[threadIdx.x] = int(blockIdx.x * 1000 + threadIdx.x);
  __syncthreads();
  if (threadIdx.x == 0) {
    int sum = 0;
    for (int i = 0; i < 64; ++i) sum += stored[i];
    out[2 * blockIdx.x] = sum;
    out[2 * blockIdx.x + 1] = unwritten;
  }
}

__global__ void selftest_exited_lane(int* out) {  // lane 5 leaves before a collective of its warp
  if (threadIdx.x % 32 == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1);
}

__global__ void selftest_diverged_barrier(int* out) {  // half the block at one __syncthreads, half at another
  if (threadIdx.x < 32)
    __syncthreads();
  else
    __syncthreads();
  out[threadIdx.x] = 1;
}

}  // namespace

extern "C" int hi_emu_selftest(int which, const int* in, int* out, int blocks, int threads) {
  return guarded([&] {
    switch (which) {
      case 0: selftest_shuffles<<<blocks, threads>>>(in, out); break;
      case 1: selftest_shared<<<blocks, threads>>>(out); break;
      case 2: selftest_exited_lane<<<blocks, threads>>>(out); break;
      default: selftest_diverged_barrier<<<blocks, threads>>>(out); break;
    }
    hi::cuda::check_launch("selftest");
  });
}
