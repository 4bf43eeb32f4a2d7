// AVX-512 blocked GEMM for large M (prefill, vision): weights packed per 64-column panel, 6×64 register
// tiles, float32 FMA (exact path) or vdpbf16ps (bf16 path). Twins: kern::scalar::GemmF32 / GemmBf16. Mirrors
// nn.Linear.
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsic headers as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "kernels/matmul_kernels.h"
#include "kernels/pack_avx512.h"

namespace idefics::kern::avx512 {

namespace {

constexpr int kNR = 64;  // output columns per register tile (4 zmm)
constexpr int kMR = 6;   // x rows per register tile (6 × 4 = 24 accumulators)
constexpr int64_t kKC =
    576;  // f32 k-block: few passes over each output tile (the packed panels stream from L2)
constexpr int64_t kKCB = 1152;  // bf16 k-block (576 pairs)
constexpr int64_t kNC = 256;    // columns packed at once (4 panels, 576 KiB f32), shared by every x block
constexpr int64_t kMC = 48;     // x rows per pass over the packed panels (the x block stays in L2)

// ---- Row segments as float32 / bf16 ----

// The Q8_0 / Q4_0 block at p as float32: elements 0..15 to v0, 16..31 to v1 (scale × q, exact).
inline void DequantBlock(WeightFormat f, const uint8_t* p, __m512* v0, __m512* v1) {
  uint16_t s16;
  std::memcpy(&s16, p, 2);
  const __m512 s = _mm512_set1_ps(_cvtsh_ss(s16));
  __m128i lo, hi;
  if (f == WeightFormat::kQ8_0) {
    lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 18));
  } else {
    UnpackQ4(p + 2, &lo, &hi);
  }
  *v0 = _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)));
  *v1 = _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)));
}

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
      int64_t k = 0;
      for (; k < len; k += 16) {
        const int64_t left = len - k;
        const __mmask16 m = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
        const __m256i h = _mm256_maskz_loadu_epi16(m, s + k);
        const __m512 v =
            bf ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
        _mm512_mask_storeu_ps(out + k, m, v);
      }
      return;
    }
    case WeightFormat::kQ8_0:
    case WeightFormat::kQ4_0: {
      const int64_t bb = w.format == WeightFormat::kQ8_0 ? 34 : 18;
      const uint8_t* p = row + (k0 / 32) * bb;
      for (int64_t b = 0; b < len / 32; ++b, p += bb) {
        __m512 v0, v1;
        DequantBlock(w.format, p, &v0, &v1);
        _mm512_storeu_ps(out + 32 * b, v0);
        _mm512_storeu_ps(out + 32 * b + 16, v1);
      }
      return;
    }
  }
}

// Round-to-nearest-even float32 -> bf16 on 16 lanes (NaN kept quiet), same as F32ToBf16.
inline __m256i F32ToBf16x16(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, bits, _mm512_set1_epi32(0x400000));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

// Q4_0 / Q8_0 row segment (len a multiple of 32) straight to bf16: each block's 32 float32 values, as
// SegmentToF32 computes them, rounded by one vcvtne2ps2bf16. That instruction rounds to nearest even like
// F32ToBf16x16 and differs from it only on float32 denormals, which a dequantized weight never is (an f16
// scale is at least 2^-24 and a nonzero quant at least 1), so the bits are the scalar twin's.
void QuantSegmentToBf16(const WeightMatrix& w, int64_t n, int64_t k0, int64_t len, uint16_t* out) {
  const int64_t bb = w.format == WeightFormat::kQ8_0 ? 34 : 18;
  const uint8_t* p = w.row(n) + (k0 / 32) * bb;
  for (int64_t b = 0; b < len / 32; ++b, p += bb) {
    __m512 v0, v1;
    DequantBlock(w.format, p, &v0, &v1);
    _mm512_storeu_si512(out + 32 * b, (__m512i)_mm512_cvtne2ps_pbh(v1, v0));
  }
}

// ---- Packing: panel[k][j] = W[n0 + j][k0 + k] (columns j >= nvalid are zero) ----

