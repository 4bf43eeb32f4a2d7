// AVX-512 matrix-vector kernels for decode (M <= GemvMaxRows(format), 4 rows per pass): bandwidth-bound
// streams over the weight rows. Twins: kern::scalar::GemvFloat / GemvBf16Dot / GemvQuant (matmul_scalar.cc).
// Mirrors nn.Linear.
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsic headers as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "kernels/matmul_kernels.h"

namespace idefics::kern::avx512 {

namespace {

// How far ahead of the current position the weight rows are prefetched. The hardware prefetcher alone left
// the decode GEMV waiting on memory (9-24 GB/s on one core depending on the format and K); 8 KiB ahead
// measured best (1, 2, 4, 8, 16 KiB tried; docs/performance.md).
constexpr int64_t kPrefetchBytes = 8192;

// Q8_0/Q4_0 rows are prefetched only when long (the down projection, K = 14336, whose activation records fill
// L1): there it keeps the two-thread stream going (q4_0 33 -> 41 GB/s), while at K = 4096 it slowed it down
// (q8_0 40-42 -> 47-50 GB/s without; decode q8_0, 8 layers, three interleaved pairs 23.0-23.9 -> 21.2-26.4
// tok/s; q4_0 within noise). Hardware prefetch alone streams at 59 GB/s where a pure read reaches 54-55 with
// software prefetch added (same host, same minute).
constexpr int64_t kPrefetchMinCols = 8192;
inline bool PrefetchRows(int64_t K) {
  return K >= kPrefetchMinCols;
}

template <WeightFormat F>
inline __m512 Load16(const uint8_t* row, int64_t k) {
  if constexpr (F == WeightFormat::kF32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k));
    if constexpr (F == WeightFormat::kBF16) {
      // bf16 -> f32 is exact: the 16 bits become the top half of the float.
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else {
      return _mm512_cvtph_ps(h);
    }
  }
}

template <WeightFormat F>
inline __m512 Load16Masked(const uint8_t* row, int64_t k, __mmask16 mask) {
  if constexpr (F == WeightFormat::kF32) {
    return _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(row) + k);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, row + 2 * k);
    if constexpr (F == WeightFormat::kBF16) {
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else {
      return _mm512_cvtph_ps(h);
    }
  }
}

inline __mmask16 TailMask16(int64_t left) {
  return left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
}

// Float weights: R weight rows at once, A accumulators per (row, x row) taking the 16-element chunks of k in
// turn (chunk c goes to accumulator c % A, the masked tail to accumulator 0), summed pairwise in a fixed order
// and reduced at the end. R streams or A chains hide the FMA latency; which pays depends on the format.
template <WeightFormat F, int MR, int R, int A>
void GemvFloatBlock(const float* x, const WeightMatrix& w, const float* bias, float* y, int64_t n) {
  const int64_t N = w.rows, K = w.cols;
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = w.row(n + r);
  __m512 acc[A][R][MR];
  for (int a = 0; a < A; ++a)
    for (int r = 0; r < R; ++r)
      for (int m = 0; m < MR; ++m) acc[a][r][m] = _mm512_setzero_ps();
  constexpr int64_t kElemBytes = F == WeightFormat::kF32 ? 4 : 2;
  int64_t k = 0;
  auto chunk = [&](int a, int64_t kk) __attribute__((always_inline)) {
    __m512 xv[MR];
    for (int m = 0; m < MR; ++m) xv[m] = _mm512_loadu_ps(x + m * K + kk);
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(rows[r] + kk * kElemBytes + kPrefetchBytes), _MM_HINT_T0);
      const __m512 wv = Load16<F>(rows[r], kk);
      for (int m = 0; m < MR; ++m) acc[a][r][m] = _mm512_fmadd_ps(xv[m], wv, acc[a][r][m]);
    }
  };
  for (; k + 16 * A <= K; k += 16 * A)
    for (int a = 0; a < A; ++a) chunk(a, k + 16 * a);
  for (int a = 0; k + 16 <= K; k += 16, ++a) chunk(a, k);
  if (k < K) {
    const __mmask16 mask = TailMask16(K - k);
    __m512 xv[MR];
    for (int m = 0; m < MR; ++m) xv[m] = _mm512_maskz_loadu_ps(mask, x + m * K + k);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = Load16Masked<F>(rows[r], k, mask);
      for (int m = 0; m < MR; ++m) acc[0][r][m] = _mm512_fmadd_ps(xv[m], wv, acc[0][r][m]);
    }
  }
  for (int r = 0; r < R; ++r) {
    const float b = bias ? bias[n + r] : 0.f;
    for (int m = 0; m < MR; ++m) {
      __m512 sum = acc[0][r][m];
      if constexpr (A == 2) sum = _mm512_add_ps(acc[0][r][m], acc[1][r][m]);
      if constexpr (A == 4)
        sum = _mm512_add_ps(_mm512_add_ps(acc[0][r][m], acc[1][r][m]), _mm512_add_ps(acc[2][r][m], acc[3][r][m]));
      y[m * N + n + r] = _mm512_reduce_add_ps(sum) + b;
    }
  }
}

