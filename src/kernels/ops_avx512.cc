// AVX-512 versions of the ops.h vector kernels; twins in ops_scalar.cc (tests/kernels/ops_test.cc compares).
// Mirrors torch's float32 CPU formulas for rms_norm / layer_norm / softmax / silu / gelu-tanh.
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsic headers as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ops_kernels.h"
#include "kernels/simd_avx512.h"

namespace idefics::kern::avx512 {

namespace {

constexpr float kGeluBeta = 0.7978845608028654f;
constexpr float kGeluKappa = 0.044715f;

// x / (1 + exp(-z)): the logistic of z scaled by x (SiLU with z = x, tanh-GELU with z = 2u).
inline __m512 XSigmoid(__m512 x, __m512 z) {
  const __m512 e = Exp16(_mm512_sub_ps(_mm512_setzero_ps(), z));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

inline __m512 Gelu16(__m512 x) {
  const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  const __m512 u = _mm512_mul_ps(_mm512_set1_ps(kGeluBeta),
                                 _mm512_add_ps(x, _mm512_mul_ps(_mm512_set1_ps(kGeluKappa), x3)));
  return XSigmoid(x, _mm512_add_ps(u, u));
}

// Sum of 4 partial-sum vectors in a fixed order.
inline float Reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
}

template <typename F>
inline void Map(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = Mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

template <typename F>
inline void Map2(const float* a, const float* b, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  if (i < n) {
    const __mmask16 m = Mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

// Sum over i of f(x[i]) with 4 vector accumulators (masked lanes contribute f(0), which callers keep at 0).
template <typename F>
inline float SumMap(const float* x, int64_t n, F f) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = f(_mm512_loadu_ps(x + i), s0);
    s1 = f(_mm512_loadu_ps(x + i + 16), s1);
    s2 = f(_mm512_loadu_ps(x + i + 32), s2);
    s3 = f(_mm512_loadu_ps(x + i + 48), s3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = Mask(n - i);
    s0 = _mm512_mask_mov_ps(s0, m, f(_mm512_maskz_loadu_ps(m, x + i), s0));
  }
  return Reduce4(s0, s1, s2, s3);
}

}  // namespace

float Dot(const float* a, const float* b, int64_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = Mask(n - i);
    s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
  }
  return Reduce4(s0, s1, s2, s3);
}

void Axpy(float alpha, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(alpha);
  // One FMA (one rounding); the scalar twin rounds alpha·x first, so they may differ by an ulp.
  Map2(x, y, y, n, [&](__m512 a, __m512 b) { return _mm512_fmadd_ps(va, a, b); });
}

namespace {
// R (1-4) weight rows × V (1-2) vectors of 16 columns, the last masked by `last`: every accumulator takes
// fma(p[r][j], v[j], acc) in j order, as Axpy does one key at a time, but the accumulators stay in registers
// and each slice of a v row is loaded once for all R rows. Named accumulators: GCC kept an array of them in
// memory, storing every one at every key.
template <int R, int V>
void WeightedBlock(const float* p, int64_t p_stride, const float* v, int64_t v_stride, int64_t n,
                   __mmask16 last, bool accumulate, float* out, int64_t out_stride) {
  static_assert(R >= 1 && R <= 4 && V >= 1 && V <= 2);
  const __m512 z = _mm512_setzero_ps();
  __m512 a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
  const __mmask16 m0 = V == 1 ? last : 0xffff;
  if (accumulate) {  // continue the chains of an earlier run of keys (exact: the accumulators are floats)
    auto load = [&](int r, __m512* x0, __m512* x1) {
      *x0 = _mm512_maskz_loadu_ps(m0, out + r * out_stride);
      if constexpr (V == 2) *x1 = _mm512_maskz_loadu_ps(last, out + r * out_stride + 16);
    };
    load(0, &a00, &a01);
    if constexpr (R > 1) load(1, &a10, &a11);
    if constexpr (R > 2) load(2, &a20, &a21);
    if constexpr (R > 3) load(3, &a30, &a31);
  }
  for (int64_t j = 0; j < n; ++j) {
    const float* vj = v + j * v_stride;
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, vj);
    const __m512 v1 = V == 2 ? _mm512_maskz_loadu_ps(last, vj + 16) : z;
    const float* pj = p + j;
    __m512 b = _mm512_set1_ps(pj[0]);
    a00 = _mm512_fmadd_ps(b, v0, a00);
    if constexpr (V == 2) a01 = _mm512_fmadd_ps(b, v1, a01);
    if constexpr (R > 1) {
      b = _mm512_set1_ps(pj[p_stride]);
      a10 = _mm512_fmadd_ps(b, v0, a10);
      if constexpr (V == 2) a11 = _mm512_fmadd_ps(b, v1, a11);
    }
    if constexpr (R > 2) {
      b = _mm512_set1_ps(pj[2 * p_stride]);
      a20 = _mm512_fmadd_ps(b, v0, a20);
      if constexpr (V == 2) a21 = _mm512_fmadd_ps(b, v1, a21);
    }
    if constexpr (R > 3) {
      b = _mm512_set1_ps(pj[3 * p_stride]);
      a30 = _mm512_fmadd_ps(b, v0, a30);
      if constexpr (V == 2) a31 = _mm512_fmadd_ps(b, v1, a31);
    }
  }
  auto store = [&](int r, __m512 x0, __m512 x1) {
    _mm512_mask_storeu_ps(out + r * out_stride, m0, x0);
    if constexpr (V == 2) _mm512_mask_storeu_ps(out + r * out_stride + 16, last, x1);
  };
  store(0, a00, a01);
  if constexpr (R > 1) store(1, a10, a11);
  if constexpr (R > 2) store(2, a20, a21);
  if constexpr (R > 3) store(3, a30, a31);
}

// Columns per block: two vectors (eight accumulators for four rows); a block of 16 or fewer runs on one.
constexpr int64_t kWeightedCols = 32;

template <int R>
void WeightedBlockV(int64_t cols, const float* p, int64_t p_stride, const float* v, int64_t v_stride,
                    int64_t n, __mmask16 last, bool accumulate, float* out, int64_t out_stride) {
  if (cols <= 16) return WeightedBlock<R, 1>(p, p_stride, v, v_stride, n, last, accumulate, out, out_stride);
  return WeightedBlock<R, 2>(p, p_stride, v, v_stride, n, last, accumulate, out, out_stride);
}

// Keys per run: each column block reads a slice of every v row, so the rows are taken kWeightedKeys at a time
// (16 KiB at head_dim 128, in L1 for all the blocks) and the run kWeightedAhead keys further on is
// prefetched. Decode attention at 512 cached tokens (Attention/text_decode_1x512_32of8x128/f32, two threads,
// interleaved): 145-189 -> 124-156 µs per layer; 16 or 64 keys per run, or prefetching 32 keys ahead,
// measured no better, and without the prefetch it was slower than before (165-445).
constexpr int64_t kWeightedKeys = 32;
constexpr int64_t kWeightedAhead = 64;
}  // namespace

void WeightedRows(const float* p, int64_t p_stride, int64_t rows, const float* v, int64_t v_stride, int64_t n,
                  int64_t d, float* out, int64_t out_stride) {
  for (int64_t j0 = 0; j0 == 0 || j0 < n; j0 += kWeightedKeys) {
    const int64_t nj = std::min(kWeightedKeys, n - j0);
    for (int64_t j = j0 + kWeightedAhead; j < std::min(n, j0 + kWeightedAhead + kWeightedKeys); ++j)
      for (int64_t c = 0; c < d; c += 16)
        _mm_prefetch(reinterpret_cast<const char*>(v + j * v_stride + c), _MM_HINT_T0);
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
      const int64_t R = std::min<int64_t>(4, rows - r0);
      for (int64_t c0 = 0; c0 < d; c0 += kWeightedCols) {
        const int64_t w = std::min(kWeightedCols, d - c0);
        const __mmask16 last = static_cast<__mmask16>(w % 16 == 0 ? 0xffff : (1u << (w % 16)) - 1);
        const float* pr = p + r0 * p_stride + j0;
        const float* vc = v + j0 * v_stride + c0;
        float* o = out + r0 * out_stride + c0;
        const bool acc = j0 > 0;
        switch (R) {
          case 1:
            WeightedBlockV<1>(w, pr, p_stride, vc, v_stride, nj, last, acc, o, out_stride);
            break;
          case 2:
            WeightedBlockV<2>(w, pr, p_stride, vc, v_stride, nj, last, acc, o, out_stride);
            break;
          case 3:
            WeightedBlockV<3>(w, pr, p_stride, vc, v_stride, nj, last, acc, o, out_stride);
            break;
          default:
            WeightedBlockV<4>(w, pr, p_stride, vc, v_stride, nj, last, acc, o, out_stride);
            break;
        }
      }
    }
  }
}

