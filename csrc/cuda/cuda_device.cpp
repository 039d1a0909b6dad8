#include "cuda_device.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

#include "cuda/act_q8.cuh"
#include "cuda/elementwise.cuh"
#include "cuda/fattn.cuh"
#include "cuda/matmul.cuh"
#include "cuda/norm.cuh"
#include "cuda/rope.cuh"
#include "cuda/rows.cuh"

namespace hi {

namespace {

// "DEVICE: WHAT failed: REASON" for an error about to be raised, which is
// cleared first: launches check cudaGetLastError, and must not report it again.
// (A sticky error, a kernel fault, stays: every later call fails.)
std::string raised(const std::string& device, cudaError_t e, const char* what) {
  (void)cudaGetLastError();
  return device + ": " + what + " failed: " + cudaGetErrorString(e);
}

// A decode step captured as a CUDA graph, replayed on the device's stream.
class GraphRecording : public Device::Recording {
 public:
  GraphRecording(cudaGraphExec_t exec, cudaStream_t stream, int ordinal, std::string device)
      : exec_(exec), stream_(stream), ordinal_(ordinal), device_(std::move(device)) {}
  ~GraphRecording() override {
    quietly(make_current(ordinal_));
    quietly(cudaStreamSynchronize(stream_));  // a replay may still be running
    quietly(cudaGraphExecDestroy(exec_));
  }
  void replay() override {
    cudaError_t e = make_current(ordinal_);
    if (e == cudaSuccess) e = cudaGraphLaunch(exec_, stream_);
    if (e != cudaSuccess) throw std::runtime_error(raised(device_, e, "replaying a step"));
  }

 private:
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
  int ordinal_;
  std::string device_;
};

// How a CUDA device holds quantised weights: planar rows, which the decode
// matvec reads with 16-byte loads (kernels/cuda/chunk_words.cuh), unless
// HETINFER_CUDA_WEIGHTS=blocks keeps the file's blocks: both stay so that one
// session on a GPU times them side by side (bench/cuda_session.sh).
bool planar_from_environment() {
  const char* v = std::getenv("HETINFER_CUDA_WEIGHTS");
  const std::string layout = v ? v : "";
  if (layout.empty() || layout == "planar") return true;
  if (layout == "blocks") return false;
  throw std::invalid_argument("HETINFER_CUDA_WEIGHTS=" + layout + ": expected planar (the default) or blocks");
}

// A step that could not be captured, as opposed to an op that failed.
struct CaptureFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

void quietly(cudaError_t e) {
  if (e != cudaSuccess) (void)cudaGetLastError();
}

// Restoring the thread's previous device instead would make GPU 0 current
// (and start its context) on every thread that never chose one, as
// cudaGetDevice says 0 there; hetinfer makes its device current before each
// call it makes.
cudaError_t make_current(int ordinal) {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now == ordinal) return cudaSuccess;
  const cudaError_t e = cudaSetDevice(ordinal);
  quietly(e);
  return e;
}

void CudaDevice::check(cudaError_t e, const char* what) const {
  if (e != cudaSuccess) throw std::runtime_error(raised(name(), e, what));
}

void CudaDevice::select() const { check(make_current(ordinal_), "making the device current"); }

template <typename F>
void CudaDevice::run(F&& f) {
  select();
  try {
    f();
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(name() + ": " + e.what());
  }
}

CudaDevice::CudaDevice(int ordinal, std::string name, size_t cap)
    : Device(std::move(name), cap), ordinal_(ordinal), planar_(planar_from_environment()) {
  int count = 0;
  check(cudaGetDeviceCount(&count), "counting CUDA devices");
  if (ordinal < 0 || ordinal >= count)
    throw std::runtime_error(this->name() + " does not exist: " + std::to_string(count) + " CUDA devices found");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, ordinal), "reading the device's properties");
  // The prefill matmul uses int8 tensor-core MMA (mma.sync m16n8k16 .s8), sm_80 and newer.
  if (prop.major < 8)
    throw std::runtime_error(this->name() + " (" + prop.name + ", compute capability " + std::to_string(prop.major) +
                             "." + std::to_string(prop.minor) +
                             ") is not supported: hetinfer's CUDA kernels need compute capability 8.0 or newer");
  select();
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a stream");
}

CudaDevice::~CudaDevice() {
  quietly(make_current(ordinal_));
  quietly(cudaStreamSynchronize(stream_));  // nothing can be reported from a destructor
  quietly(cudaStreamDestroy(stream_));
}

std::unique_ptr<Device::Binding> CudaDevice::bind() {
  select();  // for the kernels the calling thread launches
  return std::make_unique<Binding>();
}

void* CudaDevice::raw_allocate(size_t bytes) {
  void* p = nullptr;
  // Null on failure: Device::allocate reports it with the kind and size.
  if (make_current(ordinal_) != cudaSuccess) return nullptr;
  const cudaError_t e = cudaMalloc(&p, align_up(bytes));
  quietly(e);
  return e == cudaSuccess ? p : nullptr;
}

void CudaDevice::raw_release(void* p) {
  quietly(make_current(ordinal_));
  quietly(cudaStreamSynchronize(stream_));  // queued ops may still use it
  quietly(cudaFree(p));
}

void CudaDevice::to_device(void* dst, const void* host, size_t bytes) {
  if (!bytes) return;
  select();
  check(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream_), "a copy to the device");
  check(cudaStreamSynchronize(stream_), "a copy to the device");  // `host` may be reused on return
}

void CudaDevice::to_host(void* host, const void* src, size_t bytes) {
  if (!bytes) return synchronize();  // still "after every op queued before it" (device.h)
  select();
  check(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, stream_), "a copy to the host");
  check(cudaStreamSynchronize(stream_), "a copy to the host");
}

