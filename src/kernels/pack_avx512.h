// AVX-512 helpers shared by the GEMMs (gemm_avx512.cc: float and bf16; gemm_i8_avx512.cc: int8): Q4_0 nibble
// unpacking, transposes of 32-bit words for the packers, and the output tile's masked load/store. Include
// only from *_avx512.cc files. Mirrors no reference class.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace idefics::kern::avx512 {

inline constexpr int kPanelCols = 64;  // columns of a GEMM panel (4 zmm of 16 lanes)

// The 16 nibble bytes of a Q4_0 block as signed values q - 8: lo = elements 0..15, hi = elements 16..31.
inline void UnpackQ4(const uint8_t* nibbles, __m128i* lo, __m128i* hi) {
  const __m128i k0f = _mm_set1_epi8(0x0f), k8 = _mm_set1_epi8(8);
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(nibbles));
  *lo = _mm_sub_epi8(_mm_and_si128(q, k0f), k8);
  *hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), k0f), k8);
}

// Transposes a 16 (rows) × 16 (k) block of 32-bit values: src[r] + k for k < klen (zero beyond), into
// dst[k * kPanelCols + r]. Three shuffle stages (unpack ps, unpack pd, two 128-bit lane shuffles).
inline void Transpose16(const float* const* src, int64_t klen, float* dst) {
  const __mmask16 m = klen >= 16 ? 0xffff : static_cast<__mmask16>((1u << klen) - 1);
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_maskz_loadu_ps(m, src[i]);
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));  // lane L: column 4L + 0 of rows 4i..4i+3
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 v = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88),
                 v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    const __m512 w = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    const __m512 col[4] = {_mm512_shuffle_f32x4(v, w, 0x88), _mm512_shuffle_f32x4(v1, w1, 0x88),
                           _mm512_shuffle_f32x4(v, w, 0xdd), _mm512_shuffle_f32x4(v1, w1, 0xdd)};
    for (int L = 0; L < 4; ++L) {
      const int k = 4 * L + c;
      if (k < klen) _mm512_store_ps(dst + k * kPanelCols, col[L]);
    }
  }
}

// out[k][j] = src[j][k] for k < klen, j < 64; a missing row is src[j] == zeros (at least klen zero floats,
// read at offset 0 whatever k).
inline void TransposePanel(const float* const* src, int64_t klen, const float* zeros, float* out) {
  for (int64_t k = 0; k < klen; k += 16) {
    for (int jb = 0; jb < kPanelCols / 16; ++jb) {
      const float* rows[16];
      for (int i = 0; i < 16; ++i) rows[i] = src[jb * 16 + i] == zeros ? zeros : src[jb * 16 + i] + k;
      Transpose16(rows, std::min<int64_t>(16, klen - k), out + k * kPanelCols + jb * 16);
    }
  }
}

// Column masks of a 64-column output tile with nvalid valid columns (4 × 16 lanes).
inline void ColumnMasks(int nvalid, __mmask16 mk[4]) {
  for (int j = 0; j < 4; ++j) {
    const int left = std::clamp(nvalid - 16 * j, 0, 16);
    mk[j] = left == 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
  }
}

// The MR × 64 accumulators of an output tile: c's valid columns (load_c, a later k-block) or zeros.
template <int MR>
inline void LoadTileC(__m512 (&acc)[MR][4], const float* c, int64_t ldc, const __mmask16* mk, bool load_c) {
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j)
      acc[i][j] = load_c ? _mm512_maskz_loadu_ps(mk[j], c + i * ldc + 16 * j) : _mm512_setzero_ps();
}

template <int MR>
inline void StoreTileC(const __m512 (&acc)[MR][4], float* c, int64_t ldc, const __mmask16* mk) {
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) _mm512_mask_storeu_ps(c + i * ldc + 16 * j, mk[j], acc[i][j]);
}

}  // namespace idefics::kern::avx512
