#include "thread_pool.h"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

namespace hi {

namespace {

// Spin iterations before a worker sleeps / before a waiter starts yielding.
constexpr int kSpinBeforeSleep = 1 << 14;
constexpr int kSpinBeforeYield = 1 << 10;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  if (n_threads < 1) throw std::invalid_argument("thread count must be >= 1, got " + std::to_string(n_threads));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_tasks() {
  for (;;) {
    const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) return;
    try {
      (*fn_)(task);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      next_task_.store(n_tasks_, std::memory_order_relaxed);  // stop handing out work
    }
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen;
    int spins = 0;
    while ((gen = generation_.load(std::memory_order_acquire)) == seen &&
           !stopping_.load(std::memory_order_acquire)) {
      if (++spins < kSpinBeforeSleep) {
        if (spins > kSpinBeforeYield) std::this_thread::yield();  // share a core politely when oversubscribed
        cpu_relax();
        continue;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      ++sleepers_;
      wake_.wait(lock, [&] {
        return generation_.load(std::memory_order_acquire) != seen || stopping_.load(std::memory_order_acquire);
      });
      --sleepers_;
    }
    if (stopping_.load(std::memory_order_acquire)) return;
    seen = gen;
    run_tasks();
    pending_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  if (n_tasks <= 0) return;
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  if (workers_.empty() || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t);
    return;
  }
  fn_ = &fn;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  error_ = nullptr;
  pending_workers_.store(int(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  {
    // Under the mutex, so a worker between its last spin and its wait cannot miss this.
    std::lock_guard<std::mutex> lock(mutex_);
    if (sleepers_ > 0) wake_.notify_all();
  }
  run_tasks();
  for (int spins = 0; pending_workers_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins > kSpinBeforeYield) std::this_thread::yield();
    cpu_relax();
  }
  fn_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

void parallel_ranges(ThreadPool& pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (grain < 1) grain = 1;
  const int64_t n_tasks = (n + grain - 1) / grain;
  pool.parallel_for(n_tasks, [&](int64_t task) { fn(task * grain, std::min(n, (task + 1) * grain)); });
}

namespace {
std::mutex g_pool_mutex;
std::unique_ptr<ThreadPool> g_pool;

int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}
}  // namespace

static thread_local ThreadPool* t_bound_pool = nullptr;

BindPool::BindPool(ThreadPool* pool) : previous_(t_bound_pool) { t_bound_pool = pool; }
BindPool::~BindPool() { t_bound_pool = previous_; }

ThreadPool& cpu_pool() {
  if (t_bound_pool) return *t_bound_pool;
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_unique<ThreadPool>(default_threads());
  return *g_pool;
}

void set_cpu_threads(int n_threads) {
  if (n_threads < 1) throw std::invalid_argument("thread count must be >= 1, got " + std::to_string(n_threads));
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (g_pool && g_pool->size() == n_threads) return;
  g_pool.reset();
  g_pool = std::make_unique<ThreadPool>(n_threads);
}

int cpu_threads() { return cpu_pool().size(); }

}  // namespace hi
