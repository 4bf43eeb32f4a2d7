// ThreadPool: workers wait on a condition variable; tasks are claimed with a shared counter.
#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace idefics {

int PhysicalCoreCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int logical = std::max(1u, std::thread::hardware_concurrency());
  if (sched_getaffinity(0, sizeof(set), &set) == 0) logical = std::max(1, CPU_COUNT(&set));
  // Count distinct (package, core) pairs among the CPUs we may run on.
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream c(base + "core_id"), p(base + "physical_package_id");
    std::string core, pkg;
    if (!(c >> core) || !(p >> pkg)) return logical;
    cores.emplace(pkg, core);
  }
  return cores.empty() ? logical : static_cast<int>(cores.size());
}

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = n_threads > 0 ? n_threads : PhysicalCoreCount();
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(int) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t)>* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    for (;;) {
      int64_t task;
      {
        std::lock_guard<std::mutex> lock(mu_);
        // A worker that woke late must not claim tasks of a newer job with the old (dangling) function.
        if (generation_ != seen || next_task_ >= job_tasks_) break;
        task = next_task_++;
      }
      (*job)(task);
      std::lock_guard<std::mutex> lock(mu_);
      if (++tasks_done_ == job_tasks_) cv_done_.notify_all();
    }
  }
}

void ThreadPool::ParallelTasks(int64_t n_tasks, const std::function<void(int64_t task)>& fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_tasks_ = n_tasks;
    next_task_ = 0;
    tasks_done_ = 0;
    ++generation_;
  }
  cv_work_.notify_all();
  for (;;) {
    int64_t task;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (next_task_ >= job_tasks_) break;
      task = next_task_++;
    }
    fn(task);
    std::lock_guard<std::mutex> lock(mu_);
    if (++tasks_done_ == job_tasks_) cv_done_.notify_all();
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [&] { return tasks_done_ == job_tasks_; });
  job_ = nullptr;
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(n_threads_, (n + grain - 1) / grain));
  if (chunks == 1) {
    fn(0, n);
    return;
  }
  const int64_t per = n / chunks, extra = n % chunks;
  ParallelTasks(chunks, [&](int64_t c) {
    const int64_t begin = c * per + std::min(c, extra);
    const int64_t end = begin + per + (c < extra ? 1 : 0);
    fn(begin, end);
  });
}

}  // namespace idefics
