// AVX-512 flash-attention tile: up to kFlashRows query rows of one head (sub-tiles of kFlashQ) against packed
// key blocks of kFlashK keys.
// Scores for a block live in 2 × kFlashQ zmm accumulators (q·kᵀ: one dim — or, in bf16, one pair of dims —
// of 32 keys per two loads, broadcast query values); the online softmax rescales the output tile, then p·v
// adds the block's weighted values, 8 rows × up to 48 dims per pass. Twin: kern::scalar::FlashTile (flash_attention.cc).
// Mirrors eager softmax(q·kᵀ·scale)·v, reordered as FlashAttention does.
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsic headers as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "kernels/flash_attention.h"
#include "kernels/simd_avx512.h"

namespace idefics::kern::avx512 {
namespace {

constexpr int kQ = static_cast<int>(kFlashQ);

// Scores of the tile against key block b: s[r][0..1] (keys 0-15, 16-31 of the block), unscaled.
inline void ScoresF32(const float* q, int64_t hd, const float* kb, __m512 s[kQ][2]) {
  for (int r = 0; r < kQ; ++r) s[r][0] = s[r][1] = _mm512_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    const __m512 k0 = _mm512_load_ps(kb + d * kFlashK), k1 = _mm512_load_ps(kb + d * kFlashK + 16);
    for (int r = 0; r < kQ; ++r) {
      const __m512 qv = _mm512_set1_ps(q[r * kFlashMaxHeadDim + d]);
      s[r][0] = _mm512_fmadd_ps(qv, k0, s[r][0]);
      s[r][1] = _mm512_fmadd_ps(qv, k1, s[r][1]);
    }
  }
}

// q32: the tile's queries as bf16 pairs (one uint32 per pair of dims).
inline void ScoresBf16(const uint32_t* q32, int64_t pairs, const uint16_t* kb, __m512 s[kQ][2]) {
  for (int r = 0; r < kQ; ++r) s[r][0] = s[r][1] = _mm512_setzero_ps();
  for (int64_t dp = 0; dp < pairs; ++dp) {
    const __m512bh k0 = (__m512bh)_mm512_load_si512(kb + dp * 2 * kFlashK);
    const __m512bh k1 = (__m512bh)_mm512_load_si512(kb + dp * 2 * kFlashK + 32);
    for (int r = 0; r < kQ; ++r) {
      const __m512bh qv = (__m512bh)_mm512_set1_epi32(static_cast<int>(q32[r * kFlashMaxHeadDim / 2 + dp]));
      s[r][0] = _mm512_dpbf16_ps(s[r][0], qv, k0);
      s[r][1] = _mm512_dpbf16_ps(s[r][1], qv, k1);
    }
  }
}

// Lanes of keys [key0, key0 + 16) inside [begin, end).
inline __mmask16 VisibleMask(int64_t key0, int64_t begin, int64_t end) {
  const int64_t a = std::clamp<int64_t>(begin - key0, 0, 16), b = std::clamp<int64_t>(end - key0, 0, 16);
  if (b <= a) return 0;
  const uint32_t hi = b >= 16 ? 0xffffu : (1u << b) - 1, lo = (1u << a) - 1;
  return static_cast<__mmask16>(hi & ~lo);
}


// Horizontal reduction of 8 vectors at once (op = max or add): lane r of the result (r < 8) is the reduction
// of v[r]'s 16 lanes, in a fixed order. About 3 instructions per row instead of ~9 for one reduce each.
template <typename Op>
inline __m512 Reduce8(const __m512 v[8], Op op) {
  __m512 t[4], u[2];
  for (int i = 0; i < 4; ++i)  // lanes 0-7: halves of v[2i] combined; lanes 8-15: of v[2i+1]
    t[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xee));
  for (int i = 0; i < 2; ++i)  // 128-bit chunk c: the 4 partials of row 4i + c
    u[i] = op(_mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0x88), _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0xdd));
  // In each chunk c: [row c: 2 partials, row c + 4: 2 partials], then one partial each at lanes 4c, 4c + 2.
  __m512 w = op(_mm512_shuffle_ps(u[0], u[1], 0x88), _mm512_shuffle_ps(u[0], u[1], 0xdd));
  w = op(w, _mm512_shuffle_ps(w, w, 0xb1));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0), w);
}

