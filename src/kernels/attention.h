// Scaled dot-product attention for one query block against a key/value block, all heads, float32.
// Mirrors the eager attention paths (Idefics2VisionAttention, Idefics2PerceiverAttention, MistralAttention).
#pragma once

#include <cstddef>
#include <cstdint>

namespace idefics {

class ThreadPool;

struct AttentionArgs {
  // q: [n_q rows, q_stride], query head h at columns h*head_dim.
  const float* q = nullptr;
  int64_t n_q = 0;
  int64_t q_stride = 0;
  // k, v: [n_keys rows, kv_stride], kv head g at columns g*head_dim. Query head h uses kv head
  // h / (n_heads / n_kv_heads) (GQA).
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t n_keys = 0;
  int64_t kv_stride = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  // Scores = q·k * scale, or q·k / sqrt(head_dim) when divide_by_sqrt (Mistral / perceiver eager code divides,
  // the vision tower multiplies by head_dim^-0.5).
  float scale = 1.0f;
  bool divide_by_sqrt = false;
  // causal: query i sits at key index q_pos0 + i and sees keys (q_pos0 + i - window, q_pos0 + i]
  // (window <= 0: no window). Not causal: every key is visible.
  bool causal = false;
  int64_t q_pos0 = 0;
  int64_t window = 0;
  // out: [n_q, out_stride], head h at columns h*head_dim.
  float* out = nullptr;
  int64_t out_stride = 0;
};

// Floats of scratch Attention needs for up to n_q queries against up to n_keys keys.
size_t AttentionScratchFloats(int64_t n_q, int64_t n_keys, int64_t head_dim, const ThreadPool* pool);

// Softmax in float32 with the max subtracted. Blocks of >= kAttentionGemmMinQueries queries (prefill, vision,
// perceiver) compute q·kᵀ and p·v with MatMul over packed per-head keys / values; fewer queries (decode) use
// AttentionRef.
// Every score is one dot product accumulated in order and every output a sum over keys in order, so results
// do not depend on the thread count (and equal AttentionRef when MatMul is the scalar reference).
void Attention(const AttentionArgs& a, float* scratch, ThreadPool* pool);

// The scalar twin: one (query row, head) at a time, split over the pool.
void AttentionRef(const AttentionArgs& a, float* scratch, ThreadPool* pool);

inline constexpr int64_t kAttentionGemmMinQueries = 16;

}  // namespace idefics