// Rows per pass and accumulators per row by format (measured, 2 threads, docs/performance.md): float32
// weights stream 4 rows with one chain each (one row with 4 chains: 42-52 vs 58-72 GB/s); bf16/f16 one row
// with 2 chains (4 rows: 38-65 vs 48-98 GB/s; several streams per core slow Zen 5 down, as for Q8_0/Q4_0). Every output row gets the same
// arithmetic whether it falls in a block of R or in the tail, so results do not depend on the row split.
template <WeightFormat F>
constexpr int kGemvRows = F == WeightFormat::kF32 ? 4 : 1;
template <WeightFormat F>
constexpr int kGemvChains = F == WeightFormat::kF32 ? 1 : 2;

template <WeightFormat F, int MR>
void GemvFloatRows(const float* x, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                   int64_t n1) {
  constexpr int R = kGemvRows<F>, A = kGemvChains<F>;
  int64_t n = n0;
  for (; n + R <= n1; n += R) GemvFloatBlock<F, MR, R, A>(x, w, bias, y, n);
  for (; n < n1; ++n) GemvFloatBlock<F, MR, 1, A>(x, w, bias, y, n);
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

// bf16 dot products: R weight rows at once, one accumulator per (row, x row), 32 k per step.
template <int MR, int R>
void GemvBf16DotBlock(const uint16_t* xb, const WeightMatrix& w, const float* bias, float* y, int64_t n) {
  const int64_t N = w.rows, K = w.cols;
  const uint16_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = reinterpret_cast<const uint16_t*>(w.row(n + r));
  __m512 acc[R][MR];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < MR; ++m) acc[r][m] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 32) {
    const int64_t left = K - k;
    const __mmask32 mask = left >= 32 ? 0xffffffffu : static_cast<__mmask32>((1u << left) - 1);
    __m512bh xv[MR];
    for (int m = 0; m < MR; ++m) xv[m] = (__m512bh)_mm512_maskz_loadu_epi16(mask, xb + m * K + k);
    for (int r = 0; r < R; ++r) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mask, rows[r] + k);
      for (int m = 0; m < MR; ++m) acc[r][m] = _mm512_dpbf16_ps(acc[r][m], xv[m], wv);
    }
  }
  for (int r = 0; r < R; ++r) {
    const float b = bias ? bias[n + r] : 0.f;
    for (int m = 0; m < MR; ++m) y[m * N + n + r] = _mm512_reduce_add_ps(acc[r][m]) + b;
  }
}

template <int MR>
void GemvBf16DotRows(const uint16_t* xb, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                     int64_t n1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) GemvBf16DotBlock<MR, 4>(xb, w, bias, y, n);
  for (; n < n1; ++n) GemvBf16DotBlock<MR, 1>(xb, w, bias, y, n);
}

// ---- int8 (VNNI) GEMV for Q8_0 / Q4_0 ----
// Weights become unsigned bytes (Q8_0: q + 128; Q4_0: the raw nibble q' = q + 8) so vpdpbusd can multiply
// them with the signed int8 activations; the offset is removed exactly by starting each int32 lane at
// -offset · (sum of the 4 activation bytes of that lane), precomputed with the activations.
// Q8_0 activation records: q[64] int8 and c[16] int32 (128 bytes, aligned), with the pair's two activation
// scales in a separate array (float[2] per record) — 16-lane scale vectors in the record (192 bytes) no longer
// fit in L1 beside the weight stream at K = 14336.
constexpr int kPairBytes = 128;

