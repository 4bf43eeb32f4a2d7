// AVX2 + FMA flash-attention tile and packing: up to kFlashRows query rows of one head (sub-tiles of kFlashQ)
// against packed key blocks of kFlashK keys. q·kᵀ for two rows × 32 keys at a time (8 ymm accumulators, one
// FMA chain over the dims per score, as the scalar twin), the online softmax per row, then p·v for 4 rows ×
// up to 3 chunks of 8 dims per pass. The bf16 variant has no bf16 dot instruction to use: it computes with
// float32 FMA on the bf16-rounded q, k, v and p (products of two bf16 values are exact, so it sums the same
// terms in the same order as the scalar twin). Twin: kern::scalar::FlashTile / FlashPackBlocks
// (flash_attention.cc). Mirrors eager softmax(q·kᵀ·scale)·v, reordered as FlashAttention does.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "kernels/flash_attention.h"
#include "kernels/simd_avx2.h"

namespace idefics::kern::avx2 {
namespace {

constexpr int kQ = static_cast<int>(kFlashQ);
constexpr int kD = static_cast<int>(kFlashMaxHeadDim);

// Rounds n floats to bf16 (round to nearest even, as F32ToBf16) into dst, zero-filling dst[n, n_out).
inline void RowToBf16(const float* src, int64_t n, uint16_t* dst, int64_t n_out) {
  for (int64_t d = 0; d < n_out; d += 16) {
    alignas(32) uint16_t h[16];
    const __m256 a = _mm256_maskload_ps(src + d, Mask8(n - d)),
                 b = _mm256_maskload_ps(src + d + 8, Mask8(n - d - 8));
    _mm256_store_si256(reinterpret_cast<__m256i*>(h), F32ToBf16x16(a, b));
    std::memcpy(dst + d, h, sizeof(uint16_t) * std::min<int64_t>(16, n_out - d));
  }
}

// The bf16 value in the low (even) or high (odd) half of each 32-bit word, as float32.
inline __m256 EvenBf16(__m256i w) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
inline __m256 OddBf16(__m256i w) {
  return _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
}

// Unscaled scores of rows r0, r0 + 1 of q (kD floats apart) against key block kb: s[r][32].
inline void ScoresF32Pair(const float* q, int64_t hd, const float* kb, float* s) {
  __m256 acc[2][4];
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < 4; ++i) acc[r][i] = _mm256_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    const float* kd = kb + d * kFlashK;
    const __m256 k0 = _mm256_load_ps(kd), k1 = _mm256_load_ps(kd + 8), k2 = _mm256_load_ps(kd + 16),
                 k3 = _mm256_load_ps(kd + 24);
    for (int r = 0; r < 2; ++r) {
      const __m256 qv = _mm256_broadcast_ss(q + r * kD + d);
      acc[r][0] = _mm256_fmadd_ps(qv, k0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(qv, k1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(qv, k2, acc[r][2]);
      acc[r][3] = _mm256_fmadd_ps(qv, k3, acc[r][3]);
    }
  }
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < 4; ++i) _mm256_store_ps(s + r * kFlashK + 8 * i, acc[r][i]);
}

// The bf16 layout: per pair of dims, one 32-bit word (even dim low, odd dim high) per key. q holds the
// bf16-rounded queries as floats, zero beyond head_dim.
inline void ScoresBf16Pair(const float* q, int64_t pairs, const uint16_t* kb, float* s) {
  __m256 acc[2][4];
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < 4; ++i) acc[r][i] = _mm256_setzero_ps();
  for (int64_t dp = 0; dp < pairs; ++dp) {
    const __m256i* kw = reinterpret_cast<const __m256i*>(kb + dp * 2 * kFlashK);
    const __m256 qe[2] = {_mm256_broadcast_ss(q + 2 * dp), _mm256_broadcast_ss(q + kD + 2 * dp)};
    const __m256 qo[2] = {_mm256_broadcast_ss(q + 2 * dp + 1), _mm256_broadcast_ss(q + kD + 2 * dp + 1)};
    for (int i = 0; i < 4; ++i) {
      const __m256i w = _mm256_load_si256(kw + i);
      const __m256 ke = EvenBf16(w), ko = OddBf16(w);
      for (int r = 0; r < 2; ++r) {
        acc[r][i] = _mm256_fmadd_ps(qe[r], ke, acc[r][i]);  // dim 2dp, then 2dp + 1: the scalar twin's order
        acc[r][i] = _mm256_fmadd_ps(qo[r], ko, acc[r][i]);
      }
    }
  }
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < 4; ++i) _mm256_store_ps(s + r * kFlashK + 8 * i, acc[r][i]);
}

