// AVX-512 inner loops of the probes in probe.h: a streaming read and register-only FMA / vdpbf16ps chains.
// Mirrors no reference class.
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsic headers as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <cstdint>

namespace idefics::kern::avx512 {

double ReadSum(const float* p, int64_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(p + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// 12 independent accumulator chains (named registers; an array would be kept in memory) hide the latency of
// two FMA pipes.
#define IDEFICS_PROBE_12(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)
double FmaLoop(int64_t iters, bool bf16) {
#define IDEFICS_PROBE_INIT(j) __m512 a##j = _mm512_set1_ps(0.001f * j);
  IDEFICS_PROBE_12(IDEFICS_PROBE_INIT)
  if (bf16) {
    const __m512bh u = (__m512bh)_mm512_set1_epi32(0x3f803f80), v = (__m512bh)_mm512_set1_epi32(0x33803380);
#define IDEFICS_PROBE_DOT(j) a##j = _mm512_dpbf16_ps(a##j, u, v);
    for (int64_t i = 0; i < iters; ++i) {
      IDEFICS_PROBE_12(IDEFICS_PROBE_DOT)
    }
  } else {
    const __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
#define IDEFICS_PROBE_FMA(j) a##j = _mm512_fmadd_ps(a##j, m, c);
    for (int64_t i = 0; i < iters; ++i) {
      IDEFICS_PROBE_12(IDEFICS_PROBE_FMA)
    }
  }
#define IDEFICS_PROBE_SUM(j) s = _mm512_add_ps(s, a##j);
  __m512 s = _mm512_setzero_ps();
  IDEFICS_PROBE_12(IDEFICS_PROBE_SUM)
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  // Per lane: an FMA is 2 flop; a bf16 dot product step is 2 multiplies + 2 adds.
  return static_cast<double>(iters) * 12 * 16 * (bf16 ? 4 : 2);
}

double DotI8Loop(int64_t iters) {
#define IDEFICS_PROBE_IINIT(j) __m512i a##j = _mm512_set1_epi32(j);
  IDEFICS_PROBE_12(IDEFICS_PROBE_IINIT)
  const __m512i u = _mm512_set1_epi8(3), v = _mm512_set1_epi8(-2);
#define IDEFICS_PROBE_IDOT(j) a##j = _mm512_dpbusd_epi32(a##j, u, v);
  for (int64_t i = 0; i < iters; ++i) {
    IDEFICS_PROBE_12(IDEFICS_PROBE_IDOT)
  }
#define IDEFICS_PROBE_ISUM(j) s = _mm512_add_epi32(s, a##j);
  __m512i s = _mm512_setzero_si512();
  IDEFICS_PROBE_12(IDEFICS_PROBE_ISUM)
  // Kept live through a store (the int32 sums wrap by design; _mm512_reduce_add_epi32 is signed C arithmetic).
  alignas(64) uint32_t lanes[16];
  _mm512_store_si512(lanes, s);
  volatile uint32_t sink = lanes[0] ^ lanes[15];
  (void)sink;
  // Per instruction: 16 lanes × 4 byte products, each a multiply and an add.
  return static_cast<double>(iters) * 12 * 16 * 4 * 2;
}

}  // namespace idefics::kern::avx512
