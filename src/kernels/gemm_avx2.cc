// AVX2 + FMA blocked GEMM for large M (prefill, vision): weights packed per 16-column panel, 6×16 register
// tiles (12 ymm accumulators), float32 FMA. Twin: kern::scalar::GemmF32 (bitwise the same: every output is
// one fused multiply-add chain over k in order, bias added last). AVX2 has no bf16 dot product, so MatMul
// serves bf16_dot requests with this float32 kernel on AVX2. Mirrors nn.Linear.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "kernels/matmul_kernels.h"
#include "kernels/simd_avx2.h"

namespace idefics::kern::avx2 {

namespace {

constexpr int kNR = 16;       // output columns per register tile (2 ymm)
constexpr int kMR = 6;        // x rows per register tile (6 × 2 = 12 accumulators)
constexpr int64_t kKC = 256;  // k-block: a 16 KiB panel stays in L1 while the x rows stream past it
constexpr int64_t kNC = 256;  // columns packed at once (16 panels, 256 KiB), shared by every x block
constexpr int64_t kMC = 48;   // x rows per pass over the packed panels (the x block stays in L2)

// Elements [k0, k0 + len) of weight row n as float32 (exact conversions; the same values as
// DequantizeRowSegment: q8/q4 scale · float(q)).
void SegmentToF32(const WeightMatrix& w, int64_t n, int64_t k0, int64_t len, float* out) {
  const uint8_t* row = w.row(n);
  switch (w.format) {
    case WeightFormat::kF32:
      std::memcpy(out, row + 4 * k0, 4 * len);
      return;
    case WeightFormat::kBF16:
    case WeightFormat::kF16: {
      const bool bf = w.format == WeightFormat::kBF16;
      const uint16_t* s = reinterpret_cast<const uint16_t*>(row) + k0;
      for (int64_t k = 0; k < len; k += 8) {
        const int64_t left = std::min<int64_t>(8, len - k);
        alignas(16) uint16_t tmp[8] = {};
        if (left < 8) std::memcpy(tmp, s + k, 2 * left);
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(left == 8 ? s + k : tmp));
        const __m256 v = bf ? Bf16x8ToF32(h) : _mm256_cvtph_ps(h);
        if (left == 8) {
          _mm256_storeu_ps(out + k, v);
        } else {
          _mm256_maskstore_ps(out + k, Mask8(left), v);
        }
      }
      return;
    }
    case WeightFormat::kQ8_0: {
      const uint8_t* p = row + (k0 / 32) * 34;
      for (int64_t b = 0; b < len / 32; ++b, p += 34) {
        uint16_t s16;
        std::memcpy(&s16, p, 2);
        const __m256 s = _mm256_set1_ps(_cvtsh_ss(s16));
        for (int i = 0; i < 4; ++i) {
          const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2 + 8 * i));
          _mm256_storeu_ps(out + 32 * b + 8 * i,
                           _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
        }
      }
      return;
    }
    case WeightFormat::kQ4_0: {
      const uint8_t* p = row + (k0 / 32) * 18;
      const __m128i k0f = _mm_set1_epi8(0x0f), k8 = _mm_set1_epi8(8);
      for (int64_t b = 0; b < len / 32; ++b, p += 18) {
        uint16_t s16;
        std::memcpy(&s16, p, 2);
        const __m256 s = _mm256_set1_ps(_cvtsh_ss(s16));
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, k0f), k8);                     // elements 0..15
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), k0f), k8);  // 16..31
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int i = 0; i < 4; ++i)
          _mm256_storeu_ps(out + 32 * b + 8 * i,
                           _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[i]))));
      }
      return;
    }
  }
}

// ---- Packing: panel[k][j] = W[n0 + j][k0 + k] (columns j >= nvalid are zero) ----

alignas(64) const float kZeros[kKC] = {};

// Transposes 8 rows × 8 k (src[r] + k for k < klen, zero beyond) into dst[k * kNR + r] for k < klen.
inline void Transpose8(const float* const* src, int64_t klen, float* dst) {
  const __m256i m = Mask8(klen);
  __m256 r[8], t[8], s[8];
  for (int i = 0; i < 8; ++i) r[i] = klen >= 8 ? _mm256_loadu_ps(src[i]) : _mm256_maskload_ps(src[i], m);
  for (int i = 0; i < 4; ++i) {
    t[2 * i] =
        _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);  // per 128-bit half: (r0[c], r1[c], r0[c+1], r1[c+1])
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3 (h = 0) and 4-7 (h = 1): per half, columns c and c + 4
    s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
    s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xee);
    s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xee);
  }
  for (int c = 0; c < 8; ++c) {
    if (c >= klen) break;
    const __m256 col =
        c < 4 ? _mm256_permute2f128_ps(s[c], s[4 + c], 0x20) : _mm256_permute2f128_ps(s[c - 4], s[c], 0x31);
    _mm256_store_ps(dst + c * kNR, col);
  }
}