// Q8_0: unpacks blocks 2p and 2p+1 of a row to 64 unsigned bytes (q + 128, in the lane order PrepareQuantActs
// uses) and the two weight scales (lanes 0, 1 of ws). The second block may be absent (odd block count): zero
// scale, and its bytes meet zero activations.
inline void LoadQ8Pair(const uint8_t* row, int64_t p, bool has1, __m512i* wv, __m128* ws) {
  const uint8_t* b0 = row + 2 * p * 34;
  const uint8_t* b1 = b0 + 34;
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 2));
  const __m256i hi =
      has1 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 2)) : _mm256_setzero_si256();
  *wv = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1),
                         _mm512_set1_epi8(static_cast<char>(0x80)));
  uint16_t s0, s1 = 0;
  std::memcpy(&s0, b0, 2);
  if (has1) std::memcpy(&s1, b1, 2);
  *ws = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(s0 | (static_cast<uint32_t>(s1) << 16))));
}

// R weight rows × MR activation rows; acts: MR rows of `pairs` records of kPairBytes. Each output's
// arithmetic is the same for any R, so the thread split cannot change results.
template <int MR, int R>
void GemvQ8Block(const uint8_t* acts, const float* act_scales, int64_t pairs, const WeightMatrix& w,
                 const float* bias, float* y, int64_t n) {
  // Lanes 0-7 take the scale product of block 2p, lanes 8-15 that of block 2p+1.
  const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const int64_t N = w.rows, nb = w.cols / 32;
  const bool prefetch = PrefetchRows(w.cols);
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = w.row(n + r);
  __m512 acc[R][MR];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < MR; ++m) acc[r][m] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    if (prefetch)
      for (int r = 0; r < R; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(rows[r] + 2 * p * 34 + kPrefetchBytes), _MM_HINT_T0);
    const bool has1 = 2 * p + 1 < nb;
    __m512i wv[R];
    __m128 ws[R];
    for (int r = 0; r < R; ++r) LoadQ8Pair(rows[r], p, has1, &wv[r], &ws[r]);
    for (int m = 0; m < MR; ++m) {
      const uint8_t* pa = acts + (m * pairs + p) * kPairBytes;
      const __m512i xq = _mm512_load_si512(pa), corr = _mm512_load_si512(pa + 64);
      const __m128 xs = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(act_scales + (m * pairs + p) * 2)));
      for (int r = 0; r < R; ++r) {
        const __m512i isum = _mm512_dpbusd_epi32(corr, wv[r], xq);
        const __m512 sc = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_mul_ps(ws[r], xs)));
        acc[r][m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), sc, acc[r][m]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const float b = bias ? bias[n + r] : 0.f;
    for (int m = 0; m < MR; ++m) y[m * N + n + r] = _mm512_reduce_add_ps(acc[r][m]) + b;
  }
}

template <int MR>
void GemvQ8Rows(const uint8_t* acts, const float* act_scales, int64_t pairs, const WeightMatrix& w,
                const float* bias, float* y, int64_t n0, int64_t n1) {
  // One row at a time measured fastest here (two interleaved rows ran ~2x slower on Zen 5 at M = 1).
  for (int64_t n = n0; n < n1; ++n) GemvQ8Block<MR, 1>(acts, act_scales, pairs, w, bias, y, n);
}

// Q4_0, four blocks per step: the 4 × 16 nibble bytes fill one zmm; its low and high nibbles are elements
// 0..15 and 16..31 of the 4 blocks, so both dot products land in the same lanes and share one scale vector.
constexpr int kQuadBytes = 256;  // lo[64], hi[64], s[16] float, c[16] int32
// Weight rows per pass over the activations: two interleaved rows measured ~2x slower on Zen 5 (as for Q8_0).
constexpr int kQ4RowsPerPass = 1;

