// Flash attention: packing of a kv head's keys / values into key blocks, and the scalar twin of the tile
// kernel (flash_attention_avx512.cc / _avx2.cc are the SIMD ones; tests/kernels/flash_attention_test.cc
// compares).
// Mirrors eager softmax(q·kᵀ·scale)·v, computed block by block with a running max (online softmax).
#include "kernels/flash_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "kernels/cpu_features.h"
#include "tensor/dtype.h"

namespace idefics::kern {
namespace {

size_t AlignUp64(size_t n) {
  return (n + 63) / 64 * 64;
}

float Bf16Value(uint16_t h) {
  return Bf16ToF32(h);
}

float RoundBf16(float x) {
  return Bf16ToF32(F32ToBf16(x));
}

}  // namespace

size_t FlashKeyBytes(int64_t n_keys, int64_t hd, bool bf16) {
  const int64_t blocks = FlashBlocks(n_keys);
  return AlignUp64(bf16 ? static_cast<size_t>(blocks * FlashHeadDim2(hd) * kFlashK) * 2
                      : static_cast<size_t>(blocks * hd * kFlashK) * 4);
}

size_t FlashPackedBytes(int64_t n_keys, int64_t head_dim, bool bf16) {
  const size_t keys = FlashKeyBytes(n_keys, head_dim, bf16);
  if (!bf16) return keys;
  return keys + AlignUp64(static_cast<size_t>(FlashBlocks(n_keys) * kFlashK * FlashHeadDim16(head_dim)) * 2);
}

void FlashPackBlocks(const float* k, const float* v, int64_t n_keys, int64_t stride, int64_t hd, bool bf16,
                     int64_t b0, int64_t b1, void* storage) {
#if defined(IDEFICS_HAVE_SIMD)
  if (ActiveIsa() == Isa::kAvx512) return avx512::FlashPackBlocks(k, v, n_keys, stride, hd, bf16, b0, b1, storage);
  if (ActiveIsa() == Isa::kAvx2)
    return avx2::FlashPackBlocks(k, v, n_keys, stride, hd, bf16, b0, b1, storage);
#endif
  scalar::FlashPackBlocks(k, v, n_keys, stride, hd, bf16, b0, b1, storage);
}

FlashPacked FlashView(const float* v, int64_t n_keys, int64_t stride, int64_t head_dim, bool bf16,
                      const void* storage) {
  FlashPacked p;
  p.n_keys = n_keys;
  p.head_dim = head_dim;
  p.bf16 = bf16;
  if (bf16) {
    p.keys_bf16 = static_cast<const uint16_t*>(storage);
    p.values_bf16 = reinterpret_cast<const uint16_t*>(static_cast<const char*>(storage) +
                                                      FlashKeyBytes(n_keys, head_dim, true));
  } else {
    p.keys_f32 = static_cast<const float*>(storage);
    p.values_f32 = v;
    p.values_stride = stride;
  }
  return p;
}

namespace scalar {

void FlashPackBlocks(const float* k, const float* v, int64_t n_keys, int64_t stride, int64_t hd, bool bf16,
                     int64_t b0, int64_t b1, void* storage) {
  IDEFICS_CHECK(hd > 0 && hd <= kFlashMaxHeadDim);
  if (!bf16) {
    float* keys = static_cast<float*>(storage);
    for (int64_t b = b0; b < b1; ++b) {
      float* blk = keys + b * hd * kFlashK;
      for (int64_t j = 0; j < kFlashK; ++j) {
        const int64_t key = b * kFlashK + j;
        const float* row = k + key * stride;
        for (int64_t d = 0; d < hd; ++d) blk[d * kFlashK + j] = key < n_keys ? row[d] : 0.f;
      }
    }
    return;
  }
  const int64_t hd2 = FlashHeadDim2(hd), hd16 = FlashHeadDim16(hd);
  uint16_t* keys = static_cast<uint16_t*>(storage);
  uint16_t* values = reinterpret_cast<uint16_t*>(static_cast<char*>(storage) + FlashKeyBytes(n_keys, hd, true));
  for (int64_t b = b0; b < b1; ++b) {
    uint16_t* kb = keys + b * hd2 * kFlashK;
    uint16_t* vb = values + b * kFlashK * hd16;
    for (int64_t j = 0; j < kFlashK; ++j) {
      const int64_t key = b * kFlashK + j;
      const bool valid = key < n_keys;
      const float* krow = k + key * stride;
      const float* vrow = v + key * stride;
      for (int64_t d = 0; d < hd2; ++d) {
        kb[((d / 2) * kFlashK + j) * 2 + d % 2] = valid && d < hd ? F32ToBf16(krow[d]) : 0;
      }
      for (int64_t d = 0; d < hd16; ++d) {
        vb[((j / 2) * hd16 + d) * 2 + j % 2] = valid && d < hd ? F32ToBf16(vrow[d]) : 0;
      }
    }
  }
}

// Same blocks, same order of the dot products and of the p·v sums as the SIMD kernel; only the exponential
// (std::exp) and the order inside the max / sum reductions differ.
void FlashTile(const FlashPacked& kv, const FlashTileArgs& t) {
  const int64_t hd = kv.head_dim, hd2 = FlashHeadDim2(hd), hd16 = FlashHeadDim16(hd);
  const float ninf = -std::numeric_limits<float>::infinity();
  IDEFICS_CHECK(t.rows >= 1 && t.rows <= kFlashRows && hd <= kFlashMaxHeadDim);
  int64_t lo = t.key_begin[0], hi = t.key_end[0];
  for (int64_t r = 1; r < t.rows; ++r) {
    lo = std::min(lo, t.key_begin[r]);
    hi = std::max(hi, t.key_end[r]);
  }
  // A block no key of which a row sees leaves that row's state exactly as it was (corr 1, p 0), so visiting
  // the union of the rows' ranges gives each row the result of its own range.
  float q[kFlashRows][kFlashMaxHeadDim], o[kFlashRows][kFlashMaxHeadDim], p[kFlashRows][kFlashK];
  float m[kFlashRows], l[kFlashRows], corr[kFlashRows];
  for (int64_t r = 0; r < t.rows; ++r) {
    for (int64_t d = 0; d < hd; ++d) q[r][d] = kv.bf16 ? RoundBf16(t.q[r * t.q_stride + d]) : t.q[r * t.q_stride + d];
    std::fill(o[r], o[r] + hd, 0.f);
    m[r] = ninf;
    l[r] = 0.f;
  }
  const float scale = FlashScoreScale(t, hd);
  for (int64_t b = lo / kFlashK; b * kFlashK < hi; ++b) {
    for (int64_t r = 0; r < t.rows; ++r) {
      float s[kFlashK];
      float bm = ninf;
      for (int64_t j = 0; j < kFlashK; ++j) {
        float acc = 0.f;
        if (kv.bf16) {
          for (int64_t d = 0; d < hd2; ++d) {
            const float kd = Bf16Value(kv.keys_bf16[((b * hd2 / 2 + d / 2) * kFlashK + j) * 2 + d % 2]);
            acc += (d < hd ? q[r][d] : 0.f) * kd;
          }
        } else {
          for (int64_t d = 0; d < hd; ++d) acc = std::fma(q[r][d], kv.keys_f32[(b * hd + d) * kFlashK + j], acc);
        }
        const int64_t key = b * kFlashK + j;
        const bool visible = key >= t.key_begin[r] && key < t.key_end[r];
        s[j] = visible ? acc * scale : ninf;
        bm = std::max(bm, s[j]);
      }
      const float m_new = std::max(m[r], bm);
      float sum = 0.f;
      if (m_new == ninf) {
        corr[r] = 1.f;
        std::fill(p[r], p[r] + kFlashK, 0.f);
      } else {
        corr[r] = std::exp(m[r] - m_new);
        for (int64_t j = 0; j < kFlashK; ++j) {
          p[r][j] = s[j] == ninf ? 0.f : std::exp(s[j] - m_new);
          sum += p[r][j];
          if (kv.bf16) p[r][j] = RoundBf16(p[r][j]);
        }
      }
      l[r] = l[r] * corr[r] + sum;
      m[r] = m_new;
    }
    const int64_t valid = std::min(kFlashK, kv.n_keys - b * kFlashK);
    for (int64_t r = 0; r < t.rows; ++r) {
      for (int64_t d = 0; d < hd; ++d) {
        float acc = o[r][d] * corr[r];
        if (kv.bf16) {
          for (int64_t j = 0; j < kFlashK; ++j)
            acc += p[r][j] * Bf16Value(kv.values_bf16[((b * kFlashK / 2 + j / 2) * hd16 + d) * 2 + j % 2]);
        } else {
          for (int64_t j = 0; j < valid; ++j)
            acc = std::fma(p[r][j], kv.values_f32[(b * kFlashK + j) * kv.values_stride + d], acc);
        }
        o[r][d] = acc;
      }
    }
  }
  for (int64_t r = 0; r < t.rows; ++r)
    for (int64_t d = 0; d < hd; ++d) t.out[r * t.out_stride + d] = o[r][d] / l[r];
}

}  // namespace scalar
}  // namespace idefics::kern