inline __m512 MaxOp(__m512 a, __m512 b) {
  return _mm512_max_ps(a, b);
}
inline __m512 AddOp(__m512 a, __m512 b) {
  return _mm512_add_ps(a, b);
}

constexpr int kRowGroup = kQ;  // rows per p·v pass: 8 rows × up to 3 chunks of 16 dims = 24 accumulators

// o[r][chunks c0..c0+CG) = o · corr[r] + Σ_j p[r][j] · v[j] for the rows from r0 (bf16: pairs of keys). All 8
// rows at once keep 16-24 independent accumulator chains in flight (vdpbf16ps / FMA latency × 2 pipes).
template <int CG>
inline void PvBf16(float* o, const float* corr, const uint32_t* p32, const uint16_t* vb, int64_t hd16, int64_t c0,
                   int r0) {
  __m512 acc[kRowGroup][CG];
  for (int r = 0; r < kRowGroup; ++r) {
    const __m512 cr = _mm512_set1_ps(corr[r0 + r]);
    for (int cc = 0; cc < CG; ++cc)
      acc[r][cc] = _mm512_mul_ps(_mm512_load_ps(o + (r0 + r) * kFlashMaxHeadDim + (c0 + cc) * 16), cr);
  }
  for (int64_t jp = 0; jp < kFlashK / 2; ++jp) {
    __m512bh vv[CG];
    for (int cc = 0; cc < CG; ++cc) vv[cc] = (__m512bh)_mm512_load_si512(vb + (jp * hd16 + (c0 + cc) * 16) * 2);
    for (int r = 0; r < kRowGroup; ++r) {
      const __m512bh pr = (__m512bh)_mm512_set1_epi32(static_cast<int>(p32[(r0 + r) * kFlashK / 2 + jp]));
      for (int cc = 0; cc < CG; ++cc) acc[r][cc] = _mm512_dpbf16_ps(acc[r][cc], pr, vv[cc]);
    }
  }
  for (int r = 0; r < kRowGroup; ++r)
    for (int cc = 0; cc < CG; ++cc) _mm512_store_ps(o + (r0 + r) * kFlashMaxHeadDim + (c0 + cc) * 16, acc[r][cc]);
}

// The float32 version: values read in place (`valid` rows `stride` floats apart), dims beyond hd masked.
template <int CG>
inline void PvF32(float* o, const float* corr, const float* pf, const float* v, int64_t stride, int64_t valid,
                  int64_t hd, int64_t c0, int r0) {
  __m512 acc[kRowGroup][CG];
  __mmask16 mk[CG];
  for (int cc = 0; cc < CG; ++cc) mk[cc] = Mask(hd - (c0 + cc) * 16);
  for (int r = 0; r < kRowGroup; ++r) {
    const __m512 cr = _mm512_set1_ps(corr[r0 + r]);
    for (int cc = 0; cc < CG; ++cc)
      acc[r][cc] = _mm512_mul_ps(_mm512_load_ps(o + (r0 + r) * kFlashMaxHeadDim + (c0 + cc) * 16), cr);
  }
  for (int64_t j = 0; j < valid; ++j) {
    __m512 vv[CG];
    for (int cc = 0; cc < CG; ++cc) vv[cc] = _mm512_maskz_loadu_ps(mk[cc], v + j * stride + (c0 + cc) * 16);
    for (int r = 0; r < kRowGroup; ++r) {
      const __m512 pr = _mm512_set1_ps(pf[(r0 + r) * kFlashK + j]);
      for (int cc = 0; cc < CG; ++cc) acc[r][cc] = _mm512_fmadd_ps(pr, vv[cc], acc[r][cc]);
    }
  }
  for (int r = 0; r < kRowGroup; ++r)
    for (int cc = 0; cc < CG; ++cc) _mm512_store_ps(o + (r0 + r) * kFlashMaxHeadDim + (c0 + cc) * 16, acc[r][cc]);
}

// Splits the nz chunks of 16 dims into groups of at most 3, as even as possible (5 -> 3 + 2, 8 -> 3 + 3 + 2).
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