// Unpacks quad q of a Q4_0 row: the 64 nibble bytes of its four blocks (v) and their four f16 scales, each
// repeated in four words (s16: lanes 4j..4j+3 hold block j's); missing blocks at the end of the row are zero
// weights with zero scale.
__attribute__((always_inline)) inline void LoadQ4Quad(const uint8_t* row, int64_t q, int64_t nb,
                                                      bool prefetch, const __m512i& scale_words, __m512i* v,
                                                      __m256i* s4) {
  const uint8_t* b = row + 4 * q * 18;
  if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBytes), _MM_HINT_T0);
  if (4 * q + 4 <= nb) {
    __m512i t = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2)));
    t = _mm512_inserti32x4(t, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 20)), 1);
    t = _mm512_inserti32x4(t, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 38)), 2);
    *v = _mm512_inserti32x4(t, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 56)), 3);
    *s4 = _mm512_castsi512_si256(
        _mm512_permutexvar_epi16(scale_words, _mm512_loadu_si512(reinterpret_cast<const void*>(b))));
    return;
  }
  alignas(64) uint8_t tmp[64] = {};
  alignas(32) uint16_t s[16] = {};
  for (int64_t j = 0; 4 * q + j < nb; ++j) {
    std::memcpy(tmp + 16 * j, b + 18 * j + 2, 16);
    uint16_t h;
    std::memcpy(&h, b + 18 * j, 2);
    for (int i = 0; i < 4; ++i) s[4 * j + i] = h;
  }
  *v = _mm512_load_si512(tmp);
  *s4 = _mm256_load_si256(reinterpret_cast<const __m256i*>(s));
}

// R weight rows × MR activation rows. Each output's arithmetic is the same for any R.
template <int MR, int R>
void GemvQ4Block(const uint8_t* acts, int64_t quads, const WeightMatrix& w, const float* bias, float* y,
                 int64_t n) {
  const int64_t N = w.rows, nb = w.cols / 32;
  const bool prefetch = PrefetchRows(w.cols);
  const __m512i k0f = _mm512_set1_epi8(0x0f);
  // The four f16 scales of a full quad sit at bytes 0, 18, 36, 54: 16-bit words 0, 9, 18, 27 of its first 64
  // bytes, picked by one vpermw straight into the lanes of their blocks' sums (each four times).
  const __m512i scale_words = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 27, 27, 27, 27,
                                               18, 18, 18, 18, 9, 9, 9, 9, 0, 0, 0, 0);
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = w.row(n + r);
  __m512 acc[R][MR];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < MR; ++m) acc[r][m] = _mm512_setzero_ps();
  for (int64_t q = 0; q < quads; ++q) {
    __m512i lo[R], hi[R];
    __m512 ws[R];
    for (int r = 0; r < R; ++r) {
      __m512i v;
      __m256i s16;
      LoadQ4Quad(rows[r], q, nb, prefetch, scale_words, &v, &s16);
      lo[r] = _mm512_and_si512(v, k0f);
      hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), k0f);
      ws[r] = _mm512_cvtph_ps(s16);
    }
    for (int m = 0; m < MR; ++m) {
      const uint8_t* pa = acts + (m * quads + q) * kQuadBytes;
      const __m512i xlo = _mm512_load_si512(pa), xhi = _mm512_load_si512(pa + 64);
      const __m512i corr = _mm512_load_si512(pa + 192);
      const __m512 xs = _mm512_load_ps(reinterpret_cast<const float*>(pa + 128));
      for (int r = 0; r < R; ++r) {
        __m512i isum = _mm512_dpbusd_epi32(corr, lo[r], xlo);
        isum = _mm512_dpbusd_epi32(isum, hi[r], xhi);
        acc[r][m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(ws[r], xs), acc[r][m]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const float bv = bias ? bias[n + r] : 0.f;
    for (int m = 0; m < MR; ++m) y[m * N + n + r] = _mm512_reduce_add_ps(acc[r][m]) + bv;
  }
}

template <int MR>
void GemvQ4Rows(const uint8_t* acts, int64_t quads, const WeightMatrix& w, const float* bias, float* y,
                int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + kQ4RowsPerPass <= n1; n += kQ4RowsPerPass) GemvQ4Block<MR, kQ4RowsPerPass>(acts, quads, w, bias, y, n);
  for (; n < n1; ++n) GemvQ4Block<MR, 1>(acts, quads, w, bias, y, n);
}