void PackPanel(const WeightMatrix& w, int64_t n0, int nvalid, int64_t k0, int64_t kc, float* tmp,
               float* out) {
  const float* src[kNR];
  for (int j = 0; j < kNR; ++j) {
    if (j >= nvalid) {
      src[j] = kZeros;
    } else if (w.format == WeightFormat::kF32) {
      src[j] = reinterpret_cast<const float*>(w.row(n0 + j)) + k0;
    } else {
      SegmentToF32(w, n0 + j, k0, kc, tmp + j * kc);
      src[j] = tmp + j * kc;
    }
  }
  for (int64_t k = 0; k < kc; k += 8) {
    for (int jb = 0; jb < kNR / 8; ++jb) {
      const float* rows[8];
      for (int i = 0; i < 8; ++i) rows[i] = src[jb * 8 + i] == kZeros ? kZeros : src[jb * 8 + i] + k;
      Transpose8(rows, std::min<int64_t>(8, kc - k), out + k * kNR + jb * 8);
    }
  }
}

// ---- Register tile: c[MR][16] (= or +=) a[MR][kc] · panel[kc][16]; each output is one FMA chain over k ----

// kFull: all 16 columns valid, so c is read and written with plain loads/stores (vmaskmovps stores are
// microcoded and slow on AMD cores: masking every tile halved the GEMM rate there).
template <int MR, bool kFull>
void TileF32(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
             const __m256i* mk, bool load_c) {
  __m256 acc[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      if (!load_c) {
        acc[i][j] = _mm256_setzero_ps();
      } else if constexpr (kFull) {
        acc[i][j] = _mm256_loadu_ps(c + i * ldc + 8 * j);
      } else {
        acc[i][j] = _mm256_maskload_ps(c + i * ldc + 8 * j, mk[j]);
      }
    }
  }
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * kNR;
    const __m256 b0 = _mm256_load_ps(bk), b1 = _mm256_load_ps(bk + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * lda + k);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      if constexpr (kFull) {
        _mm256_storeu_ps(c + i * ldc + 8 * j, acc[i][j]);
      } else {
        _mm256_maskstore_ps(c + i * ldc + 8 * j, mk[j], acc[i][j]);
      }
    }
  }
}

template <bool kFull>
inline void RunTile(int mr, const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                    const __m256i* mk, bool load_c) {
  switch (mr) {
    case 1:
      return TileF32<1, kFull>(a, lda, b, kc, c, ldc, mk, load_c);
    case 2:
      return TileF32<2, kFull>(a, lda, b, kc, c, ldc, mk, load_c);
    case 3:
      return TileF32<3, kFull>(a, lda, b, kc, c, ldc, mk, load_c);
    case 4:
      return TileF32<4, kFull>(a, lda, b, kc, c, ldc, mk, load_c);
    case 5:
      return TileF32<5, kFull>(a, lda, b, kc, c, ldc, mk, load_c);
    default:
      return TileF32<6, kFull>(a, lda, b, kc, c, ldc, mk, load_c);
  }
}

constexpr size_t kPackedFloats = kNC * kKC;
constexpr size_t kTmpFloats = kNR * kKC;  // float segments of one panel's rows (non-f32 weights)

}  // namespace

size_t GemmPackFloats() {
  return kPackedFloats + kTmpFloats + 64;
}

void GemmF32(const float* x, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w, const float* bias,
             float* y, int64_t n0, int64_t n1, float* pack) {
  const int64_t N = w.rows;
  float* packed = pack;
  float* tmp = pack + kPackedFloats;
  for (int64_t nc0 = n0; nc0 < n1; nc0 += kNC) {
    const int64_t nc1 = std::min(n1, nc0 + kNC);
    const int panels = static_cast<int>((nc1 - nc0 + kNR - 1) / kNR);
    for (int64_t k0 = 0; k0 < K; k0 += kKC) {
      const int64_t kc = std::min(kKC, K - k0);
      for (int p = 0; p < panels; ++p) {
        const int nvalid = static_cast<int>(std::min<int64_t>(kNR, nc1 - nc0 - p * kNR));
        PackPanel(w, nc0 + p * kNR, nvalid, k0, kc, tmp, packed + p * kKC * kNR);
      }
      for (int64_t mc0 = m0; mc0 < m1; mc0 += kMC) {
        const int64_t mc1 = std::min(m1, mc0 + kMC);
        for (int p = 0; p < panels; ++p) {
          const int nvalid = static_cast<int>(std::min<int64_t>(kNR, nc1 - nc0 - p * kNR));
          const __m256i mk[2] = {Mask8(nvalid), Mask8(nvalid - 8)};
          const float* bp = packed + p * kKC * kNR;
          for (int64_t m = mc0; m < mc1; m += kMR) {
            const int mr = static_cast<int>(std::min<int64_t>(kMR, mc1 - m));
            float* c = y + m * N + nc0 + p * kNR;
            if (nvalid == kNR) {
              RunTile<true>(mr, x + m * K + k0, K, bp, kc, c, N, mk, k0 > 0);
            } else {
              RunTile<false>(mr, x + m * K + k0, K, bp, kc, c, N, mk, k0 > 0);
            }
          }
        }
      }
    }
    if (bias) {
      for (int64_t m = m0; m < m1; ++m)
        for (int64_t n = nc0; n < nc1; ++n) y[m * N + n] += bias[n];
    }
  }
}

}  // namespace idefics::kern::avx2
