#include "sycl_device.h"

#include <cctype>
#include <stdexcept>
#include <utility>
#include <vector>

#include "kernel_sources.h"

namespace hi {

namespace syclex = sycl::ext::oneapi::experimental;

namespace {

size_t round_up(int64_t n, size_t m) { return (size_t(n) + m - 1) / m * m; }
size_t ceil_div(int64_t n, int64_t m) { return size_t((n + m - 1) / m); }

// Kernel names end in the type: hi_matvec_q4_K, hi_get_rows_f16.
std::string typed(const char* kernel, QType type) {
  std::string name = qtype_info(type).name;
  for (char& c : name)
    if (c != 'K') c = char(std::tolower(static_cast<unsigned char>(c)));
  return std::string(kernel) + "_" + name;
}

void async_errors(sycl::exception_list errors) {
  for (const std::exception_ptr& e : errors) std::rethrow_exception(e);
}

}  // namespace

template <typename F>
auto SyclDevice::guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const sycl::exception& e) {
    throw std::runtime_error(name() + ": " + what + " failed: " + e.what());
  }
}

SyclDevice::SyclDevice(const sycl::device& device, std::string name, size_t cap)
    : Device(std::move(name), cap),
      queue_(guarded("creating a queue", [&] { return sycl::queue(device, async_errors, sycl::property::queue::in_order()); })) {
  if (!sycl::device(device).ext_oneapi_can_compile(syclex::source_language::sycl))
    throw std::runtime_error(this->name() + " (" + device.get_info<sycl::info::device::name>() +
                             ") cannot compile SYCL kernel sources at run time");
  syclex::include_files headers;
  for (size_t i = 0; i < kSyclHeaderCount; ++i) headers.add(kSyclHeaders[i].name, kSyclHeaders[i].text);
  // One bundle of every kernel source: each bundle costs a compile, or a
  // cache load, of its own (measured: a warm start loads one bundle in about
  // a third of the time four took; bench/RESULTS.md).
  std::string all;
  for (size_t i = 0; i < kSyclKernelCount; ++i)
    all += std::string("#line 1 \"") + kSyclKernels[i].name + "\"\n" + kSyclKernels[i].text + "\n";
  bundle_.emplace(guarded("compiling kernels/sycl", [&] {
    auto source = syclex::create_kernel_bundle_from_source(queue_.get_context(), syclex::source_language::sycl, all,
                                                           syclex::properties{headers});
    return syclex::build(source, std::vector<sycl::device>{device});
  }));
}

SyclDevice::~SyclDevice() {
  try {
    queue_.wait();
  } catch (...) {  // nothing can be reported from a destructor
  }
}

const sycl::kernel& SyclDevice::kernel(const std::string& name) {
  std::lock_guard<std::mutex> lock(kernels_mutex_);
  auto it = kernels_.find(name);
  if (it != kernels_.end()) return it->second;
  if (bundle_->ext_oneapi_has_kernel(name))
    return kernels_.emplace(name, bundle_->ext_oneapi_get_kernel(name)).first->second;
  throw std::runtime_error(this->name() + ": no SYCL kernel named " + name);
}

template <typename... Args>
void SyclDevice::launch(const std::string& name, size_t global, size_t local, const Args&... args) {
  if (global == 0) return;
  const sycl::kernel& k = kernel(name);
  guarded(name.c_str(), [&] {
    queue_.submit([&](sycl::handler& h) {
      h.set_args(args...);
      h.parallel_for(sycl::nd_range<1>{global, local}, k);
    });
  });
}

void* SyclDevice::raw_allocate(size_t bytes) {
  return guarded("allocating device memory", [&] { return sycl::malloc_device(align_up(bytes), queue_); });
}

void SyclDevice::raw_release(void* p) {
  queue_.wait();  // queued ops may still use it
  sycl::free(p, queue_);
}

void SyclDevice::to_device(void* dst, const void* host, size_t bytes) {
  if (bytes) guarded("a copy to the device", [&] { queue_.memcpy(dst, host, bytes).wait_and_throw(); });
}

void SyclDevice::to_host(void* host, const void* src, size_t bytes) {
  if (!bytes) return synchronize();  // still "after every op queued before it" (device.h)
  guarded("a copy to the host", [&] { queue_.memcpy(host, src, bytes).wait_and_throw(); });
}

void SyclDevice::copy(void* dst, const void* src, size_t bytes) {
  if (bytes) guarded("a copy on the device", [&] { queue_.memcpy(dst, src, bytes); });
}

void SyclDevice::fill_zero(void* dst, size_t bytes) {
  if (bytes) guarded("clearing device memory", [&] { queue_.memset(dst, 0, bytes); });
}

void SyclDevice::synchronize() {
  guarded("waiting for the device", [&] { queue_.wait_and_throw(); });
}

