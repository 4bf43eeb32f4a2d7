// AVX2 + FMA inner loops of the probes in probe.h: a streaming read and register-only FMA chains (AVX2 has no
// bf16 dot product; the engine runs bf16 requests on float32 FMA there, so the bf16 probe measures that).
// Mirrors no reference class.
#include <immintrin.h>

#include <cstdint>

#include "kernels/simd_avx2.h"

namespace idefics::kern::avx2 {

double ReadSum(const float* p, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p + i));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(p + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_loadu_ps(p + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_loadu_ps(p + i + 24));
  }
  return Hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

// 12 independent accumulator chains (named registers; an array would be kept in memory) hide the latency of
// two FMA pipes.
#define IDEFICS_PROBE_12(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)
double FmaLoop(int64_t iters, bool bf16) {
  (void)bf16;
#define IDEFICS_PROBE_INIT(j) __m256 a##j = _mm256_set1_ps(0.001f * j);
  IDEFICS_PROBE_12(IDEFICS_PROBE_INIT)
  const __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
#define IDEFICS_PROBE_FMA(j) a##j = _mm256_fmadd_ps(a##j, m, c);
  for (int64_t i = 0; i < iters; ++i) {
    IDEFICS_PROBE_12(IDEFICS_PROBE_FMA)
  }
#define IDEFICS_PROBE_SUM(j) s = _mm256_add_ps(s, a##j);
  __m256 s = _mm256_setzero_ps();
  IDEFICS_PROBE_12(IDEFICS_PROBE_SUM)
  volatile float sink = Hsum8(s);
  (void)sink;
  return static_cast<double>(iters) * 12 * 8 * 2;  // an FMA is 2 flop per lane
}

}  // namespace idefics::kern::avx2
