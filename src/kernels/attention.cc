// Attention: a scalar per-(query, head) reference (decode), and the flash path (kernels/flash_attention.h)
// for prefill-sized query blocks. Mirrors eager attention (matmul, scale, softmax in float32, matmul
// with V) of Idefics2VisionAttention / Idefics2PerceiverAttention / MistralAttention.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/flash_attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace idefics {
namespace {

int Workers(const ThreadPool* pool) {
  return pool ? pool->size() : 1;
}

// Visible keys [j0, j1) of query i.
void KeyRange(const AttentionArgs& a, int64_t i, int64_t* j0, int64_t* j1) {
  *j0 = 0;
  *j1 = a.n_keys;
  if (a.causal) {
    const int64_t p = a.q_pos0 + i;
    *j1 = p + 1;
    if (a.window > 0) *j0 = std::max<int64_t>(0, p - a.window + 1);
  }
}

int64_t KvHeadStride(const AttentionArgs& a) {
  return a.kv_head_stride > 0 ? a.kv_head_stride : a.head_dim;
}

float Scale(const AttentionArgs& a, float dot) {
  return a.divide_by_sqrt ? dot / std::sqrt(static_cast<float>(a.head_dim)) : dot * a.scale;
}

// In place: scores[0, n) -> probabilities (max subtracted, vector exp, multiplied by 1 / the float32 sum;
// torch divides, ≤ 1 ulp apart). torch normalizes the probabilities first, then multiplies with V, as here.
void Softmax(float* scores, int64_t n) {
  SoftmaxInPlace(scores, n);
}

void OneHead(const AttentionArgs& a, int64_t i, int64_t h, float* scores) {
  const int64_t hd = a.head_dim;
  const float* q = a.q + i * a.q_stride + h * hd;
  const int64_t kv_off = (h / (a.n_heads / a.n_kv_heads)) * KvHeadStride(a);
  int64_t j0, j1;
  KeyRange(a, i, &j0, &j1);
  for (int64_t j = j0; j < j1; ++j) {
    scores[j - j0] = Scale(a, Dot(q, a.k + j * a.kv_stride + kv_off, hd));
  }
  Softmax(scores, j1 - j0);
  // out[hd] = Σ_j p[j] · v[j] in key order (bitwise one Axpy per key).
  WeightedRows(scores, 0, 1, a.v + j0 * a.kv_stride + kv_off, a.kv_stride, j1 - j0, hd,
               a.out + i * a.out_stride + h * hd, hd);
}

// Flash path: per kv head, pack its keys (and, in bf16, values) into key blocks once, then run every
// (query tile, query head of the group) task against them; each output row is computed by one task with
// the same instructions whatever the thread count.
void AttentionFlash(const AttentionArgs& a, float* scratch, ThreadPool* pool) {
  const int64_t hd = a.head_dim, group = a.n_heads / a.n_kv_heads;
  const int64_t tiles = (a.n_q + kern::kFlashRows - 1) / kern::kFlashRows, blocks = kern::FlashBlocks(a.n_keys);
  void* storage = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch) + 63) / 64 * 64);
#if defined(IDEFICS_HAVE_SIMD)
  const Isa isa = ActiveIsa();
#endif
  for (int64_t g = 0; g < a.n_kv_heads; ++g) {
    const float* k = a.k + g * KvHeadStride(a);
    const float* v = a.v + g * KvHeadStride(a);
    auto pack = [&](int64_t b0, int64_t b1) {
      kern::FlashPackBlocks(k, v, a.n_keys, a.kv_stride, hd, a.bf16, b0, b1, storage);
    };
    if (pool) {
      pool->ParallelFor(blocks, 16, pack);
    } else {
      pack(0, blocks);
    }
    const kern::FlashPacked kv = kern::FlashView(v, a.n_keys, a.kv_stride, hd, a.bf16, storage);
    auto task = [&](int64_t t) {
      const int64_t i0 = (t / group) * kern::kFlashRows, h = g * group + t % group;
      int64_t begin[kern::kFlashRows], end[kern::kFlashRows];
      kern::FlashTileArgs ft;
      ft.rows = std::min(kern::kFlashRows, a.n_q - i0);
      for (int64_t r = 0; r < ft.rows; ++r) KeyRange(a, i0 + r, &begin[r], &end[r]);
      ft.q = a.q + i0 * a.q_stride + h * hd;
      ft.q_stride = a.q_stride;
      ft.key_begin = begin;
      ft.key_end = end;
      ft.scale = a.scale;
      ft.divide_by_sqrt = a.divide_by_sqrt;
      ft.out = a.out + i0 * a.out_stride + h * hd;
      ft.out_stride = a.out_stride;
#if defined(IDEFICS_HAVE_SIMD)
      if (isa == Isa::kAvx512) return kern::avx512::FlashTile(kv, ft);
      if (isa == Isa::kAvx2) return kern::avx2::FlashTile(kv, ft);
#endif
      kern::scalar::FlashTile(kv, ft);
    };
    if (pool) {
      pool->ParallelTasks(tiles * group, task);
    } else {
      for (int64_t t = 0; t < tiles * group; ++t) task(t);
    }
  }
}