// Rounds n floats to bf16 (round to nearest even, as F32ToBf16) into dst, zero-filling dst[n, n_out).
inline void RowToBf16(const float* src, int64_t n, uint16_t* dst, int64_t n_out) {
  for (int64_t d = 0; d < n_out; d += 16) {
    const __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(Mask(n - d), src + d));
    _mm256_mask_storeu_epi16(dst + d, Mask(n_out - d), h);
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
        if (j < valid) {
          for (int64_t d = 0; d < hd; ++d) blk[d * kFlashK + j] = row[d];
        } else {
          for (int64_t d = 0; d < hd; ++d) blk[d * kFlashK + j] = 0.f;
        }
      }
    }
    return;
  }
  const int64_t hd2 = FlashHeadDim2(hd), hd16 = FlashHeadDim16(hd), pairs = hd2 / 2;
  uint16_t* keys = static_cast<uint16_t*>(storage);
  uint16_t* values = reinterpret_cast<uint16_t*>(static_cast<char*>(storage) + FlashKeyBytes(n_keys, hd, true));
  // Interleaves two rows of 16 bf16 (keys 2jp, 2jp + 1): lanes (d, key) = (i / 2, i % 2).
  alignas(64) uint16_t order[32];
  for (int i = 0; i < 32; ++i) order[i] = static_cast<uint16_t>(i / 2 + (i % 2) * 32);
  const __m512i interleave = _mm512_load_si512(order);
  alignas(64) uint32_t rows[kFlashK][kFlashMaxHeadDim / 2];
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t valid = std::clamp<int64_t>(n_keys - b * kFlashK, 0, kFlashK);
    // Keys: each row to bf16 pairs, then a 32 × pairs transpose of 32-bit pairs.
    for (int64_t j = 0; j < kFlashK; ++j) {
      uint16_t* dst = reinterpret_cast<uint16_t*>(rows[j]);
      if (j < valid) {
        RowToBf16(k + (b * kFlashK + j) * stride, hd, dst, hd2);
      } else {
        std::memset(dst, 0, sizeof(uint16_t) * hd2);
      }
    }
    uint32_t* kb = reinterpret_cast<uint32_t*>(keys + b * hd2 * kFlashK);
    for (int64_t dp = 0; dp < pairs; ++dp)
      for (int64_t j = 0; j < kFlashK; ++j) kb[dp * kFlashK + j] = rows[j][dp];
    // Values: pairs of keys interleaved per dim, 16 dims (one zmm) at a time.
    uint16_t* vb = values + b * kFlashK * hd16;
    for (int64_t jp = 0; jp < kFlashK / 2; ++jp) {
      const int64_t j0 = 2 * jp, j1 = 2 * jp + 1;
      for (int64_t c = 0; c < hd16; c += 16) {
        const __mmask16 mk = Mask(hd - c);
        const __m512 x0 = j0 < valid ? _mm512_maskz_loadu_ps(mk, v + (b * kFlashK + j0) * stride + c) : _mm512_setzero_ps();
        const __m512 x1 = j1 < valid ? _mm512_maskz_loadu_ps(mk, v + (b * kFlashK + j1) * stride + c) : _mm512_setzero_ps();
        const __m512i h0 = _mm512_castsi256_si512((__m256i)_mm512_cvtneps_pbh(x0));
        const __m512i h1 = _mm512_castsi256_si512((__m256i)_mm512_cvtneps_pbh(x1));
        _mm512_store_si512(vb + (jp * hd16 + c) * 2, _mm512_permutex2var_epi16(h0, interleave, h1));
      }
    }
  }
}

