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
  // k, v: key j of kv head g at k + j*kv_stride + g*kv_head_stride (kv_head_stride 0: head_dim, the heads
  // side by side in one row). Query head h uses kv head h / (n_heads / n_kv_heads) (GQA).
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t n_keys = 0;
  int64_t kv_stride = 0;
  int64_t kv_head_stride = 0;
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
  // bf16: the flash path (>= kAttentionGemmMinQueries queries) rounds q, k, v and the probabilities to bf16
  // and uses vdpbf16ps dot products (float32 accumulation, softmax in float32). Decode ignores it.
  bool bf16 = false;
  // out: [n_q, out_stride], head h at columns h*head_dim.
  float* out = nullptr;
  int64_t out_stride = 0;
};

// Floats of scratch Attention needs for up to n_q queries against up to n_keys keys.
size_t AttentionScratchFloats(int64_t n_q, int64_t n_keys, int64_t head_dim, const ThreadPool* pool);

// Softmax in float32 with the max subtracted. Blocks of >= kAttentionGemmMinQueries queries (prefill, vision,
// perceiver) take the flash path (kernels/flash_attention.h: tiles of 8 queries against blocks of 32 keys,
// online softmax, never the full score matrix); fewer queries (decode) use AttentionRef.
// Each output row is computed by one task in a fixed order, so results do not depend on the thread count.
void Attention(const AttentionArgs& a, float* scratch, ThreadPool* pool);

// The scalar twin: one (query row, head) at a time, split over the pool.
void AttentionRef(const AttentionArgs& a, float* scratch, ThreadPool* pool);

inline constexpr int64_t kAttentionGemmMinQueries = 16;

}  // namespace idefics