constexpr int kRowGroup = 4;  // rows per p·v pass: 4 rows × up to 3 chunks of 8 dims = 12 accumulators

// o[rows r0..r0+3][chunks c0..c0+CG) = o · corr[r] + Σ_j p[r][j] · v[j] over the block's `valid` keys; vb:
// the block's float32 values copied to [kFlashK][hd16] (zero beyond head_dim). The copy matters: value rows
// `kv_stride` floats apart are often 4 KiB apart (text: 8 kv heads × 128), and 32 of them alias in L1.
template <int CG>
inline void PvF32(float* o, const float* corr, const float* pf, const float* vb, int64_t hd16, int64_t valid,
                  int64_t c0, int r0) {
  __m256 acc[kRowGroup][CG];
  for (int r = 0; r < kRowGroup; ++r) {
    const __m256 cr = _mm256_set1_ps(corr[r0 + r]);
    for (int cc = 0; cc < CG; ++cc)
      acc[r][cc] = _mm256_mul_ps(_mm256_load_ps(o + (r0 + r) * kD + (c0 + cc) * 8), cr);
  }
  for (int64_t j = 0; j < valid; ++j) {
    __m256 vv[CG];
    for (int cc = 0; cc < CG; ++cc) vv[cc] = _mm256_load_ps(vb + j * hd16 + (c0 + cc) * 8);
    for (int r = 0; r < kRowGroup; ++r) {
      const __m256 pr = _mm256_broadcast_ss(pf + (r0 + r) * kFlashK + j);
      for (int cc = 0; cc < CG; ++cc) acc[r][cc] = _mm256_fmadd_ps(pr, vv[cc], acc[r][cc]);
    }
  }
  for (int r = 0; r < kRowGroup; ++r)
    for (int cc = 0; cc < CG; ++cc) _mm256_store_ps(o + (r0 + r) * kD + (c0 + cc) * 8, acc[r][cc]);
}

// bf16 values: [kFlashK / 2][hd16] words, each the pair of keys (2jp low, 2jp + 1 high) of one dim. The
// probabilities pf are already rounded to bf16, so every product is exact.
template <int CG>
inline void PvBf16(float* o, const float* corr, const float* pf, const uint16_t* vb, int64_t hd16, int64_t c0,
                   int r0) {
  __m256 acc[kRowGroup][CG];
  for (int r = 0; r < kRowGroup; ++r) {
    const __m256 cr = _mm256_set1_ps(corr[r0 + r]);
    for (int cc = 0; cc < CG; ++cc)
      acc[r][cc] = _mm256_mul_ps(_mm256_load_ps(o + (r0 + r) * kD + (c0 + cc) * 8), cr);
  }
  for (int64_t jp = 0; jp < kFlashK / 2; ++jp) {
    __m256 ve[CG], vo[CG];
    for (int cc = 0; cc < CG; ++cc) {
      const __m256i w =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(vb + (jp * hd16 + (c0 + cc) * 8) * 2));
      ve[cc] = EvenBf16(w);
      vo[cc] = OddBf16(w);
    }
    for (int r = 0; r < kRowGroup; ++r) {
      const __m256 pe = _mm256_broadcast_ss(pf + (r0 + r) * kFlashK + 2 * jp);
      const __m256 po = _mm256_broadcast_ss(pf + (r0 + r) * kFlashK + 2 * jp + 1);
      for (int cc = 0; cc < CG; ++cc) {
        acc[r][cc] = _mm256_fmadd_ps(pe, ve[cc], acc[r][cc]);
        acc[r][cc] = _mm256_fmadd_ps(po, vo[cc], acc[r][cc]);
      }
    }
  }
  for (int r = 0; r < kRowGroup; ++r)
    for (int cc = 0; cc < CG; ++cc) _mm256_store_ps(o + (r0 + r) * kD + (c0 + cc) * 8, acc[r][cc]);
}

