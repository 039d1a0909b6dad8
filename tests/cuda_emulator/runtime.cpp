// The CUDA runtime of the emulation, beyond launches (emulator.cpp): devices
// (HI_EMU_DEVICES of them, default 1), their memory, streams, and graphs
// captured from a stream. Enough for
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
//   - devices: each thread has its current device (0 until cudaSetDevice); a
//     stream belongs to the device current when it was made, memory to the
//     one current at cudaMalloc; a kernel must be launched on a stream of the
//     current device, and its pointer arguments must be that device's memory
//     (no peer access: another GPU's memory would fault);
//   - capture (cudaStreamBeginCapture ... EndCapture, thread-local mode, the
//     one CudaDevice uses): launches, device-to-device copies and memsets on
//     the captured stream, from any thread, are recorded, not run; a copy to
//     or from the host on it, its synchronisation, cudaMalloc or cudaFree on
//     the capturing thread, or work on the legacy stream (null) there, are
//     errors that invalidate the capture, so EndCapture fails, as CUDA's rules
//     say; a graph replays its recorded work in order, checking the memory
//     each piece touches again (it may have been freed since the capture).
// Not emulated: sticky errors (after a kernel fault every CUDA call fails on
// a GPU; here the next call starts afresh), asynchrony (see above), peer
// access between devices, the global and relaxed capture modes.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_runtime.h"

