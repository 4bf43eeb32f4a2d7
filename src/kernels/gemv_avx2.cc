// AVX2 + FMA + F16C matrix-vector kernels for decode (M <= GemvMaxRows(format), 4 rows per pass):
// bandwidth-bound streams over the weight rows. Twins: kern::scalar::GemvFloat / GemvQuant
// (matmul_scalar.cc). Mirrors nn.Linear.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "kernels/matmul_kernels.h"
#include "kernels/simd_avx2.h"

namespace idefics::kern::avx2 {

namespace {

template <WeightFormat F>
inline __m256 Load8(const uint8_t* row, int64_t k) {
  if constexpr (F == WeightFormat::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    if constexpr (F == WeightFormat::kBF16) {
      return Bf16x8ToF32(h);  // exact: the 16 bits become the top half of the float
    } else {
      return _mm256_cvtph_ps(h);
    }
  }
}

// The last K % 8 weights of a row (zero beyond K).
template <WeightFormat F>
inline __m256 Load8Tail(const uint8_t* row, int64_t k, int64_t left) {
  if constexpr (F == WeightFormat::kF32) {
    return _mm256_maskload_ps(reinterpret_cast<const float*>(row) + k, Mask8(left));
  } else {
    alignas(16) uint16_t tmp[8] = {};
    std::memcpy(tmp, row + 2 * k, 2 * left);
    const __m128i h = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    if constexpr (F == WeightFormat::kBF16) {
      return Bf16x8ToF32(h);
    } else {
      return _mm256_cvtph_ps(h);
    }
  }
}

// Float weights: R weight rows at once (R independent streams keep more memory requests in flight), one
// 8-lane float32 accumulator per (row, x row) over k, reduced at the end in a fixed order.
template <WeightFormat F, int MR, int R>
void GemvFloatBlock(const float* x, const WeightMatrix& w, const float* bias, float* y, int64_t n) {
  const int64_t N = w.rows, K = w.cols;
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = w.row(n + r);
  __m256 acc[R][MR];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < MR; ++m) acc[r][m] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 xv[MR];
    for (int m = 0; m < MR; ++m) xv[m] = _mm256_loadu_ps(x + m * K + k);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = Load8<F>(rows[r], k);
      for (int m = 0; m < MR; ++m) acc[r][m] = _mm256_fmadd_ps(xv[m], wv, acc[r][m]);
    }
  }
  if (k < K) {
    const __m256i mask = Mask8(K - k);
    __m256 xv[MR];
    for (int m = 0; m < MR; ++m) xv[m] = _mm256_maskload_ps(x + m * K + k, mask);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = Load8Tail<F>(rows[r], k, K - k);
      for (int m = 0; m < MR; ++m) acc[r][m] = _mm256_fmadd_ps(xv[m], wv, acc[r][m]);
    }
  }
  for (int r = 0; r < R; ++r) {
    const float b = bias ? bias[n + r] : 0.f;
    for (int m = 0; m < MR; ++m) y[m * N + n + r] = Hsum8(acc[r][m]) + b;
  }
}

// Every output row gets the same arithmetic whether it falls in a block of R rows or in the tail (R only
// changes which rows are streamed together), so results do not depend on the row split between threads.
// R shrinks with MR so the R × MR accumulators fit the 16 ymm registers.
template <WeightFormat F, int MR>
void GemvFloatRows(const float* x, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                   int64_t n1) {
  constexpr int R = MR <= 2 ? 4 : 2;
  int64_t n = n0;
  for (; n + R <= n1; n += R) GemvFloatBlock<F, MR, R>(x, w, bias, y, n);
  for (; n < n1; ++n) GemvFloatBlock<F, MR, 1>(x, w, bias, y, n);
}

template <WeightFormat F>
void GemvFloatFormat(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                     int64_t n0, int64_t n1) {
  const int64_t N = w.rows, K = w.cols;
  for (int64_t m = 0; m < M; m += 4) {
    const float* xm = x + m * K;
    float* ym = y + m * N;
    switch (std::min<int64_t>(4, M - m)) {
      case 1:
        GemvFloatRows<F, 1>(xm, w, bias, ym, n0, n1);
        break;
      case 2:
        GemvFloatRows<F, 2>(xm, w, bias, ym, n0, n1);
        break;
      case 3:
        GemvFloatRows<F, 3>(xm, w, bias, ym, n0, n1);
        break;
      default:
        GemvFloatRows<F, 4>(xm, w, bias, ym, n0, n1);
        break;
    }
  }
}