// Q8_0: the per-record activation scale pairs, after the M × records records.
inline const float* PairScales(const QuantActs& a) {
  return reinterpret_cast<const float*>(a.data.get() + a.M * a.records * a.record_bytes);
}

template <bool kQ4>
void GemvQuantFormat(const QuantActs& a, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                     int64_t n1) {
  const int64_t N = w.rows;
  for (int64_t m = 0; m < a.M; m += 4) {
    const uint8_t* acts = a.data.get() + m * a.records * a.record_bytes;
    const float* act_scales = kQ4 ? nullptr : PairScales(a) + m * a.records * 2;
    float* ym = y + m * N;
    const int64_t r = a.records;
    if constexpr (kQ4) {
      switch (std::min<int64_t>(4, a.M - m)) {
        case 1:
          GemvQ4Rows<1>(acts, r, w, bias, ym, n0, n1);
          break;
        case 2:
          GemvQ4Rows<2>(acts, r, w, bias, ym, n0, n1);
          break;
        case 3:
          GemvQ4Rows<3>(acts, r, w, bias, ym, n0, n1);
          break;
        default:
          GemvQ4Rows<4>(acts, r, w, bias, ym, n0, n1);
          break;
      }
    } else {
      switch (std::min<int64_t>(4, a.M - m)) {
        case 1:
          GemvQ8Rows<1>(acts, act_scales, r, w, bias, ym, n0, n1);
          break;
        case 2:
          GemvQ8Rows<2>(acts, act_scales, r, w, bias, ym, n0, n1);
          break;
        case 3:
          GemvQ8Rows<3>(acts, act_scales, r, w, bias, ym, n0, n1);
          break;
        default:
          GemvQ8Rows<4>(acts, act_scales, r, w, bias, ym, n0, n1);
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

void GemvBf16Dot(const uint16_t* xb, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                 int64_t n0, int64_t n1) {
  IDEFICS_CHECK(w.format == WeightFormat::kBF16);
  const int64_t N = w.rows, K = w.cols;
  for (int64_t m = 0; m < M; m += 4) {
    const uint16_t* xm = xb + m * K;
    float* ym = y + m * N;
    switch (std::min<int64_t>(4, M - m)) {
      case 1:
        GemvBf16DotRows<1>(xm, w, bias, ym, n0, n1);
        break;
      case 2:
        GemvBf16DotRows<2>(xm, w, bias, ym, n0, n1);
        break;
      case 3:
        GemvBf16DotRows<3>(xm, w, bias, ym, n0, n1);
        break;
      default:
        GemvBf16DotRows<4>(xm, w, bias, ym, n0, n1);
        break;
    }
  }
}

namespace {
// One block of 32 activations -> 32 int8 (two 16-byte halves) with exactly the arithmetic of
// QuantizeActBlock (same max, same 127/amax, round-half-even, clamp, NaN -> 0). Returns d = amax / 127.
inline float QuantizeActBlock32(const float* x, __m128i* lo, __m128i* hi) {
  const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
  // NaN lanes count as 0 for the maximum, as std::max in the scalar twin skips them.
  const __m512 a0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x0, x0, _CMP_ORD_Q), _mm512_abs_ps(x0));
  const __m512 a1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x1, x1, _CMP_ORD_Q), _mm512_abs_ps(x1));
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
  const float d = amax / 127.f;
  const float id = d != 0.f && std::isfinite(amax) ? 127.f / amax : 0.f;
  const __m512 vid = _mm512_set1_ps(id), lim = _mm512_set1_ps(127.f);
  auto quant = [&](__m512 v) {
    __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(v, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(q, q, _CMP_ORD_Q), q);  // NaN -> 0 (before the clamp)
    q = _mm512_min_ps(_mm512_max_ps(q, _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim);
    return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(q));
  };
  *lo = quant(x0);
  *hi = quant(x1);
  return d;
}
}  // namespace

