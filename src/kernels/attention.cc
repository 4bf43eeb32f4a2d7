// Scalar attention: one (query row, head) at a time; work split into one contiguous range per worker.
// Mirrors eager attention (matmul, scale, softmax in float32, matmul with V) of the Idefics2/Mistral modules.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/thread_pool.h"

namespace idefics {
namespace {

int Workers(const ThreadPool* pool) { return pool ? pool->size() : 1; }

void OneHead(const AttentionArgs& a, int64_t i, int64_t h, float* scores) {
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t hd = a.head_dim;
  const float* q = a.q + i * a.q_stride + h * hd;
  const int64_t kv_off = (h / group) * hd;
  int64_t j0 = 0, j1 = a.n_keys;
  if (a.causal) {
    const int64_t p = a.q_pos0 + i;
    j1 = p + 1;
    if (a.window > 0) j0 = std::max<int64_t>(0, p - a.window + 1);
  }
  const float sqrt_hd = std::sqrt(static_cast<float>(hd));
  float mx = -INFINITY;
  for (int64_t j = j0; j < j1; ++j) {
    const float* k = a.k + j * a.kv_stride + kv_off;
    float dot = 0.f;
    for (int64_t d = 0; d < hd; ++d) dot += q[d] * k[d];
    const float s = a.divide_by_sqrt ? dot / sqrt_hd : dot * a.scale;
    scores[j - j0] = s;
    mx = std::max(mx, s);
  }
  float sum = 0.f;
  for (int64_t j = 0; j < j1 - j0; ++j) {
    scores[j] = std::exp(scores[j] - mx);
    sum += scores[j];
  }
  float* out = a.out + i * a.out_stride + h * hd;
  for (int64_t d = 0; d < hd; ++d) out[d] = 0.f;
  // torch normalizes the probabilities first, then multiplies with V.
  for (int64_t j = j0; j < j1; ++j) {
    const float p = scores[j - j0] / sum;
    const float* v = a.v + j * a.kv_stride + kv_off;
    for (int64_t d = 0; d < hd; ++d) out[d] += p * v[d];
  }
}

}  // namespace

size_t AttentionScratchFloats(int64_t n_keys, const ThreadPool* pool) {
  return static_cast<size_t>(Workers(pool)) * static_cast<size_t>(std::max<int64_t>(n_keys, 1));
}

void Attention(const AttentionArgs& a, float* scratch, ThreadPool* pool) {
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

}  // namespace idefics
