// Vision tower forward for one image on its own unpadded grid (spec §4.5: identical to the padded batch
// with -inf key masks, only the accumulation order differs). Mirrors Idefics2VisionTransformer.
#include "model/vision_encoder.h"

#include <cmath>
#include <string>

#include "core/thread_pool.h"
#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/norm.h"
#include "model/position_ids.h"

namespace idefics {

Status VisionEncoder::Validate(const PixelImage& img) const {
  const int64_t p = c_.patch_size, nps = c_.num_patches_per_side();
  if (c_.num_channels != 3) return Unimplemented("vision_config.num_channels must be 3");
  if (img.width < p || img.height < p)
    return InvalidArgument("image of " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                           " pixels is smaller than one " + std::to_string(p) + "x" + std::to_string(p) +
                           " patch");
  if (img.width / p > nps || img.height / p > nps)
    return InvalidArgument("image of " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                           " pixels has more than " + std::to_string(nps) +
                           " patches per side (vision_config.image_size " + std::to_string(c_.image_size) +
                           ")");
  if (img.chw.size() != static_cast<size_t>(3) * img.width * img.height)
    return InvalidArgument("image chw holds " + std::to_string(img.chw.size()) + " floats, expected 3*" +
                           std::to_string(img.height) + "*" + std::to_string(img.width));
  return Status::Ok();
}

const float* VisionEncoder::Encode(const PixelImage& img, int64_t* nb_h_out, int64_t* nb_w_out,
                                   const DumpFn& dump) {
  const int64_t p = c_.patch_size, C = c_.num_channels, H = c_.hidden_size, I = c_.intermediate_size;
  const int64_t nb_h = img.height / p, nb_w = img.width / p, S = nb_h * nb_w;
  const int64_t K = C * p * p;
  *nb_h_out = nb_h;
  *nb_w_out = nb_w;
  const std::vector<int64_t> grid = {nb_h, nb_w, H};

  // Patch extraction: each patch flattened (channel, ky, kx) like the conv kernel.
  float* patches = patches_.Get(S * K);  // [S, C*p*p]
  const int64_t W = img.width, Hp = img.height;
  for (int64_t py = 0; py < nb_h; ++py)
    for (int64_t px = 0; px < nb_w; ++px) {
      float* dst = patches + (py * nb_w + px) * K;
      for (int64_t ch = 0; ch < C; ++ch)
        for (int64_t ky = 0; ky < p; ++ky) {
          const float* src = img.chw.data() + (ch * Hp + py * p + ky) * W + px * p;
          for (int64_t kx = 0; kx < p; ++kx) *dst++ = src[kx];
        }
    }
  float* h = h_.Get(S * H);  // [S, Hv] residual stream
  MatMul(patches, S, w_.patch, w_.patch_b, h, pool_, mm_);
  const std::vector<int64_t> pos = VisionPositionIds(nb_h, nb_w, c_.num_patches_per_side());
  for (int64_t s = 0; s < S; ++s) {
    const float* pe = w_.pos_embed + pos[s] * H;
    for (int64_t i = 0; i < H; ++i) h[s * H + i] += pe[i];
  }
  if (dump) {
    dump("vision_embeddings", h, grid);
    dump("vision_hidden_states.0", h, grid);
  }

  const float eps = static_cast<float>(c_.layer_norm_eps);
  float* x = x_.Get(S * H);    // [S, Hv] normalized input of a sub-block
  float* q = q_.Get(S * H);    // [S, Hv]
  float* k = k_.Get(S * H);    // [S, Hv]
  float* v = v_.Get(S * H);    // [S, Hv]
  float* a = a_.Get(S * H);    // [S, Hv] attention output (heads concatenated), then projections
  float* f = mlp_.Get(S * I);  // [S, Iv]
  float* sc = attn_scratch_.Get(AttentionScratchFloats(S, S, c_.head_dim(), pool_));
  AttentionArgs args;
  args.q = q;
  args.n_q = S;
  args.q_stride = H;
  args.k = k;
  args.v = v;
  args.n_keys = S;
  args.kv_stride = H;
  args.n_heads = c_.num_attention_heads;
  args.n_kv_heads = c_.num_attention_heads;
  args.head_dim = c_.head_dim();
  // python's head_dim**-0.5 (double) meets a float32 tensor: the product runs with the scalar in float32.
  args.scale = static_cast<float>(std::pow(static_cast<double>(c_.head_dim()), -0.5));
  args.out = a;
  args.out_stride = H;

  for (size_t l = 0; l < w_.layers.size(); ++l) {
    const VisionLayerWeights& L = w_.layers[l];
    args.bf16 = mm_.bf16_dot && L.q.format != WeightFormat::kF32;  // fast path: bf16 attention too
    LayerNorm(h, S, H, L.ln1_w, L.ln1_b, eps, x, pool_);
    MatMul(x, S, L.q, L.q_b, q, pool_, mm_);
    MatMul(x, S, L.k, L.k_b, k, pool_, mm_);
    MatMul(x, S, L.v, L.v_b, v, pool_, mm_);
    Attention(args, sc, pool_);  // no mask: every patch of this image is valid
    MatMul(a, S, L.o, L.o_b, x, pool_, mm_);
    for (int64_t i = 0; i < S * H; ++i) h[i] += x[i];
    LayerNorm(h, S, H, L.ln2_w, L.ln2_b, eps, x, pool_);
    MatMul(x, S, L.fc1, L.fc1_b, f, pool_, mm_);
    GeluTanhInPlace(f, S * I, pool_);
    MatMul(f, S, L.fc2, L.fc2_b, x, pool_, mm_);
    for (int64_t i = 0; i < S * H; ++i) h[i] += x[i];
    if (dump) dump("vision_hidden_states." + std::to_string(l + 1), h, grid);
  }
  LayerNorm(h, S, H, w_.post_ln_w, w_.post_ln_b, eps, h, pool_);
  if (dump) dump("vision_last_hidden_state", h, grid);
  return h;
}

}  // namespace idefics
