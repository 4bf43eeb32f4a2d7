// RoPE tables and rotation, float32 throughout so large angles round like the reference.
// Mirrors MistralRotaryEmbedding.forward and rotate_half / apply_rotary_pos_emb.
#include "kernels/rope.h"

#include <cmath>

namespace idefics {

std::vector<float> RopeInvFreq(int64_t head_dim, double theta) {
  std::vector<float> inv(head_dim / 2);
  // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)); the python float base meets a float32 tensor,
  // so pow runs in float32.
  const float base = static_cast<float>(theta);
  for (int64_t j = 0; j < head_dim / 2; ++j) {
    const float expo = static_cast<float>(2 * j) / static_cast<float>(head_dim);
    inv[j] = 1.0f / std::pow(base, expo);
  }
  return inv;
}

void RopeCosSin(const float* inv_freq, int64_t half, int64_t pos, float* cos_out, float* sin_out) {
  const float p = static_cast<float>(pos);
  for (int64_t j = 0; j < half; ++j) {
    const float angle = inv_freq[j] * p;  // float32 product, never double (large angles round differently)
    cos_out[j] = std::cos(angle);
    sin_out[j] = std::sin(angle);
  }
}

void ApplyRope(float* x, int64_t n_heads, int64_t half, const float* cos_v, const float* sin_v) {
  for (int64_t h = 0; h < n_heads; ++h) {
    float* a = x + h * 2 * half;  // first half
    float* b = a + half;          // second half
    for (int64_t j = 0; j < half; ++j) {
      const float x0 = a[j], x1 = b[j];
      // (x * cos) + (rotate_half(x) * sin), rotate_half(x) = [-x1, x0]
      a[j] = x0 * cos_v[j] + (-x1) * sin_v[j];
      b[j] = x1 * cos_v[j] + x0 * sin_v[j];
    }
  }
}

}  // namespace idefics