void CudaDevice::copy(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  select();
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "a copy on the device");
}

void CudaDevice::fill_zero(void* dst, size_t bytes) {
  if (!bytes) return;
  select();
  check(cudaMemsetAsync(dst, 0, bytes, stream_), "clearing device memory");
}

void CudaDevice::synchronize() {
  select();
  check(cudaStreamSynchronize(stream_), "waiting for the device");
}

void CudaDevice::round_activations(int64_t values, const float* x, int64_t n, int64_t k, void* act) {
  run([&] { cuda::quantize_act(int(values), x, n, k, static_cast<uint8_t*>(act), stream_); });
}

void CudaDevice::round_gated_activations(int64_t values, float* gate, const float* up, Activation fn, int64_t n,
                                         int64_t k, void* act) {
  run([&] { cuda::quantize_gated_act(int(values), gate, up, fn, n, k, static_cast<uint8_t*>(act), stream_); });
}

void CudaDevice::multiply(const MatmulOut* outs, size_t n_outs, int64_t k, const float* x, const void* act,
                          int64_t n) {
  run([&] { cuda::matmul(outs, n_outs, k, x, static_cast<const uint8_t*>(act), n, planar_, stream_); });
}

void CudaDevice::rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  run([&] { cuda::rms_norm(x, w, y, rows, dim, eps, stream_); });
}

void CudaDevice::add_rms_norm(float* x, const float* delta, const float* w, float* y, int64_t rows, int64_t dim,
                              float eps) {
  run([&] { cuda::add_rms_norm(x, delta, w, y, rows, dim, eps, stream_); });
}

void CudaDevice::rope(float* x, int64_t n_heads, float* x2, int64_t n_heads2, const int32_t* pos, int64_t n_tokens,
                      int64_t head_dim, int64_t n_rot, float base, float freq_scale, RopeStyle style) {
  run([&] { cuda::rope(x, n_heads, x2, n_heads2, pos, n_tokens, head_dim, n_rot, base, freq_scale, style, stream_); });
}

void CudaDevice::gated_activation(const float* gate, const float* up, float* out, int64_t n, Activation act) {
  run([&] { cuda::gated_activation(gate, up, out, n, act, stream_); });
}

void CudaDevice::add(float* x, const float* y, int64_t n) {
  run([&] { cuda::add(x, y, n, stream_); });
}

void CudaDevice::add_bias(float* y, const float* b, int64_t rows, int64_t cols) {
  run([&] { cuda::add_bias(y, b, rows, cols, stream_); });
}

void CudaDevice::softcap(float* x, int64_t n, float cap) {
  run([&] { cuda::softcap(x, n, cap, stream_); });
}

void CudaDevice::get_rows(QType type, Table kind, const uint8_t* table, int64_t cols, const int32_t* ids, int64_t n,
                          float scale, float* out) {
  run([&] { cuda::get_rows(type, table, cols, ids, n, scale, out, planar_table(kind), stream_); });
}

void CudaDevice::set_rows(QType type, uint8_t* table, int64_t cols, const int32_t* ids, int64_t n, const float* src) {
  run([&] { cuda::set_rows(RowsTarget{type, table, cols, src}, nullptr, ids, n, stream_); });
}

void CudaDevice::set_rows_pair(const RowsTarget& a, const RowsTarget& b, const int32_t* ids, int64_t n) {
  run([&] { cuda::set_rows(a, &b, ids, n, stream_); });
}

void CudaDevice::attention(const float* q, int64_t n_q, int64_t n_head, const KVView& k, const KVView& v,
                           const AttnCells& cells, float scale, float softcap, float* out, float* parts) {
  check_attention_args(name() + ": attention", n_head, k, v, 256);
  run([&] { cuda::attention(q, n_q, n_head, k, v, cells, scale, softcap, out, parts, stream_); });
}

std::unique_ptr<Device::Recording> CudaDevice::record(const std::function<void()>& queue_ops) {
  select();
  try {
    return capture(queue_ops);
  } catch (const CaptureFailed& e) {
    // A failed capture ran nothing, so the ops are still to run: unrecorded,
    // slower but right; null tells the caller to record no more.
    std::fprintf(stderr, "hetinfer: %s: running decode steps unrecorded: %s\n", name().c_str(), e.what());
    queue_ops();
    return nullptr;
  }
}

std::unique_ptr<Device::Recording> CudaDevice::capture(const std::function<void()>& queue_ops) {
  // Thread-local capture: other threads' CUDA calls (other devices' stages)
  // are not affected, and a forbidden call on this thread fails the capture.
  cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) throw CaptureFailed(raised(name(), e, "beginning to record a step"));
  cudaGraph_t graph = nullptr;
  try {
    queue_ops();
  } catch (...) {
    // The capture's fault when it ended invalid; else the op's own (a bad
    // argument, a fault), which running it unrecorded would only raise again.
    e = cudaStreamEndCapture(stream_, &graph);
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess) throw CaptureFailed(raised(name(), e, "recording a step"));
    throw;
  }
  e = cudaStreamEndCapture(stream_, &graph);
  if (e != cudaSuccess) throw CaptureFailed(raised(name(), e, "recording a step"));
  cudaGraphExec_t exec = nullptr;
  e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) throw CaptureFailed(raised(name(), e, "instantiating a recorded step"));
  auto recording = std::make_unique<GraphRecording>(exec, stream_, ordinal_, name());
  try {
    recording->replay();  // capturing queued nothing: run the ops now
  } catch (const std::runtime_error& x) {
    throw CaptureFailed(x.what());
  }
  return recording;
}

}  // namespace hi