void Add(const float* a, const float* b, float* out, int64_t n) {
  Map2(a, b, out, n, [](__m512 u, __m512 v) { return _mm512_add_ps(u, v); });
}

void Mul(const float* a, const float* b, float* out, int64_t n) {
  Map2(a, b, out, n, [](__m512 u, __m512 v) { return _mm512_mul_ps(u, v); });
}

void Scale(float* x, float s, int64_t n) {
  const __m512 vs = _mm512_set1_ps(s);
  Map(x, x, n, [&](__m512 v) { return _mm512_mul_ps(v, vs); });
}

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y) {
  const float ss = SumMap(x, n, [](__m512 v, __m512 s) { return _mm512_fmadd_ps(v, v, s); });
  const float r = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  const __m512 vr = _mm512_set1_ps(r);
  if (w) {
    Map2(x, w, y, n, [&](__m512 v, __m512 g) { return _mm512_mul_ps(g, _mm512_mul_ps(v, vr)); });
  } else {
    Map(x, y, n, [&](__m512 v) { return _mm512_mul_ps(v, vr); });
  }
}

void LayerNorm(const float* x, const float* w, const float* b, int64_t n, float eps, float* y) {
  const float mean =
      SumMap(x, n, [](__m512 v, __m512 s) { return _mm512_add_ps(v, s); }) / static_cast<float>(n);
  const __m512 vm = _mm512_set1_ps(mean);
  // Masked tail lanes load 0; mask them again so they add nothing to the variance.
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm),
                 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm);
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = Mask(n - i);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm);
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  const float var = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / static_cast<float>(n);
  const __m512 vr = _mm512_set1_ps(1.f / std::sqrt(var + eps));
  i = 0;
  for (; i < n; i += 16) {
    const __mmask16 m = Mask(n - i);
    __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vr);
    if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
    if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

