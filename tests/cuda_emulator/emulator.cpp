// Launch machinery of the CPU emulation of CUDA (see cuda_runtime.h here for
// what is and is not emulated). Test machinery only.
//
// A launch hands its blocks to a few workers (the calling thread and up to
// hi_emu_set_workers - 1 more threads); a worker runs one block at a time to
// completion. A block's threads are
// fibres on the worker's thread: each has its own stack and runs until it
// reaches a synchronisation point (__syncthreads, a warp collective) or its
// end, then the worker's scheduler picks the next runnable fibre. The order
// of fibres is shuffled every scheduling round (seeded per launch and block),
// so a kernel that relies on an order no barrier enforces tends to fail.
// When no fibre can run and some have not finished, the block is deadlocked
// (a barrier some threads never reach): that, and every misuse listed in
// cuda_runtime.h, ends the launch with an error that cudaGetLastError
// reports (the kernels' check_launch then throws).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "cuda_runtime.h"

#if !defined(__x86_64__) || defined(HI_EMU_UCONTEXT)
#define HI_EMU_USE_UCONTEXT 1
#include <ucontext.h>
#endif

namespace hi_emu {

thread_local ThreadState* current = nullptr;

namespace {

// ---- settings (extern "C" setters at the end) ----------------------------------
std::atomic<int> g_sm_count{132};
std::atomic<int> g_workers{0};  // 0: hardware threads, at most 8
std::atomic<uint64_t> g_seed{0x243F6A8885A308D3ull};
std::atomic<uint64_t> g_launches{0};  // since the seed was set: launch i's order comes from (seed, i)

// ---- per host thread: the last error and the kernels launched -------------------------
thread_local cudaError_t t_last_error = cudaSuccess;
thread_local std::string t_error_text;
thread_local cudaError_t t_error_code = cudaSuccess;  // the error t_error_text is about
thread_local std::string t_log;  // kernel names, one a line, since hi_emu_take_log

// ---- fibre stacks -----------------------------------------------------------------
constexpr size_t kStackBytes = 128 * 1024;

struct Stack {
  char* base = nullptr;  // the lowest usable byte (a guard page lies below)
  size_t size = 0;
};

std::mutex g_stack_mu;
std::vector<Stack> g_free_stacks;  // reused across launches

Stack take_stack() {
  {
    std::lock_guard<std::mutex> lock(g_stack_mu);
    if (!g_free_stacks.empty()) {
      Stack s = g_free_stacks.back();
      g_free_stacks.pop_back();
      return s;
    }
  }
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("hi_emu: cannot map a fibre stack");
  mprotect(p, page, PROT_NONE);  // an overflow faults instead of corrupting a neighbour
  return Stack{static_cast<char*>(p) + page, kStackBytes};
}

void give_stacks(std::vector<Stack>& stacks) {
  std::lock_guard<std::mutex> lock(g_stack_mu);
  g_free_stacks.insert(g_free_stacks.end(), stacks.begin(), stacks.end());
  stacks.clear();
}

// ---- context switching -------------------------------------------------------------
#ifdef HI_EMU_USE_UCONTEXT
struct Context {
  ucontext_t uc;
};
void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
void init_context(Context& c, const Stack& s, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = s.base;
  c.uc.uc_stack.ss_size = s.size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#else
// x86-64 System V: save the callee-saved registers, MXCSR and the x87 control
// word on the old stack, switch stacks, restore them from the new one.
extern "C" __attribute__((visibility("hidden"))) void hi_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .p2align 4
  .globl hi_emu_switch
  .hidden hi_emu_switch
  .type hi_emu_switch, @function
hi_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size hi_emu_switch, .-hi_emu_switch
)");
struct Context {
  void* sp = nullptr;
};
void switch_context(Context& from, Context& to) { hi_emu_switch(&from.sp, to.sp); }
void init_context(Context& c, const Stack& s, void (*entry)()) {
  uint32_t mxcsr = 0;
  uint16_t fcw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fcw));
  auto* sp = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(s.base + s.size)) & ~uintptr_t(15));
  *--sp = 0;                                    // entry's return address: it never returns
  *--sp = reinterpret_cast<uint64_t>(entry);    // popped by hi_emu_switch's ret
  for (int i = 0; i < 6; ++i) *--sp = 0;        // rbp rbx r12 r13 r14 r15
  *--sp = uint64_t(mxcsr) | (uint64_t(fcw) << 32);
  c.sp = sp;
}
#endif