// A stream: its device, and the capture it is in, if any.
struct CUstream_st {
  int device = 0;
  std::mutex mutex;  // for what follows: any thread may queue work on a stream
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

constexpr size_t kDeviceBytes = size_t(8) << 30;  // what cudaMemGetInfo reports as each device's total
constexpr size_t kAlignment = 256;                // cudaMalloc's
constexpr int kMaxDevices = 8;

struct Allocation {
  size_t bytes;  // asked for
  int device;
};
std::mutex g_memory_mutex;
std::map<uintptr_t, Allocation> g_allocations;  // by start
size_t g_allocated[kMaxDevices] = {};           // bytes held on each device, rounded as cudaMalloc rounds
thread_local int t_device = 0;                  // the calling thread's current device
thread_local CUstream_st* t_capturing = nullptr;  // the stream this thread captures
std::atomic<int64_t> g_captures{0}, g_replays{0};   // graphs captured whole, graph launches (hi_emu_graph_counts)

size_t rounded(size_t bytes) { return (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment; }

cudaError_t fail(cudaError_t e, const std::string& text) {
  set_error(e, text);
  return e;
}

int device_count() {
  static const int count = [] {
    const char* v = std::getenv("HI_EMU_DEVICES");
    return v ? std::clamp(std::atoi(v), 1, kMaxDevices) : 1;
  }();
  return count;
}

cudaError_t check_device(int device, const char* what) {
  if (device >= 0 && device < device_count()) return cudaSuccess;
  return fail(cudaErrorInvalidDevice, std::string(what) + "(" + std::to_string(device) + "): the emulation has " +
                                          std::to_string(device_count()) + " device(s) (HI_EMU_DEVICES)");
}

// The device whose allocation holds [p, p + bytes), or -1. bytes 0: p may be its end.
int device_of(const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  auto it = g_allocations.upper_bound(a);
  if (it == g_allocations.begin()) return -1;
  --it;
  const size_t size = it->second.bytes;
  return a - it->first <= size && bytes <= size - (a - it->first) ? it->second.device : -1;
}

bool in_device_memory(const void* p, size_t bytes) { return device_of(p, bytes) >= 0; }

bool capturing(cudaStream_t s) {
  if (!s) return false;
  std::lock_guard<std::mutex> lock(s->mutex);
  return s->capturing;
}

// A call CUDA forbids during the capture of `s`: the capture is invalidated.
cudaError_t forbidden_in_capture(CUstream_st* s, const std::string& what) {
  {
    std::lock_guard<std::mutex> lock(s->mutex);
    if (!s->invalidated) s->why = what;
    s->invalidated = true;
  }
  return fail(cudaErrorStreamCaptureUnsupported, what + " during the capture of a stream");
}

// Runs `work` now, or records it when `stream` is being captured.
cudaError_t submit(cudaStream_t stream, const std::string& what, std::function<cudaError_t()> work) {
  if (stream) {
    std::unique_lock<std::mutex> lock(stream->mutex);
    if (stream->capturing) {
      stream->work.push_back(std::move(work));
      return cudaSuccess;
    }
  } else if (t_capturing) {
    return forbidden_in_capture(t_capturing, what + " on the legacy stream");
  }
  return work();
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

// Whether a copy of `bytes` lies where `kind` says: inside one allocation on
// each device side, outside all of them on a host side; else the error.
cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const std::string& what) {
  const bool dst_device = kind != cudaMemcpyDeviceToHost, src_device = kind != cudaMemcpyHostToDevice;
  if (in_device_memory(dst, bytes) == dst_device && in_device_memory(src, bytes) == src_device) return cudaSuccess;
  return fail(cudaErrorInvalidValue, what + ": the range " + hex(src) + " -> " + hex(dst) +
                                         " does not lie where the kind says (inside one allocation on the device)");
}

cudaError_t check_set(void* dst, size_t bytes) {
  if (in_device_memory(dst, bytes)) return cudaSuccess;
  return fail(cudaErrorInvalidValue, "cudaMemsetAsync of " + std::to_string(bytes) + " bytes at " + hex(dst) +
                                         ": not inside one allocation on the device");
}

}  // namespace

void enqueue(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
             std::function<void()> run) {
  if (stream && stream->device != t_device) {
    set_error(cudaErrorInvalidResourceHandle, std::string("launch of ") + name + " on a stream of device " +
                                                  std::to_string(stream->device) + " while device " +
                                                  std::to_string(t_device) + " is current");
    return;
  }
  if (capturing(stream) && !valid_launch(name, grid, block, shared_bytes)) {
    const std::string error = cudaGetErrorString(cudaErrorInvalidConfiguration);
    forbidden_in_capture(stream, std::string("an invalid launch of ") + name);
    set_error(cudaErrorInvalidConfiguration, error);  // the launch's own error is the one its check reports
    return;
  }
  const cudaError_t e = submit(stream, std::string("a launch of ") + name, [run = std::move(run)] {
    run();
    return cudaGetLastError();
  });
  if (e != cudaSuccess) set_error(e, cudaGetErrorString(e));  // run now: left for the launcher's check
}

int current_device() { return t_device; }

bool device_pointer(const char* name, int device, size_t index, const void* p) {
  const int owner = p ? device_of(p, 0) : device;
  if (owner == device) return true;
  set_error(cudaErrorInvalidValue, std::string("launch of ") + name + " on device " + std::to_string(device) +
                                       ": argument " + std::to_string(index) + " (" + hex(p) + ") is " +
                                       (owner < 0 ? "not device memory" : "memory of device " +
                                                                              std::to_string(owner)));
  return false;
}

}  // namespace hi_emu

