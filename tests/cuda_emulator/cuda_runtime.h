// A CPU emulation of the parts of the CUDA runtime and device API that
// kernels/cuda/*.cu and the plugin's host code (csrc/cuda) use, so that the
// real sources run with g++ on a machine without a GPU: the kernels' launchers
// alone (tests/test_cuda_emulated.py), or the whole plugin loaded as cuda:N
// (tests/test_cuda_emulated_plugin.py; runtime.cpp: devices, memory, streams,
// graphs).
// Test machinery only: never built into the package.
//
// Execution model (emulator.cpp): a launch runs its blocks on a few host
// threads (the caller among them), one block at a time each; a block's CUDA threads are
// fibres (cooperative user-space contexts) of that worker, so
//   - __syncthreads() is a real barrier of all the block's threads,
//   - warp collectives (__shfl_*_sync, __ballot_sync, mma.sync) are
//     warp-synchronous: all 32 lanes must arrive at the same call site, then
//     every lane reads what the others passed in,
//   - __shared__ variables are per block: build.py rewrites each declaration
//     into a `static thread_local` (one copy per worker thread, and a worker
//     runs one block at a time) plus a registration that fills it with 0xff
//     bytes (NaN floats, -1 integers) when the block starts, so a read of
//     shared memory that no thread of this block wrote shows up as garbage.
// Fibres run in a random order between synchronisation points (seeded,
// see hi_emu_set_seed), so a missing barrier tends to change the result.
// Checked, and reported as a launch error (cudaGetLastError): a warp
// collective with some lanes exited or at another call site, a
// __syncthreads() some threads never reach (diverged or exited), a
// mask other than 0xffffffff, dynamic shared memory, block sizes that are
// not whole warps.
//
// Not emulated: the memory model (no reordering, no caches; data races
// between blocks or between unsynchronised threads are not detected unless
// the random order exposes them), timing and occupancy, register and shared
// memory limits (__launch_bounds__ is ignored), out-of-bounds or misaligned
// accesses (host memory stands in for device memory; the tests guard their
// outputs with canaries), real PTX (the one inline asm, mmq.cu's mma.sync,
// is replaced under HI_CUDA_EMULATOR by hi_emu_mma_m16n8k16_s8, written from
// the PTX ISA fragment tables), nvcc's FMA contraction (this is compiled
// with -ffp-contract=off: each a*b+c rounds twice unless the source says
// fmaf), and CUDA's libm (expf, tanhf, sincosf, pow are glibc's, which may
// differ from CUDA's by an ulp or two). Streams order nothing: every launch
// runs to completion before it returns, unless a capture records it
// (runtime.cpp has what a capture allows). Only what the kernels use exists
// here: no atomics, __syncwarp, dynamic shared memory, cooperative groups or
// partial-warp masks (a kernel that needs them fails to compile or reports it).
// For out-of-bounds reads, build.py's HI_EMU_SANITIZE=1 adds AddressSanitizer.
#pragma once

#ifndef HI_CUDA_EMULATOR
#define HI_CUDA_EMULATOR 1
#endif

#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <source_location>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// ---- qualifiers ---------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// build.py rewrites every __shared__ declaration; one it missed fails to compile here.
#define __shared__ __shared___declaration_not_rewritten_by_tests_cuda_emulator_build_py

// ---- vector types -------------------------------------------------------------
struct uint3 { unsigned x, y, z; };
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(8) int2 { int x, y; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }

// ---- runtime API ----------------------------------------------------------------
// What the kernels' launchers use (emulator.cpp), and what the CUDA plugin's
// host code (csrc/cuda) uses when build.py builds the whole plugin against
// this emulation (runtime.cpp: devices, memory, streams, graphs).
using cudaStream_t = struct CUstream_st*;
using cudaGraph_t = struct CUgraph_st*;
using cudaGraphExec_t = struct CUgraphExec_st*;
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
};
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1 };
constexpr unsigned cudaStreamNonBlocking = 1;
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor, multiProcessorCount;
};
extern "C" {  // as CUDA's own cuda_runtime_api.h
cudaError_t cudaGetLastError();  // the last error of this thread, then cudaSuccess again
const char* cudaGetErrorString(cudaError_t e);  // for the last error: the emulator's message
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);  // SMs: hi_emu_set_sm_count
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
}

// ---- the running thread -----------------------------------------------------------
namespace hi_emu {

struct ThreadState {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
// The fibre this worker is running. (Not initial-exec: this library's TLS
// holds every kernel's __shared__ variables, too big for the static TLS block.)
extern thread_local ThreadState* current;

// Warp collective: every lane of the caller's warp passes 3 words and waits
// until all 32 have (same call site `where`); returns the table
// [lane][word] of what they passed, valid until the caller's next collective.
const uint64_t (*warp_exchange(unsigned mask, uint64_t w0, uint64_t w1, uint64_t w2, const char* what,
                               const std::source_location& where))[3];
void syncthreads(const std::source_location& where);
// Called by each thread at a rewritten __shared__ declaration: the first call
// of a block fills the variable with 0xff bytes.
void shared_declared(void* p, size_t bytes);

// Launch machinery: runs body(arg) once per thread of every block; an error
// is left for cudaGetLastError. `name`: the kernel as the launch spells it.
void run_grid(const char* name, dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*), void* arg);
// Whether a launch of this shape can run; if not, leaves the error as run_grid would.
bool valid_launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes);
// The last error of this thread, for cudaGetLastError and cudaGetErrorString.
void set_error(cudaError_t e, const std::string& text);

// A launch on `stream` (runtime.cpp): `run` runs now, or, while `stream` is
// being captured, is kept in the capture to run at each replay of its graph.
void enqueue(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
             std::function<void()> run);