// ---- blocks ------------------------------------------------------------------------
enum class FibreState { Ready, Blocked, Done };

struct Fibre {
  Context ctx;
  Stack stack;
  void* asan_fake_stack = nullptr;
  ThreadState st;
  FibreState state = FibreState::Ready;
  int tid = 0;                       // linear thread index in the block
  const uint64_t* wait_gen = nullptr;  // Blocked: until *wait_gen != wait_value
  uint64_t wait_value = 0;
};

// A barrier of a warp (32 lanes) or of the block, with the call site all
// arrivals must share and, for warps, the words each lane passed.
struct Collective {
  uint64_t gen = 0;
  int arrived = 0;
  const char* what = nullptr;  // the first arrival's operation and site
  const char* file = nullptr;
  unsigned line = 0, column = 0;
  uint64_t slots[2][32][3] = {};  // [gen & 1][lane][word]
};

struct Launch {
  const char* name;
  dim3 grid, block;
  int threads;
  void (*body)(void*);
  void* arg;
  uint64_t seed;
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::string error;
};

struct Worker {
  Launch* launch = nullptr;
  Context sched;
  std::vector<Stack> stacks;
  std::vector<Fibre> fibres;
  std::vector<Collective> warps;
  Collective block_bar;
  std::vector<void*> shared_seen;  // __shared__ variables already poisoned in this block
  Fibre* running = nullptr;
  const void* sched_stack = nullptr;  // for ASan: the scheduler's stack
  size_t sched_stack_size = 0;
  void* sched_fake_stack = nullptr;
  std::string error;
  std::mt19937_64 rng;
  std::vector<int> order;
};

thread_local Worker* t_worker = nullptr;

// Switches between the scheduler and a fibre, telling AddressSanitizer (a
// HI_EMU_SANITIZE build, see build.py) which stack is in use.
#if defined(__SANITIZE_ADDRESS__)
extern "C" void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old, size_t* size_old);
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
#endif

void run_fibre(Worker& w, Fibre& f) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(&w.sched_fake_stack, f.stack.base, f.stack.size);
#endif
  switch_context(w.sched, f.ctx);
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(w.sched_fake_stack, nullptr, nullptr);
#endif
}

// exiting: the fibre never runs again.
void to_scheduler(Worker& w, Fibre& f, bool exiting) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f.asan_fake_stack, w.sched_stack, w.sched_stack_size);
#endif
  (void)exiting;
  switch_context(f.ctx, w.sched);
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(f.asan_fake_stack, &w.sched_stack, &w.sched_stack_size);
#endif
}

std::string site(const char* file, unsigned line) {
  const char* slash = std::strrchr(file, '/');
  return std::string(slash ? slash + 1 : file) + ":" + std::to_string(line);
}

std::string thread_name(const Fibre& f) {
  const ThreadState& s = f.st;
  return "thread (" + std::to_string(s.thread_idx.x) + "," + std::to_string(s.thread_idx.y) + "," +
         std::to_string(s.thread_idx.z) + ") of block (" + std::to_string(s.block_idx.x) + "," +
         std::to_string(s.block_idx.y) + "," + std::to_string(s.block_idx.z) + ")";
}

// Ends the running fibre with an error; the scheduler abandons the block.
[[noreturn]] void fail(const std::string& message) {
  Worker& w = *t_worker;
  Fibre& f = *w.running;
  w.error = thread_name(f) + ": " + message;
  f.state = FibreState::Done;
  to_scheduler(w, f, true);
  __builtin_unreachable();  // the scheduler never resumes a failed fibre
}

void block_until_changed(const uint64_t* gen, uint64_t value) {
  Worker& w = *t_worker;
  Fibre& f = *w.running;
  f.state = FibreState::Blocked;
  f.wait_gen = gen;
  f.wait_value = value;
  to_scheduler(w, f, false);
}

