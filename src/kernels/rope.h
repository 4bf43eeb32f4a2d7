// Rotary position embeddings in the rotate_half ("NeoX") layout with float32 tables.
// Mirrors MistralRotaryEmbedding + apply_rotary_pos_emb (transformers 4.45, rope_type "default").
#pragma once

#include <cstdint>
#include <vector>

namespace idefics {

// inv_freq[j] = fl32(1 / fl32(pow(fl32(theta), fl32(fl32(2j) / head_dim)))), j < head_dim / 2 (spec §7.3).
std::vector<float> RopeInvFreq(int64_t head_dim, double theta);

// cos/sin[j] of the angle fl32(inv_freq[j] * fl32(pos)) for j < half (one float32 product, float32 cos/sin).
void RopeCosSin(const float* inv_freq, int64_t half, int64_t pos, float* cos_out, float* sin_out);

// Rotates n_heads consecutive head vectors of size 2*half in place: x*cos + rotate_half(x)*sin.
void ApplyRope(float* x, int64_t n_heads, int64_t half, const float* cos_v, const float* sin_v);

}  // namespace idefics
