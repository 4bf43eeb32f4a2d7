// Internal: fused (flash-style) attention for blocks of queries — one tile of query rows of one head against
// a kv head's keys packed in blocks, online softmax, never more than one key block of scores at a time.
// Float32 (the exact path) or bf16 dot products (`vdpbf16ps`, the fast path; on AVX2 float32 FMA on the
// bf16-rounded operands). Used by kernels/attention.cc; exposed for the scalar-vs-SIMD tests. Mirrors the
// eager attention math (softmax(q·kᵀ·scale)·v) of Idefics2VisionAttention / Idefics2PerceiverAttention /
// MistralAttention, reordered as FlashAttention does.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace idefics::kern {

inline constexpr int64_t kFlashQ = 8;      // query rows per register tile (sub-tile)
inline constexpr int64_t kFlashRows = 64;  // query rows per FlashTile call (each key block is reused by all)
inline constexpr int64_t kFlashK = 32;   // keys per block
inline constexpr int64_t kFlashMaxHeadDim = 256;

// Packed keys and values of one kv head, laid out by key block (keys beyond n_keys and dims beyond
// head_dim are zero):
//   f32 keys   [blocks][head_dim][kFlashK] floats (transposed: one dim of 32 keys per row)
//   bf16 keys  [blocks][head_dim2 / 2][kFlashK][2] (pairs of dims per key; head_dim2 = head_dim rounded to even)
//   bf16 values [blocks][kFlashK / 2][head_dim16][2] (pairs of keys per dim; head_dim16 = rounded to 16)
// f32 values are read in place from the caller's rows.
struct FlashPacked {
  int64_t n_keys = 0;
  int64_t head_dim = 0;
  bool bf16 = false;
  const float* keys_f32 = nullptr;
  const uint16_t* keys_bf16 = nullptr;
  const uint16_t* values_bf16 = nullptr;
  const float* values_f32 = nullptr;  // row j at values_f32 + j * values_stride
  int64_t values_stride = 0;
};

inline int64_t FlashBlocks(int64_t n_keys) {
  return (n_keys + kFlashK - 1) / kFlashK;
}
inline int64_t FlashHeadDim2(int64_t hd) {
  return (hd + 1) / 2 * 2;
}
inline int64_t FlashHeadDim16(int64_t hd) {
  return (hd + 15) / 16 * 16;
}

// Bytes of the packed keys of one kv head (the bf16 values follow at this offset).
size_t FlashKeyBytes(int64_t n_keys, int64_t head_dim, bool bf16);

// Bytes of packed storage for one kv head.
size_t FlashPackedBytes(int64_t n_keys, int64_t head_dim, bool bf16);

// Packs key blocks [b0, b1) of one kv head (rows `stride` floats apart) into `storage` (FlashPackedBytes
// bytes, 64-byte aligned); blocks are independent so callers may split them over threads. Dispatches to the
// AVX-512 or AVX2 version or the scalar twin (bitwise the same bytes).
void FlashPackBlocks(const float* k, const float* v, int64_t n_keys, int64_t stride, int64_t head_dim, bool bf16,
                     int64_t b0, int64_t b1, void* storage);

// The FlashPacked view of storage filled by FlashPackBlocks.
FlashPacked FlashView(const float* v, int64_t n_keys, int64_t stride, int64_t head_dim, bool bf16,
                      const void* storage);

struct FlashTileArgs {
  const float* q = nullptr;  // row r at q + r * q_stride (head_dim floats)
  int64_t q_stride = 0;
  int64_t rows = 0;  // 1..kFlashRows
  const int64_t* key_begin = nullptr;  // per row: visible keys [key_begin[r], key_end[r]), non-empty
  const int64_t* key_end = nullptr;
  float scale = 1.f;  // score = dot * scale, or dot / sqrt(head_dim) when divide_by_sqrt
  bool divide_by_sqrt = false;
  float* out = nullptr;  // row r at out + r * out_stride
  int64_t out_stride = 0;
};

// The factor scores are multiplied by: scale, or 1 / sqrt(head_dim) (a multiplication by the float32
// reciprocal; eager divides, which is at most 1 ulp away).
inline float FlashScoreScale(const FlashTileArgs& t, int64_t head_dim) {
  return t.divide_by_sqrt ? 1.f / std::sqrt(static_cast<float>(head_dim)) : t.scale;
}

#define IDEFICS_FLASH_DECLARE                                                                                \
  void FlashPackBlocks(const float* k, const float* v, int64_t n_keys, int64_t stride, int64_t head_dim,      \
                       bool bf16, int64_t b0, int64_t b1, void* storage);                                    \
  void FlashTile(const FlashPacked& kv, const FlashTileArgs& t);

namespace scalar {
IDEFICS_FLASH_DECLARE
}  // namespace scalar
#if defined(IDEFICS_HAVE_SIMD)
namespace avx2 {
IDEFICS_FLASH_DECLARE
}  // namespace avx2
namespace avx512 {
IDEFICS_FLASH_DECLARE
}  // namespace avx512
#endif

}  // namespace idefics::kern