// Arrival at a collective of `expected` threads; returns the generation it completes.
uint64_t arrive(Collective& c, int expected, const char* what, const std::source_location& where, int lane,
                const uint64_t* words) {
  if (c.arrived == 0) {
    c.what = what;
    c.file = where.file_name();
    c.line = where.line();
    c.column = where.column();
  } else if (c.line != where.line() || c.column != where.column() || std::strcmp(c.what, what) != 0 ||
             std::strcmp(c.file, where.file_name()) != 0) {
    fail(std::string("diverged: ") + what + " at " + site(where.file_name(), where.line()) + " while " +
         std::to_string(c.arrived) + " other thread(s) of its " + (expected == 32 ? "warp" : "block") + " wait at " +
         std::string(c.what) + " at " + site(c.file, c.line));
  }
  const uint64_t gen = c.gen;
  if (words) std::memcpy(c.slots[gen & 1][lane], words, sizeof c.slots[0][0]);
  if (++c.arrived == expected) {
    c.arrived = 0;
    ++c.gen;
  } else {
    block_until_changed(&c.gen, gen);
  }
  return gen;
}

void fibre_entry() {
  Worker& w = *t_worker;
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(nullptr, &w.sched_stack, &w.sched_stack_size);
#endif
  std::string thrown;
  try {
    w.launch->body(w.launch->arg);
  } catch (const std::exception& e) {  // kernels do not throw; the emulator's own failures might
    thrown = e.what();
  }
  if (!thrown.empty()) fail("exception: " + thrown);
  Fibre& f = *w.running;
  f.state = FibreState::Done;
  to_scheduler(w, f, true);
  __builtin_unreachable();
}

std::string deadlock_report(const Worker& w) {
  int done = 0;
  for (const Fibre& f : w.fibres) done += f.state == FibreState::Done;
  std::string r = "deadlock: ";
  if (w.block_bar.arrived)
    r += std::to_string(w.block_bar.arrived) + " thread(s) wait at " + std::string(w.block_bar.what) + " at " +
         site(w.block_bar.file, w.block_bar.line) + "; ";
  for (size_t i = 0; i < w.warps.size(); ++i) {
    const Collective& c = w.warps[i];
    if (c.arrived)
      r += std::to_string(c.arrived) + " lane(s) of warp " + std::to_string(i) + " wait at " + std::string(c.what) +
           " at " + site(c.file, c.line) + "; ";
  }
  r += std::to_string(done) + " of " + std::to_string(w.fibres.size()) +
       " thread(s) have exited (a barrier or collective must be reached by all threads of the block or warp)";
  return r;
}

// Runs block `b` of the launch on this worker; false (and w.error) on an error.
bool run_block(Worker& w, int64_t b) {
  Launch& L = *w.launch;
  const int n = L.threads;
  const dim3 bidx(unsigned(b % L.grid.x), unsigned(b / L.grid.x % L.grid.y), unsigned(b / L.grid.x / L.grid.y));
  w.rng.seed(L.seed ^ (uint64_t(b) * 0x9E3779B97F4A7C15ull));
  w.shared_seen.clear();
  w.block_bar = Collective{};
  for (Collective& c : w.warps) c = Collective{};
  for (int t = 0; t < n; ++t) {
    Fibre& f = w.fibres[size_t(t)];
    f.st.thread_idx = {unsigned(t) % L.block.x, unsigned(t) / L.block.x % L.block.y,
                       unsigned(t) / L.block.x / L.block.y};
    f.st.block_idx = {bidx.x, bidx.y, bidx.z};
    f.st.block_dim = L.block;
    f.st.grid_dim = L.grid;
    f.state = FibreState::Ready;
    f.tid = t;
    f.stack = w.stacks[size_t(t)];
#if defined(__SANITIZE_ADDRESS__)
    __asan_unpoison_memory_region(f.stack.base, f.stack.size);  // frames of fibres that never returned
#endif
    init_context(f.ctx, f.stack, fibre_entry);
  }
  int live = n;
  while (live > 0) {
    std::shuffle(w.order.begin(), w.order.end(), w.rng);
    bool ran = false;
    for (int t : w.order) {
      Fibre& f = w.fibres[size_t(t)];
      if (f.state == FibreState::Done) continue;
      if (f.state == FibreState::Blocked) {
        if (*f.wait_gen == f.wait_value) continue;
        f.state = FibreState::Ready;
      }
      w.running = &f;
      current = &f.st;
      run_fibre(w, f);
      current = nullptr;
      ran = true;
      if (!w.error.empty()) return false;
      if (f.state == FibreState::Done) --live;
    }
    if (!ran) {
      w.error = "block (" + std::to_string(bidx.x) + "," + std::to_string(bidx.y) + "," + std::to_string(bidx.z) +
                "): " + deadlock_report(w);
      return false;
    }
  }
  return true;
}

