// Memory bandwidth and peak FLOPS probes (see probe.h); the SIMD inner loops live in probe_avx512.cc and
// probe_avx2.cc.
// Mirrors no reference class.
#include "kernels/probe.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul_kernels.h"

namespace idefics {

#if defined(IDEFICS_HAVE_SIMD)
namespace kern::avx512 {
double ReadSum(const float* p, int64_t n);
double FmaLoop(int64_t iters, bool bf16);  // returns flops done (and keeps the result live)
double DotI8Loop(int64_t iters);           // returns int8 ops done (vpdpbusd)
}  // namespace kern::avx512
namespace kern::avx2 {
double ReadSum(const float* p, int64_t n);
double FmaLoop(int64_t iters, bool bf16);  // float32 FMA whatever bf16 says (no bf16 dot on AVX2)
}  // namespace kern::avx2
#endif

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double ReadSumScalar(const float* p, int64_t n) {
  float s[8] = {};
  for (int64_t i = 0; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += p[i + j];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

double FmaLoopScalar(int64_t iters) {
  float a[8] = {1.f, 1.1f, 1.2f, 1.3f, 1.4f, 1.5f, 1.6f, 1.7f};
  const float m = 0.999999f, c = 1e-7f;
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 8; ++j) a[j] = a[j] * m + c;
  volatile float sink = a[0] + a[7];
  (void)sink;
  return 2.0 * 8 * iters;
}

bool Simd() {
  return ActiveIsa() == Isa::kAvx512;
}

double ReadSumBest(const float* p, int64_t n) {
#if defined(IDEFICS_HAVE_SIMD)
  if (Simd()) return kern::avx512::ReadSum(p, n);
  if (ActiveIsa() == Isa::kAvx2) return kern::avx2::ReadSum(p, n);
#endif
  return ReadSumScalar(p, n);
}

double FmaLoopBest(int64_t iters, bool bf16) {
#if defined(IDEFICS_HAVE_SIMD)
  if (Simd()) return kern::avx512::FmaLoop(iters, bf16);
  if (ActiveIsa() == Isa::kAvx2) return kern::avx2::FmaLoop(iters, bf16);
#endif
  (void)bf16;
  return FmaLoopScalar(iters);
}

}  // namespace

double MeasureReadBandwidthGBs(ThreadPool& pool) {
  const int64_t n = (int64_t{256} << 20) / 4;
  kern::AlignedPtr<float> buf = kern::AllocAligned<float>(n);
  // Touch every page from the thread that will read it (first-touch placement).
  pool.ParallelFor(n, 1 << 16, [&](int64_t b, int64_t e) { std::memset(buf.get() + b, 0, 4 * (e - b)); });
  std::atomic<double> sink{0};
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    const auto t0 = Clock::now();
    pool.ParallelFor(n, 1 << 16, [&](int64_t b, int64_t e) {
      const double s = ReadSumBest(buf.get() + b, e - b);
      sink.store(sink.load() + s);
    });
    best = std::max(best, 4.0 * n / Seconds(t0, Clock::now()) / 1e9);
  }
  return best;
}

double MeasurePeakInt8Gops(ThreadPool& pool) {
#if defined(IDEFICS_HAVE_SIMD)
  if (!Simd()) return 0;
  const int64_t tasks = pool.size();
  std::vector<double> ops(tasks);
  double best = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const auto t0 = Clock::now();
    pool.ParallelTasks(tasks, [&](int64_t t) { ops[t] = kern::avx512::DotI8Loop(1000000); });
    double total = 0;
    for (double f : ops) total += f;
    best = std::max(best, total / Seconds(t0, Clock::now()) / 1e9);
  }
  return best;
#else
  (void)pool;
  return 0;
#endif
}

double MeasurePeakGflops(ThreadPool& pool, bool bf16) {
  const int64_t tasks = pool.size();
  const int64_t iters = ActiveIsa() != Isa::kScalar ? (Simd() && bf16 ? 2000000 : 4000000) : 20000000;
  std::vector<double> flops(tasks);
  double best = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const auto t0 = Clock::now();
    pool.ParallelTasks(tasks, [&](int64_t t) { flops[t] = FmaLoopBest(iters, bf16); });
    double total = 0;
    for (double f : flops) total += f;
    best = std::max(best, total / Seconds(t0, Clock::now()) / 1e9);
  }
  return best;
}

}  // namespace idefics