alignas(64) const float kZeros[kKCB] = {};

void PackPanelF32(const WeightMatrix& w, int64_t n0, int nvalid, int64_t k0, int64_t kc, float* tmp,
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
  TransposePanel(src, kc, kZeros, out);
}

// bf16 panel as k-pairs: out[kp][j] = (W[n0+j][k0+2kp], W[n0+j][k0+2kp+1]) packed in one 32-bit word.
void PackPanelBf16(const WeightMatrix& w, int64_t n0, int nvalid, int64_t k0, int64_t kc, float* tmpf,
                   uint16_t* tmp16, uint32_t* out) {
  const int64_t kp = (kc + 1) / 2;
  const float* src[kNR];  // 32-bit words (bf16 pairs) viewed as float for the transpose
  for (int j = 0; j < kNR; ++j) {
    if (j >= nvalid) {
      src[j] = kZeros;
      continue;
    }
    uint16_t* t = tmp16 + j * (2 * kp);
    // bf16 rows are copied too, not transposed in place: one sequential copy per row streams (prefetched),
    // while the transpose reading 64 rows 64 bytes at a time stalled on every line (2x slower packing).
    if (w.format == WeightFormat::kBF16) {
      std::memcpy(t, reinterpret_cast<const uint16_t*>(w.row(n0 + j)) + k0, 2 * kc);
    } else if (w.format == WeightFormat::kQ4_0 || w.format == WeightFormat::kQ8_0) {
      QuantSegmentToBf16(w, n0 + j, k0, kc, t);  // kc: a multiple of 32 (kKCB is, and so is K)
    } else {
      SegmentToF32(w, n0 + j, k0, kc, tmpf);
      int64_t k = 0;
      for (; k + 16 <= kc; k += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(t + k), F32ToBf16x16(_mm512_loadu_ps(tmpf + k)));
      for (; k < kc; ++k) {
        const __m256i one = F32ToBf16x16(_mm512_set1_ps(tmpf[k]));
        t[k] = static_cast<uint16_t>(_mm256_extract_epi16(one, 0));
      }
    }
    if (kc % 2) t[kc] = 0;
    src[j] = reinterpret_cast<const float*>(t);
  }
  TransposePanel(src, kp, kZeros, reinterpret_cast<float*>(out));
}

// ---- Register tiles ----

// c[MR][64] (= or +=) a[MR][kc] · panel[kc][64]; each output is one FMA chain over k.
template <int MR>
void TileF32(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
             const __mmask16* mk, bool load_c) {
  __m512 acc[MR][4];
  LoadTileC<MR>(acc, c, ldc, mk, load_c);
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * kNR;
    const __m512 b0 = _mm512_load_ps(bk), b1 = _mm512_load_ps(bk + 16);
    const __m512 b2 = _mm512_load_ps(bk + 32), b3 = _mm512_load_ps(bk + 48);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * lda + k]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(av, b2, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(av, b3, acc[i][3]);
    }
  }
  StoreTileC<MR>(acc, c, ldc, mk);
}

template <int MR>
void TileBf16(const uint16_t* a, int64_t lda, const uint32_t* b, int64_t kpairs, float* c, int64_t ldc,
              const __mmask16* mk, bool load_c) {
  __m512 acc[MR][4];
  LoadTileC<MR>(acc, c, ldc, mk, load_c);
  for (int64_t p = 0; p < kpairs; ++p) {
    const uint32_t* bp = b + p * kNR;
    const __m512bh b0 = (__m512bh)_mm512_load_si512(bp), b1 = (__m512bh)_mm512_load_si512(bp + 16);
    const __m512bh b2 = (__m512bh)_mm512_load_si512(bp + 32), b3 = (__m512bh)_mm512_load_si512(bp + 48);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t pair;
      std::memcpy(&pair, a + i * lda + 2 * p, 4);
      const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
      acc[i][2] = _mm512_dpbf16_ps(acc[i][2], av, b2);
      acc[i][3] = _mm512_dpbf16_ps(acc[i][3], av, b3);
    }
  }
  StoreTileC<MR>(acc, c, ldc, mk);
}