void FlashTile(const FlashPacked& kv, const FlashTileArgs& t) {
  const int64_t hd = kv.head_dim, hd2 = FlashHeadDim2(hd), hd16 = FlashHeadDim16(hd), nz = hd16 / 16;
  const float ninf = -std::numeric_limits<float>::infinity();
  IDEFICS_CHECK(t.rows >= 1 && t.rows <= kFlashRows && hd <= kFlashMaxHeadDim);
  constexpr int kSubTiles = static_cast<int>(kFlashRows / kFlashQ);
  const int subtiles = static_cast<int>((t.rows + kQ - 1) / kQ);
  // Per row: visible keys (padding rows repeat the last row); per sub-tile of 8 rows: the union of its rows'
  // ranges [lo, hi) and their intersection [max_begin, min_end) (blocks inside it need no mask).
  int64_t kbeg[kFlashRows], kend[kFlashRows];
  int64_t lo[kSubTiles], hi[kSubTiles], max_begin[kSubTiles], min_end[kSubTiles];
  for (int st = 0; st < subtiles; ++st) {
    for (int r = st * kQ; r < (st + 1) * kQ; ++r) {
      const int64_t src = std::min<int64_t>(r, t.rows - 1);
      kbeg[r] = t.key_begin[src];
      kend[r] = t.key_end[src];
      lo[st] = r == st * kQ ? kbeg[r] : std::min(lo[st], kbeg[r]);
      hi[st] = r == st * kQ ? kend[r] : std::max(hi[st], kend[r]);
      max_begin[st] = r == st * kQ ? kbeg[r] : std::max(max_begin[st], kbeg[r]);
      min_end[st] = r == st * kQ ? kend[r] : std::min(min_end[st], kend[r]);
    }
  }
  int64_t all_lo = lo[0], all_hi = hi[0];
  for (int st = 1; st < subtiles; ++st) {
    all_lo = std::min(all_lo, lo[st]);
    all_hi = std::max(all_hi, hi[st]);
  }
  alignas(64) float qf[kFlashRows * kFlashMaxHeadDim];  // f32 queries, or bf16 pairs in each row's first half
  alignas(64) float o[kFlashRows * kFlashMaxHeadDim];
  alignas(64) float pf[kQ * kFlashK];     // f32 probabilities of one sub-tile
  alignas(64) uint16_t pb[kQ * kFlashK];  // bf16 probabilities of one sub-tile
  alignas(64) float corr[16];
  __m512 m_v[kSubTiles], l_v[kSubTiles];  // running max / sum per sub-tile, lanes 0-7 = its rows
  uint32_t* q32 = reinterpret_cast<uint32_t*>(qf);
  for (int r = 0; r < subtiles * kQ; ++r) {
    const float* src = t.q + std::min<int64_t>(r, t.rows - 1) * t.q_stride;
    if (kv.bf16) {
      RowToBf16(src, hd, reinterpret_cast<uint16_t*>(q32 + r * kFlashMaxHeadDim / 2), hd2);
    } else {
      std::memcpy(qf + r * kFlashMaxHeadDim, src, sizeof(float) * hd);
    }
    for (int64_t c = 0; c < nz; ++c) _mm512_store_ps(o + r * kFlashMaxHeadDim + c * 16, _mm512_setzero_ps());
  }
  for (int st = 0; st < subtiles; ++st) {
    m_v[st] = _mm512_set1_ps(ninf);
    l_v[st] = _mm512_setzero_ps();
  }
  const __m512 scale = _mm512_set1_ps(FlashScoreScale(t, hd));
  const __m512 vninf = _mm512_set1_ps(ninf);
  // Key blocks outermost: a block (≈10 KB in bf16) stays in L1 while every sub-tile of the task uses it, so the
  // packed keys and values stream from L2/L3 once per kFlashRows rows instead of once per 8.
  for (int64_t b = all_lo / kFlashK; b * kFlashK < all_hi; ++b) {
    const int64_t key0 = b * kFlashK;
    for (int st = 0; st < subtiles; ++st) {
      if (key0 + kFlashK <= lo[st] || key0 >= hi[st]) continue;  // no row of this sub-tile sees the block
      const int64_t* sb = kbeg + st * kQ;
      const int64_t* se = kend + st * kQ;
      float* os = o + st * kQ * kFlashMaxHeadDim;
      __m512 s[kQ][2];
      if (kv.bf16) {
        ScoresBf16(q32 + st * kQ * kFlashMaxHeadDim / 2, hd2 / 2, kv.keys_bf16 + b * hd2 * kFlashK, s);
      } else {
        ScoresF32(qf + st * kQ * kFlashMaxHeadDim, hd, kv.keys_f32 + b * hd * kFlashK, s);
      }
      // Online softmax for the 8 rows at once: row maxima and sums by Reduce8, the running state (m, l) and
      // the correction factors as vectors over rows (lanes 0-7).
      const bool all_visible = key0 >= max_begin[st] && key0 + kFlashK <= min_end[st];
      __mmask16 vis[kQ][2];
      __m512 part[kQ];
      for (int r = 0; r < kQ; ++r) {
        s[r][0] = _mm512_mul_ps(s[r][0], scale);
        s[r][1] = _mm512_mul_ps(s[r][1], scale);
        if (all_visible) {
          vis[r][0] = vis[r][1] = 0xffff;
        } else {
          vis[r][0] = VisibleMask(key0, sb[r], se[r]);
          vis[r][1] = VisibleMask(key0 + 16, sb[r], se[r]);
          s[r][0] = _mm512_mask_mov_ps(vninf, vis[r][0], s[r][0]);
          s[r][1] = _mm512_mask_mov_ps(vninf, vis[r][1], s[r][1]);
        }
        part[r] = _mm512_max_ps(s[r][0], s[r][1]);
      }
      const __m512 m_new = _mm512_max_ps(m_v[st], Reduce8(part, MaxOp));
      // exp(m_old - m_new); 1 where no key was visible yet (both -inf, whose difference is NaN).
      const __m512 corr_v = _mm512_mask_mov_ps(Exp16(_mm512_sub_ps(m_v[st], m_new)),
                                               _mm512_cmp_ps_mask(m_new, vninf, _CMP_EQ_OQ), _mm512_set1_ps(1.f));
      _mm512_store_ps(corr, corr_v);
      for (int r = 0; r < kQ; ++r) {
        // A row with nothing visible so far has m_new = -inf and no visible lane: the mask makes p exactly 0.
        // bf16 probabilities (2^-9) take the cheaper exponential; float32 keeps the accurate one.
        const __m512 mv = _mm512_permutexvar_ps(_mm512_set1_epi32(r), m_new);
        const __m512 d0 = _mm512_sub_ps(s[r][0], mv), d1 = _mm512_sub_ps(s[r][1], mv);
        const __m512 p0 = _mm512_maskz_mov_ps(vis[r][0], kv.bf16 ? Exp16NonPositiveLowPrecision(d0) : Exp16(d0));
        const __m512 p1 = _mm512_maskz_mov_ps(vis[r][1], kv.bf16 ? Exp16NonPositiveLowPrecision(d1) : Exp16(d1));
        part[r] = _mm512_add_ps(p0, p1);
        if (kv.bf16) {
          _mm512_store_si512(pb + r * kFlashK, (__m512i)_mm512_cvtne2ps_pbh(p1, p0));
        } else {
          _mm512_store_ps(pf + r * kFlashK, p0);
          _mm512_store_ps(pf + r * kFlashK + 16, p1);
        }
      }
      l_v[st] = _mm512_fmadd_ps(l_v[st], corr_v, Reduce8(part, AddOp));
      m_v[st] = m_new;
      // o = o · corr + p · v: 8 rows × up to 3 chunks of 16 dims per pass (one value load feeds 8 rows).
      if (kv.bf16) {
        const uint16_t* vb = kv.values_bf16 + b * kFlashK * hd16;
        const uint32_t* p32 = reinterpret_cast<const uint32_t*>(pb);
        ForChunkGroups(nz, [&](int64_t c0, int size) {
          switch (size) {
            case 1: return PvBf16<1>(os, corr, p32, vb, hd16, c0, 0);
            case 2: return PvBf16<2>(os, corr, p32, vb, hd16, c0, 0);
            default: return PvBf16<3>(os, corr, p32, vb, hd16, c0, 0);
          }
        });
      } else {
        const int64_t valid = std::min(kFlashK, kv.n_keys - key0);
        const float* v = kv.values_f32 + key0 * kv.values_stride;
        ForChunkGroups(nz, [&](int64_t c0, int size) {
          switch (size) {
            case 1: return PvF32<1>(os, corr, pf, v, kv.values_stride, valid, hd, c0, 0);
            case 2: return PvF32<2>(os, corr, pf, v, kv.values_stride, valid, hd, c0, 0);
            default: return PvF32<3>(os, corr, pf, v, kv.values_stride, valid, hd, c0, 0);
          }
        });
      }
    }
  }
  for (int st = 0; st < subtiles; ++st) {
    alignas(64) float l[16];
    _mm512_store_ps(l, l_v[st]);
    for (int64_t r = st * kQ; r < std::min<int64_t>((st + 1) * kQ, t.rows); ++r) {
      const __m512 lv = _mm512_set1_ps(l[r - st * kQ]);
      for (int64_t c = 0; c < nz; ++c) {
        const __m512 y = _mm512_div_ps(_mm512_load_ps(o + r * kFlashMaxHeadDim + c * 16), lv);
        _mm512_mask_storeu_ps(t.out + r * t.out_stride + c * 16, Mask(hd - c * 16), y);
      }
    }
  }
}

}  // namespace idefics::kern::avx512