// Quantised weights multiply activations rounded to 8-bit blocks, as on the
// CPU (csrc/cpu/act_q8.h): integer dot products, and the same rounding, so a
// model gives the CPU's tokens. Decode (a few tokens): one work-group per
// output row streams the row once; 16 work-items, one sub-group on Arc and
// one vector on the CPU device, so the reduction needs no group barrier
// (measured on the CPU device: tg 1.19x against 64; bench/RESULTS.md).
// Prefill: tiles of rows x tokens reuse each dequantised weight chunk.
constexpr int64_t kMatvecTokens = 8;
constexpr size_t kMatvecItems = 16;

void SyclDevice::round_activations(int64_t values, const float* x, int64_t n, int64_t k, void* act) {
  launch(values == QK ? "hi_quantize_act_q32" : "hi_quantize_act_q256", round_up(n * (k / values), 64), 64, x, n, k,
         static_cast<uint8_t*>(act));
}

void SyclDevice::multiply(const MatmulOut* outs, size_t n_outs, int64_t k, const float* x, const void* act,
                          int64_t n) {
  const auto* blocks = static_cast<const uint8_t*>(act);
  for (size_t i = 0; i < n_outs; ++i) {
    const MatmulOut& o = outs[i];
    if (n <= kMatvecTokens)
      launch(typed("hi_matvec", o.type), size_t(o.rows) * kMatvecItems, kMatvecItems, o.w, o.rows, k, x, blocks, n,
             o.y);
    else
      launch(typed("hi_matmul", o.type), ceil_div(o.rows, 32) * ceil_div(n, 32) * 256, 256, o.w, o.rows, k, x, blocks,
             n, o.y);
  }
}

void SyclDevice::rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  // hi_rms_norm writes x only when given a delta.
  launch("hi_rms_norm", size_t(rows) * 64, 64, const_cast<float*>(x), static_cast<const float*>(nullptr), w, y, rows,
         dim, eps);
}

void SyclDevice::add_rms_norm(float* x, const float* delta, const float* w, float* y, int64_t rows, int64_t dim,
                              float eps) {
  launch("hi_rms_norm", size_t(rows) * 64, 64, x, delta, w, y, rows, dim, eps);
}

void SyclDevice::rope(float* x, int64_t n_heads, float* x2, int64_t n_heads2, const int32_t* pos, int64_t n_tokens,
                      int64_t head_dim, int64_t n_rot, float base, float freq_scale, RopeStyle style) {
  const int32_t neox = style == RopeStyle::Neox ? 1 : 0;
  if (!x2) n_heads2 = 0;
  launch("hi_rope", round_up(n_tokens * (n_heads + n_heads2) * (n_rot / 2), 64), 64, x, n_heads, x2, n_heads2, pos,
         n_tokens, head_dim, n_rot, base, freq_scale, neox);
}

void SyclDevice::gated_activation(const float* gate, const float* up, float* out, int64_t n, Activation act) {
  const int32_t kind = act == Activation::Silu ? 0 : 1;
  launch("hi_gated", round_up(n, 256), 256, gate, up, out, n, kind);
}

void SyclDevice::add(float* x, const float* y, int64_t n) { launch("hi_add", round_up(n, 256), 256, x, y, n); }

void SyclDevice::add_bias(float* y, const float* b, int64_t rows, int64_t cols) {
  launch("hi_add_bias", round_up(rows * cols, 256), 256, y, b, rows, cols);
}

void SyclDevice::softcap(float* x, int64_t n, float cap) { launch("hi_softcap", round_up(n, 256), 256, x, n, cap); }

void SyclDevice::get_rows(QType type, Table kind, const uint8_t* table, int64_t cols, const int32_t* ids, int64_t n,
                          float scale, float* out) {
  const int32_t planar = planar_table(kind) ? 1 : 0;
  launch(typed("hi_get_rows", type), round_up(n * int64_t(ceil_div(cols, 32)), 64), 64, table, planar, cols, ids, n,
         scale, out);
}

void SyclDevice::set_rows(QType type, uint8_t* table, int64_t cols, const int32_t* ids, int64_t n, const float* src) {
  launch(typed("hi_set_rows", type), round_up(n * int64_t(ceil_div(cols, 32)), 64), 64, table, cols, ids, n, src);
}

void SyclDevice::attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                           const AttnCells& cells, float scale, float softcap, float* out,
                           float* /*parts: one work-group a head, no split*/) {
  check_attention_args(name() + ": attention", n_head, k, v, 256);
  const int32_t k_type = int32_t(k.type), v_type = int32_t(v.type);
  launch("hi_attention", size_t(n_q * n_head) * 64, 64, q, n_q, n_head, k.data, k_type, k.n_head_kv, k.head_dim,
         v.data, v_type, v.head_dim, cells.cells, cells.begin, cells.end, scale, softcap, out);
}

}  // namespace hi