template <typename T, typename B,
          void (*Tile1)(const T*, int64_t, const B*, int64_t, float*, int64_t, const __mmask16*, bool),
          void (*Tile2)(const T*, int64_t, const B*, int64_t, float*, int64_t, const __mmask16*, bool),
          void (*Tile3)(const T*, int64_t, const B*, int64_t, float*, int64_t, const __mmask16*, bool),
          void (*Tile4)(const T*, int64_t, const B*, int64_t, float*, int64_t, const __mmask16*, bool),
          void (*Tile5)(const T*, int64_t, const B*, int64_t, float*, int64_t, const __mmask16*, bool),
          void (*Tile6)(const T*, int64_t, const B*, int64_t, float*, int64_t, const __mmask16*, bool)>
inline void RunTile(int mr, const T* a, int64_t lda, const B* b, int64_t kc, float* c, int64_t ldc,
                    const __mmask16* mk, bool load_c) {
  switch (mr) {
    case 1:
      return Tile1(a, lda, b, kc, c, ldc, mk, load_c);
    case 2:
      return Tile2(a, lda, b, kc, c, ldc, mk, load_c);
    case 3:
      return Tile3(a, lda, b, kc, c, ldc, mk, load_c);
    case 4:
      return Tile4(a, lda, b, kc, c, ldc, mk, load_c);
    case 5:
      return Tile5(a, lda, b, kc, c, ldc, mk, load_c);
    default:
      return Tile6(a, lda, b, kc, c, ldc, mk, load_c);
  }
}

void AddBias(const float* bias, float* y, int64_t N, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (!bias) return;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t n = n0; n < n1; ++n) y[m * N + n] += bias[n];
}

constexpr size_t kPackedFloats = kNC * kKC > kNC* kKCB / 2 ? kNC* kKC : kNC* kKCB / 2;
constexpr size_t kTmpFloats = kNR * kKCB;  // float segments of 64 rows (f32 path) or one row (bf16)
constexpr size_t kTmp16Floats = kNR * (kKCB + 2) / 2;  // bf16 segments of 64 rows

}  // namespace

size_t GemmPackFloats() {
  return kPackedFloats + kTmpFloats + kTmp16Floats + 64;
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
        PackPanelF32(w, nc0 + p * kNR, nvalid, k0, kc, tmp, packed + p * kKC * kNR);
      }
      for (int64_t mc0 = m0; mc0 < m1; mc0 += kMC) {
        const int64_t mc1 = std::min(m1, mc0 + kMC);
        for (int p = 0; p < panels; ++p) {
          __mmask16 mk[4];
          ColumnMasks(static_cast<int>(std::min<int64_t>(kNR, nc1 - nc0 - p * kNR)), mk);
          const float* bp = packed + p * kKC * kNR;
          for (int64_t m = mc0; m < mc1; m += kMR) {
            const int mr = static_cast<int>(std::min<int64_t>(kMR, mc1 - m));
            RunTile<float, float, TileF32<1>, TileF32<2>, TileF32<3>, TileF32<4>, TileF32<5>, TileF32<6>>(
                mr, x + m * K + k0, K, bp, kc, y + m * N + nc0 + p * kNR, N, mk, k0 > 0);
          }
        }
      }
    }
    AddBias(bias, y, N, m0, m1, nc0, nc1);
  }
}

