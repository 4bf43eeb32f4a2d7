// AVX2 + FMA versions of the ops.h vector kernels (8 lanes; tails by masked loads/stores); twins in
// ops_scalar.cc (tests/kernels/ops_test.cc compares). Mirrors torch's float32 CPU formulas for rms_norm /
// layer_norm / softmax / silu / gelu-tanh.
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/ops_kernels.h"
#include "kernels/simd_avx2.h"

namespace idefics::kern::avx2 {

namespace {

constexpr float kGeluBeta = 0.7978845608028654f;
constexpr float kGeluKappa = 0.044715f;

// x / (1 + exp(-z)): the logistic of z scaled by x (SiLU with z = x, tanh-GELU with z = 2u).
inline __m256 XSigmoid(__m256 x, __m256 z) {
  const __m256 e = Exp8(_mm256_sub_ps(_mm256_setzero_ps(), z));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

inline __m256 Gelu8(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 u = _mm256_mul_ps(_mm256_set1_ps(kGeluBeta),
                                 _mm256_add_ps(x, _mm256_mul_ps(_mm256_set1_ps(kGeluKappa), x3)));
  return XSigmoid(x, _mm256_add_ps(u, u));
}

// Sum of 4 partial-sum vectors in a fixed order.
inline float Reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
  return Hsum8(_mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
}

template <typename F>
inline void Map(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = Mask8(n - i);
    _mm256_maskstore_ps(y + i, m, f(_mm256_maskload_ps(x + i, m)));
  }
}

template <typename F>
inline void Map2(const float* a, const float* b, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  if (i < n) {
    const __m256i m = Mask8(n - i);
    _mm256_maskstore_ps(y + i, m, f(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m)));
  }
}

// Sum over i of f(x[i]) with 4 vector accumulators; tail lanes load 0 and f(0, s) must leave s unchanged.
template <typename F>
inline float SumMap(const float* x, int64_t n, F f) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = f(_mm256_loadu_ps(x + i), s0);
    s1 = f(_mm256_loadu_ps(x + i + 8), s1);
    s2 = f(_mm256_loadu_ps(x + i + 16), s2);
    s3 = f(_mm256_loadu_ps(x + i + 24), s3);
  }
  for (; i < n; i += 8) s0 = f(_mm256_maskload_ps(x + i, Mask8(n - i)), s0);
  return Reduce4(s0, s1, s2, s3);
}

}  // namespace

float Dot(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i < n; i += 8) {
    const __m256i m = Mask8(n - i);
    s0 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s0);
  }
  return Reduce4(s0, s1, s2, s3);
}

void Axpy(float alpha, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(alpha);
  // One FMA (one rounding); the scalar twin rounds alpha·x first, so they may differ by an ulp.
  Map2(x, y, y, n, [&](__m256 a, __m256 b) { return _mm256_fmadd_ps(va, a, b); });
}

// Axpy per row of v (bitwise its definition); the AVX-512 version blocks it in registers.
void WeightedRows(const float* p, int64_t p_stride, int64_t rows, const float* v, int64_t v_stride, int64_t n,
                  int64_t d, float* out, int64_t out_stride) {
  WeightedRowsByAxpy(Axpy, p, p_stride, rows, v, v_stride, n, d, out, out_stride);
}

void Add(const float* a, const float* b, float* out, int64_t n) {
  Map2(a, b, out, n, [](__m256 u, __m256 v) { return _mm256_add_ps(u, v); });
}

void Mul(const float* a, const float* b, float* out, int64_t n) {
  Map2(a, b, out, n, [](__m256 u, __m256 v) { return _mm256_mul_ps(u, v); });
}

void Scale(float* x, float s, int64_t n) {
  const __m256 vs = _mm256_set1_ps(s);
  Map(x, x, n, [&](__m256 v) { return _mm256_mul_ps(v, vs); });
}

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y) {
  const float ss = SumMap(x, n, [](__m256 v, __m256 s) { return _mm256_fmadd_ps(v, v, s); });
  const float r = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  const __m256 vr = _mm256_set1_ps(r);
  if (w) {
    Map2(x, w, y, n, [&](__m256 v, __m256 g) { return _mm256_mul_ps(g, _mm256_mul_ps(v, vr)); });
  } else {
    Map(x, y, n, [&](__m256 v) { return _mm256_mul_ps(v, vr); });
  }
}

