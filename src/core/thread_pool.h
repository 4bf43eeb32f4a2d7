// A fixed pool of worker threads for data-parallel loops. Work is split into contiguous ranges in a fixed
// way that depends only on n and the thread count, so per-range reductions stay deterministic.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace idefics {

class ThreadPool {
 public:
  // n_threads <= 0 means the number of physical cores (see PhysicalCoreCount).
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) over [0, n) split into at most size() contiguous chunks of at least `grain` items,
  // running them on the pool (the caller runs one chunk). Returns when all are done. Not reentrant.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

  // Calls fn(task) for task in [0, n_tasks), tasks handed out dynamically; fn must make the result
  // independent of which thread runs which task.
  void ParallelTasks(int64_t n_tasks, const std::function<void(int64_t task)>& fn);

 private:
  void WorkerLoop(int index);
  // Claims the next task of generation `gen`; false when none is left (or a newer job has started).
  bool Claim(uint64_t gen, int64_t* task);
  void FinishTask();

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t job_tasks_ = 0;
  int64_t next_task_ = 0;
  int64_t tasks_done_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  // Lock-free mirrors read while spinning, so a worker picks up a new job (and the caller sees the end of
  // one) within microseconds instead of a futex wake-up; after kSpinIterations they block on the condition
  // variables.
  std::atomic<uint64_t> spin_generation_{0};
  std::atomic<bool> spin_done_{false};
  std::atomic<bool> spin_stop_{false};
};

// Physical cores (not SMT siblings) available to this process; at least 1.
int PhysicalCoreCount();

}  // namespace idefics
