// Tests of the machine probes used by `idefics bench`: they finish and report plausible positive rates.
// Mirrors no reference class.
#include "kernels/probe.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/thread_pool.h"
#include "kernels/cpu_features.h"

namespace idefics {
namespace {

TEST(ProbeTest, PeakFlopsIsPositive) {
  ThreadPool pool(1);
  const double f32 = MeasurePeakGflops(pool, false);
  const double bf16 = MeasurePeakGflops(pool, true);
  EXPECT_TRUE(std::isfinite(f32) && f32 > 0.1) << f32;
  EXPECT_TRUE(std::isfinite(bf16) && bf16 > 0.1) << bf16;
}

TEST(ProbeTest, Int8PeakIsPositiveWhereVnniRuns) {
  ThreadPool pool(1);
  const double ops = MeasurePeakInt8Gops(pool);
  if (ActiveIsa() != Isa::kAvx512) {
    EXPECT_EQ(ops, 0.0);  // no int8 GEMM below AVX-512 VNNI
  } else {
    EXPECT_TRUE(std::isfinite(ops) && ops > 0.1) << ops;
  }
}

TEST(ProbeTest, ReadBandwidthIsPositive) {
  ThreadPool pool(2);
  const double gbs = MeasureReadBandwidthGBs(pool);
  EXPECT_TRUE(std::isfinite(gbs) && gbs > 0.1) << gbs;
}

}  // namespace
}  // namespace idefics