// With device memory emulated (the whole plugin: build.py's plugin build
// defines HI_EMU_DEVICE_MEMORY), a pointer a kernel is given must be null or
// point into (or just past) memory from cudaMalloc on the current device: a
// host pointer, or another GPU's memory, fails the launch, as it would fault
// on a GPU. Argument `index` of the launch of `name` on `device` (the one
// current when it was launched, also at a replay); false (the error left)
// when it is neither.
bool device_pointer(const char* name, int device, size_t index, const void* p);
int current_device();

// The pointers in a kernel's struct argument are checked too: the file that
// defines the struct lists them, under HI_CUDA_EMULATOR, in a function found
// by argument-dependent lookup,
//   std::vector<const void*> hi_emu_pointers(const S&);
// (empty for a struct of no pointers). A struct argument for which none is
// found does not compile in the plugin build, so a new struct cannot slip
// past (one derived from a listed struct would use its base's list: list it
// too); a union argument does not compile at all.
template <typename Tuple, size_t... I>
bool device_pointers(const char* name, int device, const Tuple& args, std::index_sequence<I...>) {
  const auto one = [name, device](size_t index, const auto& v) {
    using T = std::decay_t<decltype(v)>;
    static_assert(!std::is_union_v<T>, "a union kernel argument: its pointers cannot be checked");
    if constexpr (std::is_pointer_v<T>) {
      return device_pointer(name, device, index, v);
    } else if constexpr (std::is_class_v<T>) {
      for (const void* p : hi_emu_pointers(v))
        if (!device_pointer(name, device, index, p)) return false;
    }
    return true;
  };
  return (one(I, std::get<I>(args)) && ...);
}

// What build.py turns `kernel<<<grid, block, shared, stream>>>(args)` into.
template <typename... P, typename... A>
void launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, void (*kernel)(P...),
            A&&... args) {
  // Arguments are converted to the parameter types once, as a real launch
  // copies them (a recorded launch keeps its copy); each thread gets its own
  // copy when it is called.
  struct Call {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> args;
  };
  auto call = std::make_shared<Call>(Call{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)});
  const int device = current_device();
  enqueue(name, grid, block, shared_bytes, stream, [name, device, grid, block, shared_bytes, call] {
#ifdef HI_EMU_DEVICE_MEMORY
    // When it runs, so at each replay of a graph too: memory it was given may be gone by then.
    if (!device_pointers(name, device, call->args, std::index_sequence_for<P...>{})) return;
#endif
    run_grid(name, grid, block, shared_bytes,
             [](void* c) {
               Call& k = *static_cast<Call*>(c);
               std::apply(k.kernel, k.args);
             },
             call.get());
  });
}

template <typename T>
uint64_t to_word(T v) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffles move up to 8 bytes");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof v);
  return u;
}
template <typename T>
T from_word(uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

}  // namespace hi_emu

#define threadIdx (::hi_emu::current->thread_idx)
#define blockIdx (::hi_emu::current->block_idx)
#define blockDim (::hi_emu::current->block_dim)
#define gridDim (::hi_emu::current->grid_dim)

inline void __syncthreads(const std::source_location& where = std::source_location::current()) {
  hi_emu::syncthreads(where);
}

// ---- warp collectives (width 32 only) --------------------------------------------------
template <typename T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32,
              const std::source_location& where = std::source_location::current()) {
  static_assert(sizeof(T) <= 8, "");
  const auto table = hi_emu::warp_exchange(width == 32 ? mask : 0, hi_emu::to_word(v), 0, 0, "__shfl_sync", where);
  return hi_emu::from_word<T>(table[src & 31][0]);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                  const std::source_location& where = std::source_location::current()) {
  const auto table = hi_emu::warp_exchange(width == 32 ? mask : 0, hi_emu::to_word(v), 0, 0, "__shfl_xor_sync", where);
  const int lane = int(threadIdx.x % 32), src = lane ^ lane_mask;
  return hi_emu::from_word<T>(table[src < 32 ? src : lane][0]);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32,
                   const std::source_location& where = std::source_location::current()) {
  const auto table = hi_emu::warp_exchange(width == 32 ? mask : 0, hi_emu::to_word(v), 0, 0, "__shfl_down_sync", where);
  const unsigned lane = threadIdx.x % 32, src = lane + delta;
  return hi_emu::from_word<T>(table[src < 32 ? src : lane][0]);  // past the warp: the caller's own value
}
inline unsigned __ballot_sync(unsigned mask, int pred,
                              const std::source_location& where = std::source_location::current()) {
  const auto table = hi_emu::warp_exchange(mask, pred != 0, 0, 0, "__ballot_sync", where);
  unsigned r = 0;
  for (int l = 0; l < 32; ++l) r |= unsigned(table[l][0] != 0) << l;
  return r;
}

// mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 with a zero accumulator
// (mmq.cu's mma_s8 under HI_CUDA_EMULATOR); emulator.cpp has the layout.
void hi_emu_mma_m16n8k16_s8(int (&d)[4], int a0, int a1, int b0,
                            const std::source_location& where = std::source_location::current());

// ---- arithmetic intrinsics --------------------------------------------------------------
// Compiled with -ffp-contract=off, so a plain operator rounds on its own: the
// _rn forms are the IEEE operations.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __int_as_float(int i) { return hi_emu::from_word<float>(uint32_t(i)); }
inline int __float_as_int(float f) { return int(uint32_t(hi_emu::to_word(f))); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; ++i) c += int(int8_t(uint32_t(a) >> (8 * i))) * int(int8_t(uint32_t(b) >> (8 * i)));
  return c;
}