void LayerNorm(const float* x, const float* w, const float* b, int64_t n, float eps, float* y) {
  const float mean =
      SumMap(x, n, [](__m256 v, __m256 s) { return _mm256_add_ps(v, s); }) / static_cast<float>(n);
  const __m256 vm = _mm256_set1_ps(mean);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm),
                 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
  }
  for (; i < n; i += 8) {
    // Tail lanes load 0; mask (0 - mean) away so they add nothing to the variance.
    const __m256i m = Mask8(n - i);
    const __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm), _mm256_castsi256_ps(m));
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  const float var = Hsum8(_mm256_add_ps(s0, s1)) / static_cast<float>(n);
  const __m256 vr = _mm256_set1_ps(1.f / std::sqrt(var + eps));
  auto norm = [&](__m256 v, int64_t at, __m256i m, bool tail) {
    v = _mm256_mul_ps(_mm256_sub_ps(v, vm), vr);
    if (w) v = _mm256_mul_ps(v, tail ? _mm256_maskload_ps(w + at, m) : _mm256_loadu_ps(w + at));
    if (b) v = _mm256_add_ps(v, tail ? _mm256_maskload_ps(b + at, m) : _mm256_loadu_ps(b + at));
    return v;
  };
  // Plain loads/stores except for the tail (vmaskmovps stores are slow on AMD cores).
  const __m256i all = _mm256_set1_epi32(-1);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, norm(_mm256_loadu_ps(x + i), i, all, false));
  if (i < n) {
    const __m256i m = Mask8(n - i);
    _mm256_maskstore_ps(y + i, m, norm(_mm256_maskload_ps(x + i, m), i, m, true));
  }
}

void SoftmaxInPlace(float* x, int64_t n) {
  if (n <= 0) return;
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 vmax = ninf;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  if (i < n) {  // tail lanes count as -inf
    const __m256i m = Mask8(n - i);
    vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m)));
  }
  const __m256 mx = _mm256_set1_ps(Hmax8(vmax));
  __m256 s = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mx));
    _mm256_storeu_ps(x + i, e);
    s = _mm256_add_ps(s, e);
  }
  if (i < n) {
    const __m256i m = Mask8(n - i);
    const __m256 e =
        _mm256_and_ps(Exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), mx)), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(x + i, m, e);
    s = _mm256_add_ps(s, e);
  }
  const __m256 inv = _mm256_set1_ps(1.f / Hsum8(s));
  Map(x, x, n, [&](__m256 v) { return _mm256_mul_ps(v, inv); });
}

void Exp(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](__m256 v) { return Exp8(v); });
}

void Silu(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](__m256 v) { return XSigmoid(v, v); });
}

void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  Map2(gate, up, out, n, [](__m256 g, __m256 u) { return _mm256_mul_ps(XSigmoid(g, g), u); });
}

void GeluTanh(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](__m256 v) { return Gelu8(v); });
}

void ConvertF32ToBf16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        F32ToBf16x16(_mm256_loadu_ps(x + i), _mm256_loadu_ps(x + i + 8)));
  }
  if (i < n) {  // the last 1-15 values through a zero-padded buffer
    const int64_t left = n - i;
    alignas(32) float tmp[16] = {};
    alignas(32) uint16_t out[16];
    std::memcpy(tmp, x + i, sizeof(float) * left);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out),
                       F32ToBf16x16(_mm256_load_ps(tmp), _mm256_load_ps(tmp + 8)));
    std::memcpy(y + i, out, sizeof(uint16_t) * left);
  }
}

void ConvertBf16ToF32(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, Bf16x8ToF32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  if (i < n) {
    const int64_t left = n - i;
    alignas(16) uint16_t tmp[8] = {};
    std::memcpy(tmp, x + i, sizeof(uint16_t) * left);
    _mm256_maskstore_ps(y + i, Mask8(left),
                        Bf16x8ToF32(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp))));
  }
}

}  // namespace idefics::kern::avx2