// Splits the nz chunks of 8 dims into groups of at most 3, as even as possible.
template <typename F>
inline void ForChunkGroups(int64_t nz, F f) {
  const int64_t groups = (nz + 2) / 3;
  int64_t c0 = 0;
  for (int64_t gi = 0; gi < groups; ++gi) {
    const int64_t size = (nz - c0 + (groups - gi) - 1) / (groups - gi);
    f(c0, static_cast<int>(size));
    c0 += size;
  }
}

}  // namespace

void FlashPackBlocks(const float* k, const float* v, int64_t n_keys, int64_t stride, int64_t hd, bool bf16,
                     int64_t b0, int64_t b1, void* storage) {
  IDEFICS_CHECK(hd > 0 && hd <= kFlashMaxHeadDim);
  if (!bf16) {
    float* keys = static_cast<float*>(storage);
    for (int64_t b = b0; b < b1; ++b) {
      float* blk = keys + b * hd * kFlashK;
      const int64_t valid = std::clamp<int64_t>(n_keys - b * kFlashK, 0, kFlashK);
      for (int64_t j = 0; j < kFlashK; ++j) {
        const float* row = k + (b * kFlashK + j) * stride;
        for (int64_t d = 0; d < hd; ++d) blk[d * kFlashK + j] = j < valid ? row[d] : 0.f;
      }
    }
    return;
  }
  const int64_t hd2 = FlashHeadDim2(hd), hd16 = FlashHeadDim16(hd);
  uint16_t* keys = static_cast<uint16_t*>(storage);
  uint16_t* values =
      reinterpret_cast<uint16_t*>(static_cast<char*>(storage) + FlashKeyBytes(n_keys, hd, true));
  alignas(32) uint16_t kr[kFlashMaxHeadDim], vr[kFlashMaxHeadDim];
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t valid = std::clamp<int64_t>(n_keys - b * kFlashK, 0, kFlashK);
    uint16_t* kb = keys + b * hd2 * kFlashK;
    uint16_t* vb = values + b * kFlashK * hd16;
    for (int64_t j = 0; j < kFlashK; ++j) {
      if (j < valid) {
        RowToBf16(k + (b * kFlashK + j) * stride, hd, kr, hd2);
        RowToBf16(v + (b * kFlashK + j) * stride, hd, vr, hd16);
      } else {
        std::memset(kr, 0, sizeof(kr));
        std::memset(vr, 0, sizeof(vr));
      }
      for (int64_t d = 0; d < hd2; ++d) kb[((d / 2) * kFlashK + j) * 2 + d % 2] = kr[d];
      for (int64_t d = 0; d < hd16; ++d) vb[((j / 2) * hd16 + d) * 2 + j % 2] = vr[d];
    }
  }
}

