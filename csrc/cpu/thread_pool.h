// A persistent pool of worker threads for the CPU backend.
//
// parallel_for hands out task indices from an atomic counter, so uneven tasks
// balance themselves; the calling thread works too. Between calls workers spin
// briefly (a decode step makes hundreds of small calls, and a condition-variable
// wake-up costs tens of microseconds each), then sleep on a condition variable,
// so an idle pool costs nothing.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hi {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Runs fn(task) for task in [0, n_tasks); returns when all are done. The
  // first exception thrown by a task is rethrown here.
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& fn);

 private:
  void worker_loop();
  void run_tasks();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel_for at a time
  std::mutex mutex_;       // guards sleepers_ and error_; pairs with wake_
  std::condition_variable wake_;
  int sleepers_ = 0;
  std::atomic<uint64_t> generation_{0};    // bumped once per parallel_for call
  std::atomic<bool> stopping_{false};
  std::atomic<int> pending_workers_{0};    // workers still inside the current call
  // Set before generation_ is bumped (release) and read after (acquire):
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::exception_ptr error_;
};

// Runs fn(begin, end) over [0, n) cut into pieces of `grain` items on `pool`.
void parallel_ranges(ThreadPool& pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// The pool CPU kernels run on: the calling thread's bound pool (a CPU device
// binds its own while it runs a stage), else the process-wide one (default
// size: hardware threads).
ThreadPool& cpu_pool();
// Binds `pool` to the calling thread for the scope's lifetime (nestable).
class BindPool {
 public:
  explicit BindPool(ThreadPool* pool);
  ~BindPool();
  BindPool(const BindPool&) = delete;
  BindPool& operator=(const BindPool&) = delete;

 private:
  ThreadPool* previous_;
};
// Replaces the pool; call it while no CPU kernel is running.
void set_cpu_threads(int n_threads);
int cpu_threads();

}  // namespace hi
