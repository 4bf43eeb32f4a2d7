// Tests of ThreadPool: every task runs exactly once, back-to-back jobs never mix (the spin/generation logic),
// ParallelFor chunks are contiguous and cover [0, n). Mirrors no reference class.
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace idefics {
namespace {

TEST(ThreadPoolTest, ManyBackToBackJobsRunEachTaskOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int job = 0; job < 3000; ++job) {
      const int64_t n = 1 + job % 7;
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelTasks(n, [&](int64_t t) { hits[t].fetch_add(1); });
      for (int64_t t = 0; t < n; ++t) ASSERT_EQ(hits[t].load(), 1) << "job " << job << " task " << t;
    }
  }
}

TEST(ThreadPoolTest, ParallelForCoversRangeInContiguousChunks) {
  ThreadPool pool(3);
  for (int64_t n : {1, 2, 5, 100, 1001}) {
    std::vector<std::atomic<int>> hits(n);
    std::atomic<int> chunks{0};
    pool.ParallelFor(n, 4, [&](int64_t b, int64_t e) {
      EXPECT_LT(b, e);
      chunks.fetch_add(1);
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1);
    EXPECT_LE(chunks.load(), 3);
  }
}

TEST(ThreadPoolTest, DefaultSizeIsPhysicalCores) {
  ThreadPool pool;
  EXPECT_EQ(pool.size(), PhysicalCoreCount());
  EXPECT_GE(pool.size(), 1);
}

}  // namespace
}  // namespace idefics