namespace {

// The bf16 GEMM over rows [m0, m1), columns [n0, n1). `panel(nc0, p, k0, kc)` returns the packed k-block
// [k0, k0 + kc) of the p-th 64-column panel from column nc0, as k-pairs × 64 words (packing it if needed).
template <typename PanelFn>
void GemmBf16Loop(const uint16_t* xb, int64_t K, int64_t m0, int64_t m1, int64_t N, const float* bias,
                  float* y, int64_t n0, int64_t n1, PanelFn&& panel) {
  const int64_t Kp = (K + 1) / 2 * 2;
  for (int64_t nc0 = n0; nc0 < n1; nc0 += kNC) {
    const int64_t nc1 = std::min(n1, nc0 + kNC);
    const int panels = static_cast<int>((nc1 - nc0 + kNR - 1) / kNR);
    for (int64_t k0 = 0; k0 < K; k0 += kKCB) {
      const int64_t kc = std::min(kKCB, K - k0);
      const uint32_t* bps[kNC / kNR];
      for (int p = 0; p < panels; ++p) bps[p] = panel(nc0, p, k0, kc);
      for (int64_t mc0 = m0; mc0 < m1; mc0 += kMC) {
        const int64_t mc1 = std::min(m1, mc0 + kMC);
        for (int p = 0; p < panels; ++p) {
          __mmask16 mk[4];
          ColumnMasks(static_cast<int>(std::min<int64_t>(kNR, nc1 - nc0 - p * kNR)), mk);
          for (int64_t m = mc0; m < mc1; m += kMR) {
            const int mr = static_cast<int>(std::min<int64_t>(kMR, mc1 - m));
            RunTile<uint16_t, uint32_t, TileBf16<1>, TileBf16<2>, TileBf16<3>, TileBf16<4>, TileBf16<5>,
                    TileBf16<6>>(mr, xb + m * Kp + k0, Kp, bps[p], (kc + 1) / 2, y + m * N + nc0 + p * kNR, N,
                                 mk, k0 > 0);
          }
        }
      }
    }
    AddBias(bias, y, N, m0, m1, nc0, nc1);
  }
}

}  // namespace

void GemmBf16(const uint16_t* xb, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w, const float* bias,
              float* y, int64_t n0, int64_t n1, float* pack) {
  uint32_t* packed = reinterpret_cast<uint32_t*>(pack);
  float* tmpf = pack + kPackedFloats;
  uint16_t* tmp16 = reinterpret_cast<uint16_t*>(tmpf + kTmpFloats);
  constexpr int64_t kPanelWords = kKCB / 2 * kNR;
  GemmBf16Loop(xb, K, m0, m1, w.rows, bias, y, n0, n1, [&](int64_t nc0, int p, int64_t k0, int64_t kc) {
    const int nvalid = static_cast<int>(std::min<int64_t>(kNR, std::min(n1, nc0 + kNC) - nc0 - p * kNR));
    uint32_t* out = packed + p * kPanelWords;
    PackPanelBf16(w, nc0 + p * kNR, nvalid, k0, kc, tmpf, tmp16, out);
    return static_cast<const uint32_t*>(out);
  });
}

void PackBf16Panels(const WeightMatrix& w, int64_t p0, int64_t p1, uint32_t* out, float* pack) {
  const int64_t K = w.cols, kpairs = (K + 1) / 2;
  float* tmpf = pack + kPackedFloats;
  uint16_t* tmp16 = reinterpret_cast<uint16_t*>(tmpf + kTmpFloats);
  for (int64_t p = p0; p < p1; ++p) {
    const int nvalid = static_cast<int>(std::min<int64_t>(kNR, w.rows - p * kNR));
    for (int64_t k0 = 0; k0 < K; k0 += kKCB)
      PackPanelBf16(w, p * kNR, nvalid, k0, std::min(kKCB, K - k0), tmpf, tmp16, out + (p * kpairs + k0 / 2) * kNR);
  }
}

void GemmBf16Panels(const uint16_t* xb, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w,
                    const float* bias, float* y, int64_t n0, int64_t n1) {
  IDEFICS_CHECK(n0 % kNR == 0);
  const int64_t kpairs = (K + 1) / 2;
  const uint32_t* panels = static_cast<const uint32_t*>(w.panels);
  GemmBf16Loop(xb, K, m0, m1, w.rows, bias, y, n0, n1, [&](int64_t nc0, int p, int64_t k0, int64_t) {
    return panels + ((nc0 / kNR + p) * kpairs + k0 / 2) * kNR;
  });
}

}  // namespace idefics::kern::avx512