void worker_main(Launch* L) {
  Worker w;
  w.launch = L;
  t_worker = &w;
  try {
    for (int t = 0; t < L->threads; ++t) w.stacks.push_back(take_stack());
    w.fibres.resize(size_t(L->threads));
    w.warps.resize(size_t(L->threads / 32));
    w.order.resize(size_t(L->threads));
    for (int t = 0; t < L->threads; ++t) w.order[size_t(t)] = t;
    const int64_t blocks = int64_t(L->grid.x) * L->grid.y * L->grid.z;
    while (!L->stop.load()) {
      const int64_t b = L->next.fetch_add(1);
      if (b >= blocks) break;
      if (!run_block(w, b)) {
        std::lock_guard<std::mutex> lock(L->mu);
        if (L->error.empty()) L->error = w.error;
        L->stop = true;
      }
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(L->mu);
    if (L->error.empty()) L->error = e.what();
    L->stop = true;
  }
  give_stacks(w.stacks);  // abandoned fibres of a failed block hold nothing else
  t_worker = nullptr;
}

}  // namespace

void set_error(cudaError_t e, const std::string& text) {
  t_last_error = t_error_code = e;
  t_error_text = text;
}

// ---- device-side entry points ----------------------------------------------------------

const uint64_t (*warp_exchange(unsigned mask, uint64_t w0, uint64_t w1, uint64_t w2, const char* what,
                               const std::source_location& where))[3] {
  Worker& w = *t_worker;
  Fibre& f = *w.running;
  if (mask != 0xffffffffu) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s with mask 0x%08x or width < 32 at ", what, mask);
    fail(buf + site(where.file_name(), where.line()) + ": only whole-warp collectives are emulated");
  }
  const uint64_t words[3] = {w0, w1, w2};
  const uint64_t gen = arrive(w.warps[size_t(f.tid / 32)], 32, what, where, f.tid % 32, words);
  return w.warps[size_t(f.tid / 32)].slots[gen & 1];
}

void syncthreads(const std::source_location& where) {
  Worker& w = *t_worker;
  arrive(w.block_bar, w.launch->threads, "__syncthreads", where, 0, nullptr);
}

void shared_declared(void* p, size_t bytes) {
  Worker& w = *t_worker;
  if (std::find(w.shared_seen.begin(), w.shared_seen.end(), p) != w.shared_seen.end()) return;
  w.shared_seen.push_back(p);
  std::memset(p, 0xff, bytes);  // NaN floats, -1 integers: what no thread of the block wrote reads as garbage
}

namespace {

std::string describe(const char* name, dim3 grid, dim3 block) {
  return std::string("launch of ") + name + " (grid " + std::to_string(grid.x) + "x" + std::to_string(grid.y) + "x" +
         std::to_string(grid.z) + ", block " + std::to_string(block.x) + "x" + std::to_string(block.y) + "x" +
         std::to_string(block.z) + ")";
}

}  // namespace

bool valid_launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  const char* why = nullptr;
  if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
      grid.z > 65535 || block.z > 64)
    why = ": invalid configuration";
  else if (threads % 32 != 0)
    why = ": blocks that are not whole warps are not emulated";
  else if (shared_bytes != 0)
    why = ": dynamic shared memory is not emulated";
  if (why) set_error(cudaErrorInvalidConfiguration, describe(name, grid, block) + why);
  return !why;
}

void run_grid(const char* name, dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*), void* arg) {
  if (t_worker)
    throw std::logic_error("hi_emu: a kernel launched from a kernel (dynamic parallelism is not emulated)");
  const uint64_t launch_index = g_launches.fetch_add(1);
  t_log += name;
  t_log += '\n';
  if (!valid_launch(name, grid, block, shared_bytes)) return;
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  Launch L;
  L.name = name;
  L.grid = grid;
  L.block = block;
  L.threads = int(threads);
  L.body = body;
  L.arg = arg;
  L.seed = g_seed.load() + 0x9E3779B97F4A7C15ull * launch_index;
  const int64_t blocks = int64_t(grid.x) * grid.y * grid.z;
  int workers = g_workers.load();
  if (workers <= 0) workers = std::clamp(int(std::thread::hardware_concurrency()), 1, 8);
  workers = int(std::min<int64_t>(workers, blocks));
  // The calling thread is one worker; the others are threads of their own
  // (fewer when the system refuses more: the blocks get done all the same).
  std::vector<std::thread> pool;
  try {
    for (int i = 1; i < workers; ++i) pool.emplace_back(worker_main, &L);
  } catch (const std::system_error&) {
  }
  worker_main(&L);
  for (std::thread& t : pool) t.join();
  if (!L.error.empty()) set_error(cudaErrorLaunchFailure, describe(name, grid, block) + ": " + L.error);
}

}  // namespace hi_emu

