// The CUDA runtime of the emulation, beyond launches (emulator.cpp): one
// device, its memory, streams, and graphs captured from a stream. Enough for
// the whole CUDA plugin (csrc/cuda) to run on the CPU when build.py builds it
// against this folder. Test machinery only.
//
// Work runs when it is queued: a stream is an order, not a queue, so
// cudaStreamSynchronize has nothing to wait for. What the emulation checks,
// each an error of the call (and of cudaGetLastError) as on a GPU, or
// stricter where a GPU would fault or read garbage:
//   - memory: cudaMalloc's bytes start as 0xff (NaN floats), so reading memory
//     nothing wrote shows; a copy or memset must lie inside one allocation, on
//     the side its kind names (a device pointer where the host is named is an
//     error too); cudaFree of what cudaMalloc did not give is an error;
//   - capture (cudaStreamBeginCapture ... EndCapture, thread-local or global
//     mode alike): launches, device-to-device copies and memsets on the
//     captured stream are recorded, not run; a copy to or from the host, a
//     synchronisation of the stream, cudaMalloc or cudaFree on the capturing
//     thread, or work on the legacy stream (null) there, are errors that
//     invalidate the capture, so EndCapture fails, as CUDA's rules for
//     captures in those modes say; a graph replays its recorded work in order.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cuda_runtime.h"

// A stream: the capture it is in, if any.
struct CUstream_st {
  bool capturing = false;
  bool invalidated = false;  // a forbidden call happened during the capture
  std::string why;           // the first such call
  std::vector<std::function<cudaError_t()>> work;
};
struct CUgraph_st {
  std::vector<std::function<cudaError_t()>> work;
};
struct CUgraphExec_st {
  std::vector<std::function<cudaError_t()>> work;
};