void QuantizeActsU8(const float* x, int64_t m0, int64_t m1, int64_t K, uint8_t* xq, float* xs) {
  IDEFICS_CHECK(K % 32 == 0);
  const int64_t nb = K / 32;
  const __m128i bias = _mm_set1_epi8(static_cast<char>(0x80));
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t b = 0; b < nb; ++b) {
      __m128i lo, hi;
      xs[m * nb + b] = QuantizeActBlock32(x + m * K + 32 * b, &lo, &hi);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + m * K + 32 * b), _mm_xor_si128(lo, bias));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + m * K + 32 * b + 16), _mm_xor_si128(hi, bias));
    }
  }
}

void PrepareQuantActs(const float* x, int64_t M, int64_t K, WeightFormat f, QuantActs* out) {
  IDEFICS_CHECK(K % 32 == 0);
  IDEFICS_CHECK(f == WeightFormat::kQ8_0 || f == WeightFormat::kQ4_0);
  const bool q4 = f == WeightFormat::kQ4_0;
  const int64_t nb = K / 32, per = q4 ? 4 : 2, records = (nb + per - 1) / per;
  out->M = M;
  out->K = K;
  out->records = records;
  out->record_bytes = q4 ? kQuadBytes : kPairBytes;
  // Q8_0 keeps two float scales per record after the records (PairScales).
  out->data = AllocAligned<uint8_t>(M * records * out->record_bytes + (q4 ? 0 : M * records * 8));
  float* pair_scales = q4 ? nullptr : reinterpret_cast<float*>(out->data.get() + M * records * out->record_bytes);
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t r = 0; r < records; ++r) {
      uint8_t* pa = out->data.get() + (m * records + r) * out->record_bytes;
      __m128i h[4][2];
      float d[4] = {0.f, 0.f, 0.f, 0.f};
      for (int b = 0; b < 4; ++b) h[b][0] = h[b][1] = _mm_setzero_si128();
      for (int b = 0; b < per && per * r + b < nb; ++b)
        d[b] = QuantizeActBlock32(x + m * K + (per * r + b) * 32, &h[b][0], &h[b][1]);
      auto join = [](__m128i a, __m128i b, __m128i c, __m128i e) {
        return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(b, a)), _mm256_set_m128i(e, c), 1);
      };
      if (q4) {
        const __m512i lo = join(h[0][0], h[1][0], h[2][0], h[3][0]),
                      hi = join(h[0][1], h[1][1], h[2][1], h[3][1]);
        _mm512_store_si512(pa, lo);
        _mm512_store_si512(pa + 64, hi);
        __m512 s = _mm512_set1_ps(d[0]);
        s = _mm512_mask_mov_ps(s, 0x00f0, _mm512_set1_ps(d[1]));
        s = _mm512_mask_mov_ps(s, 0x0f00, _mm512_set1_ps(d[2]));
        s = _mm512_mask_mov_ps(s, 0xf000, _mm512_set1_ps(d[3]));
        _mm512_store_ps(reinterpret_cast<float*>(pa + 128), s);
        // Per-lane offset correction (q4 weights are stored as q + 8): -8 · (sum of the lane's 8 activation
        // bytes).
        const __m512i sums =
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, lo), ones, hi);
        _mm512_store_si512(pa + 192, _mm512_mullo_epi32(sums, _mm512_set1_epi32(-8)));
      } else {
        const __m512i q = join(h[0][0], h[0][1], h[1][0], h[1][1]);  // [blk0 0..31, blk1 0..31]
        _mm512_store_si512(pa, q);
        pair_scales[(m * records + r) * 2] = d[0];
        pair_scales[(m * records + r) * 2 + 1] = d[1];
        // q8 weights are stored as q + 128 for vpdpbusd: -128 · (sum of the lane's 4 activation bytes).
        const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, q);
        _mm512_store_si512(pa + 64, _mm512_mullo_epi32(sums, _mm512_set1_epi32(-128)));
      }
    }
  }
}

void GemvQuant(const QuantActs& a, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1) {
  IDEFICS_CHECK(a.K == w.cols);
  if (w.format == WeightFormat::kQ4_0) {
    GemvQuantFormat<true>(a, w, bias, y, n0, n1);
  } else {
    IDEFICS_CHECK(w.format == WeightFormat::kQ8_0);
    GemvQuantFormat<false>(a, w, bias, y, n0, n1);
  }
}

}  // namespace idefics::kern::avx512
