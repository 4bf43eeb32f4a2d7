// Attention: a scalar per-(query, head) reference, and a blocked path that hands q·kᵀ to MatMul (the fast
// kernel) for prefill-sized query blocks. Mirrors eager attention (matmul, scale, softmax in float32, matmul
// with V) of Idefics2VisionAttention / Idefics2PerceiverAttention / MistralAttention.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace idefics {
namespace {

constexpr int64_t kQueryBlock = 256;  // query rows per MatMul in the blocked path

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

float Scale(const AttentionArgs& a, float dot) {
  return a.divide_by_sqrt ? dot / std::sqrt(static_cast<float>(a.head_dim)) : dot * a.scale;
}

// In place: scores[0, n) -> probabilities (max subtracted, vector exp, multiplied by 1 / the float32 sum;
// torch divides, ≤ 1 ulp apart). torch normalizes the probabilities first, then multiplies with V, as here.
void Softmax(float* scores, int64_t n) {
  SoftmaxInPlace(scores, n);
}

// out[hd] = Σ_j p[j] · v[j] in key order (v rows `stride` floats apart), one SIMD axpy per key.
void WeightedSum(const float* p, const float* v, int64_t n, int64_t stride, int64_t hd, float* out) {
  std::fill(out, out + hd, 0.f);
  for (int64_t j = 0; j < n; ++j) Axpy(p[j], v + j * stride, out, hd);
}

void OneHead(const AttentionArgs& a, int64_t i, int64_t h, float* scores) {
  const int64_t hd = a.head_dim;
  const float* q = a.q + i * a.q_stride + h * hd;
  const int64_t kv_off = (h / (a.n_heads / a.n_kv_heads)) * hd;
  int64_t j0, j1;
  KeyRange(a, i, &j0, &j1);
  for (int64_t j = j0; j < j1; ++j) {
    scores[j - j0] = Scale(a, Dot(q, a.k + j * a.kv_stride + kv_off, hd));
  }
  Softmax(scores, j1 - j0);
  WeightedSum(scores, a.v + j0 * a.kv_stride + kv_off, j1 - j0, a.kv_stride, hd,
              a.out + i * a.out_stride + h * hd);
}

// Blocked path: for each query block and kv head, pack the block's visible keys (rows) and values
// (transposed) contiguously; per query head of the group, scores = one MatMul, softmax row by row (invisible
// keys get probability exactly 0), outputs = one more MatMul of the probabilities with Vᵀ.
void AttentionBlocked(const AttentionArgs& a, float* scratch, ThreadPool* pool) {
  const int64_t hd = a.head_dim, group = a.n_heads / a.n_kv_heads;
  const int64_t qb_max = std::min(a.n_q, kQueryBlock);
  float* kp = scratch;             // [n_keys, hd] packed keys of one kv head
  float* vt = kp + a.n_keys * hd;  // [hd, n_keys] packed values, transposed
  float* qp = vt + a.n_keys * hd;  // [qb, hd] packed queries of one head
  float* ob = qp + qb_max * hd;    // [qb, hd] outputs of one head
  float* sc = ob + qb_max * hd;    // [qb, nk] scores, then probabilities
  // Without a causal mask every query block sees all keys: pack each kv head once and run every query block
  // against it (the packing, with its transposed V, then costs once per head instead of once per block).
  // With a mask the visible key range moves with the block, so the keys are packed per (block, head).
  const int64_t outer = a.causal ? 1 : a.n_kv_heads;
  for (int64_t g_fixed = 0; g_fixed < outer; ++g_fixed) {
    bool packed = false;
    for (int64_t i0 = 0; i0 < a.n_q; i0 += kQueryBlock) {
      const int64_t qb = std::min(kQueryBlock, a.n_q - i0);
      int64_t kb0, unused, kb1;
      KeyRange(a, i0, &kb0, &unused);
      KeyRange(a, i0 + qb - 1, &unused, &kb1);
      const int64_t nk = kb1 - kb0;  // keys visible to some query of the block
      const int64_t g_begin = a.causal ? 0 : g_fixed, g_end = a.causal ? a.n_kv_heads : g_fixed + 1;
      for (int64_t g = g_begin; g < g_end; ++g) {
        if (a.causal || !packed) {
          for (int64_t j = 0; j < nk; ++j) {
            const float* kj = a.k + (kb0 + j) * a.kv_stride + g * hd;
            const float* vj = a.v + (kb0 + j) * a.kv_stride + g * hd;
            std::memcpy(kp + j * hd, kj, sizeof(float) * hd);
            for (int64_t d = 0; d < hd; ++d) vt[d * nk + j] = vj[d];
          }
          packed = true;
        }
        const WeightMatrix keys{WeightFormat::kF32, nk, hd, kp};
        const WeightMatrix values_t{WeightFormat::kF32, hd, nk, vt};
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          for (int64_t r = 0; r < qb; ++r)
            std::memcpy(qp + r * hd, a.q + (i0 + r) * a.q_stride + h * hd, sizeof(float) * hd);
          MatMul(qp, qb, keys, nullptr, sc, pool);  // [qb, nk] = q·kᵀ
          auto rows = [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
              int64_t j0, j1;
              KeyRange(a, i0 + r, &j0, &j1);
              float* row = sc + r * nk;
              float* s = row + (j0 - kb0);
              for (int64_t j = 0; j < j1 - j0; ++j) s[j] = Scale(a, s[j]);
              Softmax(s, j1 - j0);
              // Keys outside this row's range (causal / window) weigh exactly 0 in the product with V.
              std::fill(row, s, 0.f);
              std::fill(s + (j1 - j0), row + nk, 0.f);
            }
          };
          if (pool && qb > 1) {
            pool->ParallelFor(qb, 4, rows);
          } else {
            rows(0, qb);
          }
          MatMul(sc, qb, values_t, nullptr, ob, pool);  // [qb, hd] = p·v
          for (int64_t r = 0; r < qb; ++r)
            std::memcpy(a.out + (i0 + r) * a.out_stride + h * hd, ob + r * hd, sizeof(float) * hd);
        }
      }
    }
  }
}

}  // namespace

size_t AttentionScratchFloats(int64_t n_q, int64_t n_keys, int64_t head_dim, const ThreadPool* pool) {
  n_keys = std::max<int64_t>(n_keys, 1);
  const size_t ref = static_cast<size_t>(Workers(pool)) * n_keys;
  const int64_t qb = std::min(std::max<int64_t>(n_q, 1), kQueryBlock);
  const size_t blocked = static_cast<size_t>(2 * n_keys * head_dim + 2 * qb * head_dim + qb * n_keys);
  return std::max(ref, blocked);
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
  if (a.n_q < kAttentionGemmMinQueries) return AttentionRef(a, scratch, pool);
  IDEFICS_CHECK(a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0);
  if (a.causal) IDEFICS_CHECK(a.q_pos0 + a.n_q <= a.n_keys);
  AttentionBlocked(a, scratch, pool);
}

}  // namespace idefics