namespace hi_emu {

namespace {

constexpr size_t kDeviceBytes = size_t(8) << 30;  // what cudaMemGetInfo reports as the device's total
constexpr size_t kAlignment = 256;                // cudaMalloc's

std::mutex g_memory_mutex;
std::map<uintptr_t, size_t> g_allocations;  // start -> bytes asked for
size_t g_allocated = 0;
thread_local CUstream_st* t_capturing = nullptr;  // the stream this thread captures
std::atomic<int64_t> g_captures{0}, g_replays{0};   // graphs captured whole, graph launches (hi_emu_graph_counts)

size_t rounded(size_t bytes) { return (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment; }

cudaError_t fail(cudaError_t e, const std::string& text) {
  set_error(e, text);
  return e;
}

// The allocation holding [p, p + bytes), or false. bytes 0: p may be its end.
bool in_device_memory(const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  auto it = g_allocations.upper_bound(a);
  if (it == g_allocations.begin()) return false;
  --it;
  return a >= it->first && a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

// A call this thread may not make while it captures: the capture is invalidated.
cudaError_t forbidden_in_capture(const std::string& what) {
  CUstream_st* s = t_capturing;
  if (!s->invalidated) s->why = what;
  s->invalidated = true;
  return fail(cudaErrorStreamCaptureUnsupported, what + " while the thread captures a stream");
}

// Runs `work` now, or records it when `stream` is the one this thread captures.
cudaError_t submit(cudaStream_t stream, const std::string& what, std::function<cudaError_t()> work) {
  if (t_capturing) {
    if (stream == t_capturing) {
      t_capturing->work.push_back(std::move(work));
      return cudaSuccess;
    }
    if (!stream) return forbidden_in_capture(what + " on the legacy stream");
  }
  return work();
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

}  // namespace

void enqueue(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
             std::function<void()> run) {
  if (t_capturing && stream == t_capturing && !valid_launch(name, grid, block, shared_bytes)) {
    if (!t_capturing->invalidated) t_capturing->why = std::string("an invalid launch of ") + name;
    t_capturing->invalidated = true;  // the launch's own error is left for its check
    return;
  }
  const cudaError_t e = submit(stream, std::string("a launch of ") + name, [run = std::move(run)] {
    run();
    return cudaGetLastError();
  });
  if (e != cudaSuccess) set_error(e, cudaGetErrorString(e));  // run now: left for the launcher's check
}

bool device_pointer(const char* name, size_t index, const void* p) {
  if (!p || in_device_memory(p, 0)) return true;
  set_error(cudaErrorInvalidValue, std::string("launch of ") + name + ": argument " + std::to_string(index) + " (" +
                                       hex(p) + ") is not device memory");
  return false;
}

}  // namespace hi_emu

using hi_emu::fail;
using hi_emu::in_device_memory;
using hi_emu::t_capturing;

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "cudaSetDevice: the emulation has device 0 only");
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties: the emulation has device 0 only");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "hetinfer CUDA emulator");
  prop->totalGlobalMem = hi_emu::kDeviceBytes;
  prop->major = 8;  // what the kernels need: mma.sync .s8 (emulated)
  prop->minor = 0;
  return cudaDeviceGetAttribute(&prop->multiProcessorCount, cudaDevAttrMultiProcessorCount, 0);
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  std::lock_guard<std::mutex> lock(hi_emu::g_memory_mutex);
  *total = hi_emu::kDeviceBytes;
  *free = hi_emu::kDeviceBytes - std::min(hi_emu::g_allocated, hi_emu::kDeviceBytes);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = nullptr;
  if (t_capturing) return hi_emu::forbidden_in_capture("cudaMalloc");
  const size_t rounded = hi_emu::rounded(bytes);
  {
    std::lock_guard<std::mutex> lock(hi_emu::g_memory_mutex);
    if (rounded > hi_emu::kDeviceBytes - std::min(hi_emu::g_allocated, hi_emu::kDeviceBytes))
      return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of memory");
  }
  // The bytes asked for exactly, so that AddressSanitizer (build.py's
  // HI_EMU_SANITIZE) reports a kernel reading past them.
  void* q = nullptr;
  if (posix_memalign(&q, hi_emu::kAlignment, std::max<size_t>(bytes, 1)) != 0)
    return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of host memory");
  std::memset(q, 0xff, bytes);  // what nothing wrote reads as NaN
  std::lock_guard<std::mutex> lock(hi_emu::g_memory_mutex);
  hi_emu::g_allocations[reinterpret_cast<uintptr_t>(q)] = bytes;
  hi_emu::g_allocated += rounded;
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  if (t_capturing) return hi_emu::forbidden_in_capture("cudaFree");
  {
    std::lock_guard<std::mutex> lock(hi_emu::g_memory_mutex);
    auto it = hi_emu::g_allocations.find(reinterpret_cast<uintptr_t>(p));
    if (it == hi_emu::g_allocations.end())
      return fail(cudaErrorInvalidValue, "cudaFree(" + hi_emu::hex(p) + "): not memory from cudaMalloc");
    hi_emu::g_allocated -= hi_emu::rounded(it->second);
    hi_emu::g_allocations.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  const bool dst_device = kind != cudaMemcpyDeviceToHost, src_device = kind != cudaMemcpyHostToDevice;
  const std::string what = std::string("cudaMemcpyAsync of ") + std::to_string(bytes) + " bytes " +
                           (src_device ? "from the device" : "from the host") +
                           (dst_device ? " to the device" : " to the host");
  if (kind < cudaMemcpyHostToDevice || kind > cudaMemcpyDeviceToDevice)
    return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: an unemulated kind");
  if (in_device_memory(dst, bytes) != dst_device || in_device_memory(src, bytes) != src_device)
    return fail(cudaErrorInvalidValue, what + ": the range " + hi_emu::hex(src) + " -> " + hi_emu::hex(dst) +
                                           " does not lie where the kind says (inside one allocation on the device)");
  if (kind != cudaMemcpyDeviceToDevice && t_capturing) return hi_emu::forbidden_in_capture(what);
  return hi_emu::submit(stream, what, [=] {
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  });
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (!in_device_memory(dst, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemsetAsync of " + std::to_string(bytes) + " bytes at " + hi_emu::hex(dst) +
                                           ": not inside one allocation on the device");
  return hi_emu::submit(stream, "cudaMemsetAsync", [=] {
    std::memset(dst, value, bytes);
    return cudaSuccess;
  });
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = new CUstream_st;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (stream && stream->capturing) return fail(cudaErrorIllegalState, "cudaStreamDestroy of a stream being captured");
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (t_capturing && (stream == t_capturing || !stream)) return hi_emu::forbidden_in_capture("cudaStreamSynchronize");
  return cudaSuccess;  // everything ran when it was queued
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  if (!stream) return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamBeginCapture of the legacy stream");
  if (t_capturing || stream->capturing)
    return fail(cudaErrorIllegalState, "cudaStreamBeginCapture: a capture is already in progress");
  *stream = CUstream_st{};
  stream->capturing = true;
  t_capturing = stream;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  *graph = nullptr;
  if (!stream || stream != t_capturing)
    return fail(cudaErrorIllegalState, "cudaStreamEndCapture of a stream this thread does not capture");
  t_capturing = nullptr;
  stream->capturing = false;
  std::vector<std::function<cudaError_t()>> work = std::move(stream->work);
  stream->work.clear();
  if (stream->invalidated)
    return fail(cudaErrorStreamCaptureInvalidated, "the capture was invalidated by " + stream->why);
  *graph = new CUgraph_st{std::move(work)};
  ++hi_emu::g_captures;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  *exec = new CUgraphExec_st{graph->work};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  ++hi_emu::g_replays;
  return hi_emu::submit(stream, "cudaGraphLaunch", [exec] {
    for (const auto& work : exec->work)
      if (const cudaError_t e = work(); e != cudaSuccess) return fail(e, cudaGetErrorString(e));
    return cudaSuccess;
  });
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

// For the tests (ctypes): graphs captured and graph launches so far.
void hi_emu_graph_counts(int64_t* captures, int64_t* replays) {
  *captures = hi_emu::g_captures;
  *replays = hi_emu::g_replays;
}
}  // extern "C"
