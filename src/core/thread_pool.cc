// ThreadPool: workers spin briefly, then wait on a condition variable; tasks are claimed under a mutex and
// tagged with the job generation so a late worker can never run a task of the next job with a stale function.
#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IDEFICS_CPU_RELAX() _mm_pause()
#else
#define IDEFICS_CPU_RELAX() ((void)0)
#endif

namespace idefics {

namespace {
// ~50-100 µs of pause instructions: long enough to bridge the gap between the matrix products of one decode
// step, short enough not to steal a shared machine's cores when idle.
constexpr int kSpinIterations = 1 << 14;
}  // namespace

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
  for (int i = 1; i < n_threads_; ++i) {
    try {
      workers_.emplace_back([this, i] { WorkerLoop(i); });
    } catch (const std::system_error&) {
      // The system refused another thread (a process limit): run with the ones there are. Results do not
      // depend on the thread count, so this only costs speed.
      n_threads_ = i;
      break;
    }
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    spin_stop_.store(true);
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

bool ThreadPool::Claim(uint64_t gen, int64_t* task) {
  std::lock_guard<std::mutex> lock(mu_);
  if (generation_ != gen || job_ == nullptr || next_task_ >= job_tasks_) return false;
  *task = next_task_++;
  return true;
}

void ThreadPool::FinishTask() {
  std::lock_guard<std::mutex> lock(mu_);
  if (++tasks_done_ == job_tasks_) {
    spin_done_.store(true, std::memory_order_release);
    cv_done_.notify_all();
  }
}

void ThreadPool::WorkerLoop(int) {
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpinIterations; ++i) {
      if (spin_generation_.load(std::memory_order_acquire) != seen ||
          spin_stop_.load(std::memory_order_relaxed))
        break;
      IDEFICS_CPU_RELAX();
    }
    const std::function<void(int64_t)>* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    int64_t task;
    while (Claim(seen, &task)) {
      (*job)(task);
      FinishTask();
    }
  }
}

void ThreadPool::ParallelTasks(int64_t n_tasks, const std::function<void(int64_t task)>& fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t);
    return;
  }
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_tasks_ = n_tasks;
    next_task_ = 0;
    tasks_done_ = 0;
    gen = ++generation_;
    spin_done_.store(false, std::memory_order_relaxed);
    spin_generation_.store(gen, std::memory_order_release);
  }
  cv_work_.notify_all();
  int64_t task;
  while (Claim(gen, &task)) {
    fn(task);
    FinishTask();
  }
  for (int i = 0; i < kSpinIterations && !spin_done_.load(std::memory_order_acquire); ++i)
    IDEFICS_CPU_RELAX();
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
