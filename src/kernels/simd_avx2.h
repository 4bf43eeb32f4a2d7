// Inline AVX2 + FMA + F16C helpers shared by the *_avx2.cc kernels (included only from files built with those
// flags). Mirrors no reference class.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace idefics::kern::avx2 {

// Lanes [0, left) of an 8-lane mask for _mm256_maskload_ps / _mm256_maskstore_ps (all 8 when left >= 8).
inline __m256i Mask8(int64_t left) {
  const int l = left >= 8 ? 8 : (left <= 0 ? 0 : static_cast<int>(left));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(l), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Sum of the 8 lanes in a fixed order ((0+4, 1+5, 2+6, 3+7), then pairs, then the last two).
inline float Hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float Hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 2^n for integral n in [-126, 127] (n given as float), built from the exponent bits.
inline __m256 Pow2i(__m256 n) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}

// exp(x), the same algorithm as the AVX-512 Exp16: x = n·ln2 + r (two-constant Cody-Waite split), e^r by its
// degree-7 Taylor polynomial, then multiplied by 2^n. AVX2 has no scalef, so 2^n (n in [-150, 129] after the
// clamp) is applied as two exact powers 2^(n/2) and 2^(n - n/2): p·2^(n/2) is exact (a normal float), and the
// second product rounds once — the same value as scalef, including overflow to inf and gradual underflow.
inline __m256 Exp8(__m256 x) {
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.f)), _mm256_set1_ps(89.f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);  // ln2 high part (exact product)
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);       // ln2 low part
  __m256 p = _mm256_set1_ps(1.f / 5040.f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 720.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256 n1 = _mm256_floor_ps(_mm256_mul_ps(n, _mm256_set1_ps(0.5f)));
  const __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, Pow2i(n1)), Pow2i(_mm256_sub_ps(n, n1)));
  return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN inputs propagate
}

// Round-to-nearest-even float32 -> bf16 bits in the low half of each 32-bit lane (NaN only gets its quiet bit
// set), the same as F32ToBf16 (denormals kept).
inline __m256i F32ToBf16Lanes(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
  const __m256i q = _mm256_or_si256(bits, _mm256_set1_epi32(0x400000));
  return _mm256_srli_epi32(_mm256_blendv_epi8(r, q, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))),
                           16);
}

// 16 floats (a: 0-7, b: 8-15) -> 16 bf16 (round to nearest even).
inline __m256i F32ToBf16x16(__m256 a, __m256 b) {
  return _mm256_permute4x64_epi64(_mm256_packus_epi32(F32ToBf16Lanes(a), F32ToBf16Lanes(b)), 0xd8);
}

// 8 bf16 -> 8 floats (exact).
inline __m256 Bf16x8ToF32(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

}  // namespace idefics::kern::avx2