// Decode path for keys stored head-major (kv_stride == head_dim: a head's keys form a contiguous
// [n_keys, head_dim] matrix, the text model's KV cache). One task per (query, kv head): the scores of the
// group's query heads against all visible keys are one matrix-vector product (MatMul's GEMV, keys read once
// for the whole group), then softmax per head and the group's weighted sums of values in one pass over them
// (WeightedRows: bitwise OneHead's Axpy per key). Each task runs single-threaded, so results do not depend on
// the thread count.
void AttentionGrouped(const AttentionArgs& a, ThreadPool* pool) {
  const int64_t hd = a.head_dim, group = a.n_heads / a.n_kv_heads;
  auto task = [&](int64_t t) {
    const int64_t i = t / a.n_kv_heads, g = t % a.n_kv_heads;
    int64_t j0, j1;
    KeyRange(a, i, &j0, &j1);
    const int64_t n = j1 - j0;
    thread_local std::vector<float> scores;
    if (scores.size() < static_cast<size_t>(group * std::max<int64_t>(n, 1))) scores.resize(group * n);
    const float* kg = a.k + g * KvHeadStride(a) + j0 * hd;
    const float* vg = a.v + g * KvHeadStride(a) + j0 * hd;
    // The group's query heads are consecutive columns of the query row: a [group, hd] block.
    const float* q = a.q + i * a.q_stride + g * group * hd;
    if (n > 0) {
      const WeightMatrix keys{WeightFormat::kF32, n, hd, kg};
      MatMul(q, group, keys, nullptr, scores.data(), nullptr);  // scores[r * n + j]
    }
    for (int64_t r = 0; r < group; ++r) {
      float* s = scores.data() + r * n;
      for (int64_t j = 0; j < n; ++j) s[j] = Scale(a, s[j]);
      Softmax(s, n);
    }
    // The group's heads are consecutive hd-blocks of the output row; each value row is read once for all.
    WeightedRows(scores.data(), n, group, vg, hd, n, hd, a.out + i * a.out_stride + g * group * hd, hd);
  };
  const int64_t tasks = a.n_q * a.n_kv_heads;
  if (pool && pool->size() > 1 && tasks > 1) {
    pool->ParallelTasks(tasks, task);
  } else {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  }
}

}  // namespace

size_t AttentionScratchFloats(int64_t n_q, int64_t n_keys, int64_t head_dim, const ThreadPool* pool) {
  (void)n_q;
  n_keys = std::max<int64_t>(n_keys, 1);
  const size_t ref = static_cast<size_t>(Workers(pool)) * n_keys;
  // The flash path's packed kv head (the larger, bf16, layout) plus alignment slack.
  const int64_t hd = std::max<int64_t>(head_dim, 1);
  const size_t flash =
      std::max(kern::FlashPackedBytes(n_keys, hd, true), kern::FlashPackedBytes(n_keys, hd, false)) / sizeof(float) +
      16;
  return std::max(ref, flash);
}

void AttentionRef(const AttentionArgs& a, float* scratch, ThreadPool* pool) {
  IDEFICS_CHECK(a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0);
  if (a.causal) IDEFICS_CHECK(a.q_pos0 + a.n_q <= a.n_keys);
  const int64_t items = a.n_q * a.n_heads;  // item = i * n_heads + h
  if (items == 0) return;
  const int64_t workers = std::min<int64_t>(Workers(pool), items);
  auto run = [&](int64_t w) {
    const int64_t b = items * w / workers, e = items * (w + 1) / workers;
    float* scores = scratch + w * std::max<int64_t>(a.n_keys, 1);
    for (int64_t it = b; it < e; ++it) OneHead(a, it / a.n_heads, it % a.n_heads, scores);
  };
  if (pool && workers > 1) {
    pool->ParallelTasks(workers, run);
  } else {
    run(0);
  }
}

void Attention(const AttentionArgs& a, float* scratch, ThreadPool* pool) {
  if (a.n_q < kAttentionGemmMinQueries) {
    if (a.kv_stride == a.head_dim && a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0) {
      if (a.causal) IDEFICS_CHECK(a.q_pos0 + a.n_q <= a.n_keys);
      return AttentionGrouped(a, pool);
    }
    return AttentionRef(a, scratch, pool);
  }
  IDEFICS_CHECK(a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0);
  if (a.causal) IDEFICS_CHECK(a.q_pos0 + a.n_q <= a.n_keys);
  if (a.head_dim > kern::kFlashMaxHeadDim) return AttentionRef(a, scratch, pool);
  AttentionFlash(a, scratch, pool);
}

}  // namespace idefics