// ---- mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32, zero accumulator ----------------
// From the PTX ISA, "Matrix Fragments for mma.m16n8k16 with integer type"
// (groupID = lane >> 2, threadID_in_group = lane % 4; element i of a .b32
// register is its byte i, low to high):
//   A (16 x 16, .row): a_i, i < 8, of registers {a0, a1}: row groupID (i < 4)
//                      or groupID + 8 (i >= 4), column threadID_in_group*4 + (i & 3)
//   B (16 x 8, .col):  b_i, i < 4, of b0: row threadID_in_group*4 + i, column groupID
//   D (16 x 8, .s32):  d_i, i < 4: row groupID (i < 2) or groupID + 8,
//                      column threadID_in_group*2 + (i & 1)
// A warp collective: every lane passes its fragments, then computes its own
// four outputs from the whole A and B.
void hi_emu_mma_m16n8k16_s8(int (&d)[4], int a0, int a1, int b0, const std::source_location& where) {
  const auto frag = hi_emu::warp_exchange(0xffffffffu, uint32_t(a0), uint32_t(a1), uint32_t(b0),
                                          "mma.sync.m16n8k16.s8", where);
  int8_t A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int group = lane >> 2, tig = lane % 4;
    for (int i = 0; i < 8; ++i) {
      const uint32_t reg = uint32_t(frag[lane][i < 4 ? 0 : 1]);
      A[i < 4 ? group : group + 8][tig * 4 + (i & 3)] = int8_t(reg >> (8 * (i & 3)));
    }
    for (int i = 0; i < 4; ++i) B[tig * 4 + i][group] = int8_t(uint32_t(frag[lane][2]) >> (8 * i));
  }
  const int lane = int(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32;
  const int group = lane >> 2, tig = lane % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = i < 2 ? group : group + 8, col = tig * 2 + (i & 1);
    int s = 0;
    for (int kk = 0; kk < 16; ++kk) s += int(A[row][kk]) * int(B[kk][col]);
    d[i] = s;
  }
}

// ---- runtime API --------------------------------------------------------------------------
extern "C" {

cudaError_t cudaGetLastError() {
  const cudaError_t e = hi_emu::t_last_error;
  hi_emu::t_last_error = cudaSuccess;
  return e;
}

const char* cudaGetErrorString(cudaError_t e) {
  if (e == cudaSuccess) return "no error";
  if (e == hi_emu::t_error_code && !hi_emu::t_error_text.empty()) return hi_emu::t_error_text.c_str();
  thread_local std::string generic;
  generic = "CUDA error " + std::to_string(int(e)) + " (the emulation's last message was about another)";
  return generic.c_str();
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  if (attr != cudaDevAttrMultiProcessorCount) return cudaErrorInvalidConfiguration;
  *value = hi_emu::g_sm_count.load();
  return cudaSuccess;
}

}  // extern "C"

// ---- settings, for the tests (ctypes) ---------------------------------------------------------
extern "C" {
void hi_emu_set_sm_count(int n) { hi_emu::g_sm_count = n; }
void hi_emu_set_workers(int n) { hi_emu::g_workers = n; }
// Seeds the order of threads between synchronisation points: the launches
// that follow get the same orders for the same seed.
void hi_emu_set_seed(uint64_t seed) {
  hi_emu::g_seed = seed;
  hi_emu::g_launches = 0;
}
// The kernels launched by this host thread since the last call, one name a line.
const char* hi_emu_take_log() {
  thread_local std::string taken;
  taken.swap(hi_emu::t_log);
  hi_emu::t_log.clear();
  return taken.c_str();
}
}