using hi_emu::fail;
using hi_emu::in_device_memory;
using hi_emu::t_capturing;

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  *count = hi_emu::device_count();
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = hi_emu::t_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (const cudaError_t e = hi_emu::check_device(device, "cudaSetDevice"); e != cudaSuccess) return e;
  hi_emu::t_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (const cudaError_t e = hi_emu::check_device(device, "cudaGetDeviceProperties"); e != cudaSuccess) return e;
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
  *free = hi_emu::kDeviceBytes - std::min(hi_emu::g_allocated[hi_emu::t_device], hi_emu::kDeviceBytes);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = nullptr;
  if (t_capturing) return hi_emu::forbidden_in_capture(t_capturing, "cudaMalloc");
  const size_t rounded = hi_emu::rounded(bytes);
  {
    std::lock_guard<std::mutex> lock(hi_emu::g_memory_mutex);
    if (rounded > hi_emu::kDeviceBytes - std::min(hi_emu::g_allocated[hi_emu::t_device], hi_emu::kDeviceBytes))
      return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of memory");
  }
  // The bytes asked for exactly, so that AddressSanitizer (build.py's
  // HI_EMU_SANITIZE) reports a kernel reading past them.
  void* q = nullptr;
  if (posix_memalign(&q, hi_emu::kAlignment, std::max<size_t>(bytes, 1)) != 0)
    return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of host memory");
  std::memset(q, 0xff, bytes);  // what nothing wrote reads as NaN
  std::lock_guard<std::mutex> lock(hi_emu::g_memory_mutex);
  hi_emu::g_allocations[reinterpret_cast<uintptr_t>(q)] = {bytes, hi_emu::t_device};
  hi_emu::g_allocated[hi_emu::t_device] += rounded;
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  if (t_capturing) return hi_emu::forbidden_in_capture(t_capturing, "cudaFree");
  {
    std::lock_guard<std::mutex> lock(hi_emu::g_memory_mutex);
    auto it = hi_emu::g_allocations.find(reinterpret_cast<uintptr_t>(p));
    if (it == hi_emu::g_allocations.end())
      return fail(cudaErrorInvalidValue, "cudaFree(" + hi_emu::hex(p) + "): not memory from cudaMalloc");
    hi_emu::g_allocated[it->second.device] -= hi_emu::rounded(it->second.bytes);
    hi_emu::g_allocations.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (kind < cudaMemcpyHostToDevice || kind > cudaMemcpyDeviceToDevice)
    return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: an unemulated kind");
  const std::string what = std::string("cudaMemcpyAsync of ") + std::to_string(bytes) + " bytes " +
                           (kind == cudaMemcpyHostToDevice ? "from the host" : "from the device") +
                           (kind == cudaMemcpyDeviceToHost ? " to the host" : " to the device");
  if (const cudaError_t e = hi_emu::check_copy(dst, src, bytes, kind, what); e != cudaSuccess) return e;
  if (kind != cudaMemcpyDeviceToDevice) {
    if (hi_emu::capturing(stream)) return hi_emu::forbidden_in_capture(stream, what);
    if (!stream && t_capturing) return hi_emu::forbidden_in_capture(t_capturing, what + " on the legacy stream");
  }
  return hi_emu::submit(stream, what, [=] {
    if (const cudaError_t e = hi_emu::check_copy(dst, src, bytes, kind, what); e != cudaSuccess) return e;
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  });
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (const cudaError_t e = hi_emu::check_set(dst, bytes); e != cudaSuccess) return e;
  return hi_emu::submit(stream, "cudaMemsetAsync", [=] {
    if (const cudaError_t e = hi_emu::check_set(dst, bytes); e != cudaSuccess) return e;
    std::memset(dst, value, bytes);
    return cudaSuccess;
  });
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = new CUstream_st;
  (*stream)->device = hi_emu::t_device;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (hi_emu::capturing(stream)) return fail(cudaErrorIllegalState, "cudaStreamDestroy of a stream being captured");
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (hi_emu::capturing(stream)) return hi_emu::forbidden_in_capture(stream, "cudaStreamSynchronize");
  if (!stream && t_capturing) return hi_emu::forbidden_in_capture(t_capturing, "cudaStreamSynchronize(legacy)");
  return cudaSuccess;  // everything ran when it was queued
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (!stream) return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamBeginCapture of the legacy stream");
  if (mode != cudaStreamCaptureModeThreadLocal)
    return fail(cudaErrorInvalidValue, "cudaStreamBeginCapture: only the thread-local mode is emulated");
  if (t_capturing) return fail(cudaErrorIllegalState, "cudaStreamBeginCapture: this thread already captures a stream");
  std::lock_guard<std::mutex> lock(stream->mutex);
  if (stream->capturing) return fail(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is being captured");
  stream->invalidated = false;
  stream->why.clear();
  stream->work.clear();
  stream->capturing = true;
  t_capturing = stream;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  *graph = nullptr;
  if (!stream || stream != t_capturing)
    return fail(cudaErrorIllegalState, "cudaStreamEndCapture of a stream this thread does not capture");
  t_capturing = nullptr;
  std::unique_lock<std::mutex> lock(stream->mutex);
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