void FlashTile(const FlashPacked& kv, const FlashTileArgs& t) {
  const int64_t hd = kv.head_dim, hd2 = FlashHeadDim2(hd), hd16 = FlashHeadDim16(hd), nz = hd16 / 8;
  const float ninf = -std::numeric_limits<float>::infinity();
  IDEFICS_CHECK(t.rows >= 1 && t.rows <= kFlashRows && hd <= kFlashMaxHeadDim);
  constexpr int kSubTiles = static_cast<int>(kFlashRows / kFlashQ);
  const int subtiles = static_cast<int>((t.rows + kQ - 1) / kQ);
  // Per row: visible keys (padding rows repeat the last row); per sub-tile: the union [lo, hi) of its rows.
  int64_t kbeg[kFlashRows], kend[kFlashRows], lo[kSubTiles], hi[kSubTiles];
  for (int st = 0; st < subtiles; ++st) {
    for (int r = st * kQ; r < (st + 1) * kQ; ++r) {
      const int64_t src = std::min<int64_t>(r, t.rows - 1);
      kbeg[r] = t.key_begin[src];
      kend[r] = t.key_end[src];
      lo[st] = r == st * kQ ? kbeg[r] : std::min(lo[st], kbeg[r]);
      hi[st] = r == st * kQ ? kend[r] : std::max(hi[st], kend[r]);
    }
  }
  int64_t all_lo = lo[0], all_hi = hi[0];
  for (int st = 1; st < subtiles; ++st) {
    all_lo = std::min(all_lo, lo[st]);
    all_hi = std::max(all_hi, hi[st]);
  }
  alignas(32) float qf[kFlashRows * kD];  // queries (bf16-rounded in the bf16 variant), zero beyond head_dim
  alignas(32) float o[kFlashRows * kD];
  alignas(32) float s[kQ * kFlashK];     // scores of one sub-tile against one block
  alignas(32) float pf[kQ * kFlashK];    // probabilities (bf16-rounded in the bf16 variant)
  alignas(32) float vblk[kFlashK * kD];  // f32 values of the current block, [kFlashK][hd16]
  float m[kFlashRows], l[kFlashRows], corr[kQ];
  for (int r = 0; r < subtiles * kQ; ++r) {
    const float* src = t.q + std::min<int64_t>(r, t.rows - 1) * t.q_stride;
    float* dst = qf + r * kD;
    std::fill(dst, dst + hd16, 0.f);
    if (kv.bf16) {
      alignas(32) uint16_t h[kFlashMaxHeadDim];
      RowToBf16(src, hd, h, hd16);
      for (int64_t d = 0; d < hd16; d += 8)
        _mm256_store_ps(dst + d, Bf16x8ToF32(_mm_load_si128(reinterpret_cast<const __m128i*>(h + d))));
    } else {
      std::memcpy(dst, src, sizeof(float) * hd);
    }
    std::fill(o + r * kD, o + r * kD + hd16, 0.f);
    m[r] = ninf;
    l[r] = 0.f;
  }
  const float scale = FlashScoreScale(t, hd);
  const __m256 vscale = _mm256_set1_ps(scale), vninf = _mm256_set1_ps(ninf);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  // Key blocks outermost: a block stays in L1 while every sub-tile of the task uses it.
  for (int64_t b = all_lo / kFlashK; b * kFlashK < all_hi; ++b) {
    const int64_t key0 = b * kFlashK;
    const int64_t valid = std::min(kFlashK, kv.n_keys - key0);
    if (!kv.bf16) {
      for (int64_t j = 0; j < valid; ++j) {
        std::memcpy(vblk + j * hd16, kv.values_f32 + (key0 + j) * kv.values_stride, sizeof(float) * hd);
        std::fill(vblk + j * hd16 + hd, vblk + (j + 1) * hd16, 0.f);
      }
    }
    for (int st = 0; st < subtiles; ++st) {
      if (key0 + kFlashK <= lo[st] || key0 >= hi[st]) continue;  // no row of this sub-tile sees the block
      const int rb = st * kQ;
      for (int r = 0; r < kQ; r += 2) {
        if (kv.bf16) {
          ScoresBf16Pair(qf + (rb + r) * kD, hd2 / 2, kv.keys_bf16 + b * hd2 * kFlashK, s + r * kFlashK);
        } else {
          ScoresF32Pair(qf + (rb + r) * kD, hd, kv.keys_f32 + b * hd * kFlashK, s + r * kFlashK);
        }
      }
      // Online softmax, row by row (the scalar twin's formulas; exp(s - m) by Exp8).
      for (int r = 0; r < kQ; ++r) {
        const int64_t row = rb + r;
        // Visible range relative to key0, clamped to [-1, 33] so it fits 32-bit lanes.
        const __m256i vb = _mm256_set1_epi32(
                          static_cast<int>(std::clamp<int64_t>(kbeg[row] - key0, -1, kFlashK + 1))),
                      ve = _mm256_set1_epi32(
                          static_cast<int>(std::clamp<int64_t>(kend[row] - key0, -1, kFlashK + 1)));
        __m256 sv[4];
        __m256i vis[4];
        __m256 bm = vninf;
        for (int i = 0; i < 4; ++i) {
          // key0 + 8i + lane is visible iff begin <= key < end.
          const __m256i key = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * i));
          vis[i] = _mm256_andnot_si256(_mm256_cmpgt_epi32(vb, key), _mm256_cmpgt_epi32(ve, key));
          sv[i] = _mm256_blendv_ps(vninf, _mm256_mul_ps(_mm256_load_ps(s + r * kFlashK + 8 * i), vscale),
                                   _mm256_castsi256_ps(vis[i]));
          bm = _mm256_max_ps(bm, sv[i]);
        }
        const float m_new = std::max(m[row], Hmax8(bm));
        float* p = pf + r * kFlashK;
        if (m_new == ninf) {
          corr[r] = 1.f;
          std::fill(p, p + kFlashK, 0.f);
          continue;  // l stays (l · 1 + 0)
        }
        corr[r] = std::exp(m[row] - m_new);
        const __m256 mv = _mm256_set1_ps(m_new);
        __m256 pv[4];
        for (int i = 0; i < 4; ++i)
          pv[i] = _mm256_and_ps(Exp8(_mm256_sub_ps(sv[i], mv)), _mm256_castsi256_ps(vis[i]));
        const float sum = Hsum8(_mm256_add_ps(_mm256_add_ps(pv[0], pv[1]), _mm256_add_ps(pv[2], pv[3])));
        for (int i = 0; i < 4; ++i) {
          if (kv.bf16) pv[i] = EvenBf16(F32ToBf16Lanes(pv[i]));  // p · v on bf16 probabilities, as the twin
          _mm256_store_ps(p + 8 * i, pv[i]);
        }
        l[row] = l[row] * corr[r] + sum;
        m[row] = m_new;
      }
      // o = o · corr + p · v for the sub-tile, 4 rows × up to 3 chunks of 8 dims per pass.
      float* os = o + rb * kD;
      for (int r0 = 0; r0 < kQ; r0 += kRowGroup) {
        if (kv.bf16) {
          const uint16_t* vbf = kv.values_bf16 + b * kFlashK * hd16;
          ForChunkGroups(nz, [&](int64_t c0, int size) {
            switch (size) {
              case 1:
                return PvBf16<1>(os, corr, pf, vbf, hd16, c0, r0);
              case 2:
                return PvBf16<2>(os, corr, pf, vbf, hd16, c0, r0);
              default:
                return PvBf16<3>(os, corr, pf, vbf, hd16, c0, r0);
            }
          });
        } else {
          ForChunkGroups(nz, [&](int64_t c0, int size) {
            switch (size) {
              case 1:
                return PvF32<1>(os, corr, pf, vblk, hd16, valid, c0, r0);
              case 2:
                return PvF32<2>(os, corr, pf, vblk, hd16, valid, c0, r0);
              default:
                return PvF32<3>(os, corr, pf, vblk, hd16, valid, c0, r0);
            }
          });
        }
      }
    }
  }
  for (int64_t r = 0; r < t.rows; ++r) {
    const __m256 lv = _mm256_set1_ps(l[r]);
    for (int64_t c = 0; c < hd; c += 8) {
      const __m256 y = _mm256_div_ps(_mm256_load_ps(o + r * kD + c), lv);
      if (c + 8 <= hd) {
        _mm256_storeu_ps(t.out + r * t.out_stride + c, y);
      } else {
        _mm256_maskstore_ps(t.out + r * t.out_stride + c, Mask8(hd - c), y);
      }
    }
  }
}

}  // namespace idefics::kern::avx2