void SoftmaxInPlace(float* x, int64_t n) {
  if (n <= 0) return;
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = Mask(n - i);
    vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, x + i));
  }
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 s = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = Mask(n - i);
    const __m512 e = Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mx));
    _mm512_mask_storeu_ps(x + i, m, e);
    s = _mm512_mask_add_ps(s, m, s, e);
  }
  const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(s));
  Map(x, x, n, [&](__m512 v) { return _mm512_mul_ps(v, inv); });
}

void Exp(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](__m512 v) { return Exp16(v); });
}

void Silu(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](__m512 v) { return XSigmoid(v, v); });
}

void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  Map2(gate, up, out, n, [](__m512 g, __m512 u) { return _mm512_mul_ps(XSigmoid(g, g), u); });
}

void GeluTanh(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](__m512 v) { return Gelu16(v); });
}

void ConvertF32ToBf16(const float* x, uint16_t* y, int64_t n) {
  const __m512i k7fff = _mm512_set1_epi32(0x7fff), kOne = _mm512_set1_epi32(1),
                kQuiet = _mm512_set1_epi32(0x400000);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = Mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __m512i bits = _mm512_castps_si512(v);
    // Round to nearest even on the top 16 bits; NaN only gets its quiet bit set (never rounds to inf).
    __m512i r =
        _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_and_si512(_mm512_srli_epi32(bits, 16), kOne), k7fff));
    r = _mm512_mask_or_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), bits, kQuiet);
    _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
  }
}

void ConvertBf16ToF32(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = Mask(n - i);
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + i));
    _mm512_mask_storeu_ps(y + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
  }
}

}  // namespace idefics::kern::avx512