// ---- int8 GEMV for Q8_0 / Q4_0 (vpmaddubsw: unsigned × signed bytes -> pairs summed to int16) ----
// Q8_0: the unsigned operand is |w| and the activations take w's sign (vpsignb), so |pair sum| <= 2·128·127
// < 2^15 never saturates (a stored -128 becomes the unsigned 128, still correct). Q4_0: the raw nibbles
// q' = q + 8 in [0, 15] are the unsigned operand; the offset is removed exactly by adding the per-lane
// correction -8 · (sum of the lane's 4 activation bytes), precomputed with the activations. vpmaddwd by ones
// then gives 8 int32 lanes (4 products each); each block adds float(lane) · (d_w · d_x) to a float
// accumulator. Adds block b of row p (p points at the block) times the activation rows m0.. into acc[m].
template <bool kQ4, int MR>
inline void QuantBlock(const QuantActs& a, int64_t m0, int64_t nb, const uint8_t* p, int64_t b, __m256* acc) {
  const __m256i ones16 = _mm256_set1_epi16(1);
  uint16_t s16;
  std::memcpy(&s16, p, 2);
  const float dw = _cvtsh_ss(s16);
  __m256i wu, wv;
  if constexpr (kQ4) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    // Elements 0..15 (low nibbles), 16..31 (high nibbles).
    wu = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
    wv = wu;
  } else {
    wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    wu = _mm256_sign_epi8(wv, wv);
  }
  for (int m = 0; m < MR; ++m) {
    const int64_t row = m0 + m;
    __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.q.get() + row * a.K + b * 32));
    if constexpr (!kQ4) xq = _mm256_sign_epi8(xq, wv);
    __m256i isum = _mm256_madd_epi16(_mm256_maddubs_epi16(wu, xq), ones16);
    if constexpr (kQ4)
      isum = _mm256_add_epi32(
          isum, _mm256_load_si256(reinterpret_cast<const __m256i*>(a.corr.get() + (row * nb + b) * 8)));
    const __m256 sc = _mm256_set1_ps(dw * a.d[row * nb + b]);
    acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), sc, acc[m]);
  }
}

// One weight row against MR activation rows: even blocks into acc0, odd blocks into acc1 (two independent
// FMA chains; the unrolled loop keeps both in registers).
template <bool kQ4, int MR>
void GemvQuantRow(const QuantActs& a, int64_t m0, const WeightMatrix& w, const float* bias, float* y,
                  int64_t n) {
  const int64_t N = w.rows, nb = w.cols / 32, bytes = kQ4 ? 18 : 34;
  const uint8_t* p = w.row(n);
  __m256 acc0[MR], acc1[MR];
  for (int m = 0; m < MR; ++m) acc0[m] = acc1[m] = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    QuantBlock<kQ4, MR>(a, m0, nb, p + b * bytes, b, acc0);
    QuantBlock<kQ4, MR>(a, m0, nb, p + (b + 1) * bytes, b + 1, acc1);
  }
  if (b < nb) QuantBlock<kQ4, MR>(a, m0, nb, p + b * bytes, b, acc0);
  const float bv = bias ? bias[n] : 0.f;
  for (int m = 0; m < MR; ++m) y[(m0 + m) * N + n] = Hsum8(_mm256_add_ps(acc0[m], acc1[m])) + bv;
}

template <bool kQ4>
void GemvQuantFormat(const QuantActs& a, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                     int64_t n1) {
  for (int64_t m = 0; m < a.M; m += 4) {
    const int mr = static_cast<int>(std::min<int64_t>(4, a.M - m));
    for (int64_t n = n0; n < n1; ++n) {
      switch (mr) {
        case 1:
          GemvQuantRow<kQ4, 1>(a, m, w, bias, y, n);
          break;
        case 2:
          GemvQuantRow<kQ4, 2>(a, m, w, bias, y, n);
          break;
        case 3:
          GemvQuantRow<kQ4, 3>(a, m, w, bias, y, n);
          break;
        default:
          GemvQuantRow<kQ4, 4>(a, m, w, bias, y, n);
          break;
      }
    }
  }
}

}  // namespace

void GemvFloat(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1) {
  switch (w.format) {
    case WeightFormat::kF32:
      return GemvFloatFormat<WeightFormat::kF32>(x, M, w, bias, y, n0, n1);
    case WeightFormat::kBF16:
      return GemvFloatFormat<WeightFormat::kBF16>(x, M, w, bias, y, n0, n1);
    case WeightFormat::kF16:
      return GemvFloatFormat<WeightFormat::kF16>(x, M, w, bias, y, n0, n1);
    default:
      IDEFICS_CHECK_MSG(false, "GemvFloat: not a float format");
  }
}

void PrepareQuantActs(const float* x, int64_t M, int64_t K, WeightFormat f, QuantActs* out) {
  IDEFICS_CHECK(K % 32 == 0);
  IDEFICS_CHECK(f == WeightFormat::kQ8_0 || f == WeightFormat::kQ4_0);
  const int64_t nb = K / 32;
  out->M = M;
  out->K = K;
  out->q = AllocAligned<int8_t>(M * K);
  out->d = AllocAligned<float>(M * nb);
  out->corr.reset();
  if (f == WeightFormat::kQ4_0) out->corr = AllocAligned<int32_t>(M * nb * 8);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t b = 0; b < nb; ++b) {
      // The scalar quantizer itself, so both paths see the same integers (O(K) per row, next to O(N·K)).
      int8_t* q = out->q.get() + m * K + b * 32;
      out->d[m * nb + b] = QuantizeActBlock(x + m * K + b * 32, q);
      if (out->corr) {
        for (int l = 0; l < 8; ++l)
          out->corr[(m * nb + b) * 8 + l] = -8 * (q[4 * l] + q[4 * l + 1] + q[4 * l + 2] + q[4 * l + 3]);
      }
    }
  }
}

void GemvQuant(const QuantActs& a, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1) {
  IDEFICS_CHECK(a.K == w.cols);
  if (w.format == WeightFormat::kQ4_0) {
    IDEFICS_CHECK(a.corr != nullptr);
    GemvQuantFormat<true>(a, w, bias, y, n0, n1);
  } else {
    IDEFICS_CHECK(w.format == WeightFormat::kQ8_0);
    GemvQuantFormat<false>(a, w, bias, y, n0, n1);
  }
}

}  // namespace idefics::kern::avx2
