// Modality projection + perceiver resampler for one image's context (spec §5). The latents attend to
// [RMSNorm(context); RMSNorm(latents)] with GQA and no mask. Mirrors Idefics2Connector (transformers 4.45).
#include "model/connector.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "kernels/attention.h"
#include "kernels/norm.h"
#include "model/swiglu.h"

namespace idefics {

namespace {
constexpr int64_t kProjectionRows = 256;  // rows per modality-projection block
}  // namespace

void Connector::Run(const float* vision, int64_t nb_h, int64_t nb_w, float* out, const DumpFn& dump) {
  const int64_t S = nb_h * nb_w, Ht = c_.text.hidden_size, It = c_.text.intermediate_size;
  const PerceiverConfig& pc = c_.perceiver;
  const int64_t nl = pc.resampler_n_latents, hd = pc.resampler_head_dim;
  const int64_t qd = pc.resampler_n_heads * hd, kvd = pc.num_key_value_heads * hd;
  const int64_t T = S + nl;  // keys: context first, then latents

  // Modality projection: down(silu(gate(x)) * up(x)), no biases. Row blocks keep the [rows, It] temporaries
  // small (a 70x70-patch image would need 2 x 281 MB at It = 14336); rows are independent, so the blocking
  // does not change the numbers.
  const int64_t block = std::min<int64_t>(S, kProjectionRows);
  float* g = gate_.Get(block * It);  // [block, It]
  float* u = up_.Get(block * It);    // [block, It]
  float* ctx = ctx_.Get(S * Ht);     // [S, Ht] the context, never updated by the perceiver layers
  for (int64_t r0 = 0; r0 < S; r0 += block) {
    const int64_t m = std::min(block, S - r0);
    SwiGluMlp(vision + r0 * c_.vision.hidden_size, m, w_.proj_gate, w_.proj_up, w_.proj_down, g, u,
              ctx + r0 * Ht, pool_, mm_);
  }
  if (dump) dump("connector_modality_projection", ctx, {nb_h, nb_w, Ht});

  // Perceiver resampler. The rms eps comes from the resolved perceiver config (transformers-4.45 rule).
  const float eps = static_cast<float>(pc.rms_norm_eps);
  float* x = x_.Get(nl * Ht);  // [nl, Ht] latents (residual stream)
  std::memcpy(x, w_.latents, sizeof(float) * nl * Ht);
  // Keys and values come from [RMSNorm(context); RMSNorm(latents)]: the context part is normalized and
  // projected by RmsNormMatMulMany (never stored normalized in float32: a [S, Ht] copy would be 80 MB of
  // fresh memory per image), the latents apart.
  float* xn = xn_.Get(nl * Ht);           // [nl, Ht] RMSNorm(latents)
  float* q = q_.Get(nl * qd);           // [nl, nh*hd]
  float* k = k_.Get(T * kvd);           // [T, nkv*hd]
  float* v = v_.Get(T * kvd);           // [T, nkv*hd]
  float* a = a_.Get(nl * qd);           // [nl, nh*hd]
  float* o = o_.Get(nl * Ht);           // [nl, Ht]
  float* mg = mlp_g_.Get(nl * 4 * Ht);  // [nl, 4Ht]
  float* mu = mlp_u_.Get(nl * 4 * Ht);  // [nl, 4Ht]
  float* sc = attn_scratch_.Get(AttentionScratchFloats(nl, T, hd, pool_));

  AttentionArgs args;
  args.q = q;
  args.n_q = nl;
  args.q_stride = qd;
  args.k = k;
  args.v = v;
  args.n_keys = T;
  args.kv_stride = kvd;
  args.n_heads = pc.resampler_n_heads;
  args.n_kv_heads = pc.num_key_value_heads;
  args.head_dim = hd;
  args.divide_by_sqrt = true;  // eager perceiver: matmul(q, kᵀ) / sqrt(head_dim)
  args.out = a;
  args.out_stride = qd;

  for (const PerceiverLayerWeights& L : w_.layers) {
    args.bf16 = mm_.bf16_dot && L.q.format != WeightFormat::kF32;  // fast path: bf16 attention too
    RmsNorm(x, nl, Ht, L.latents_norm, eps, xn, pool_);
    MatMul(xn, nl, L.q, nullptr, q, pool_, mm_);
    RmsNormMatMulMany(ctx, S, L.context_norm, eps, {&L.k, &L.v}, {k, v}, pool_, mm_);
    MatMulMany(xn, nl, {&L.k, &L.v}, {k + S * kvd, v + S * kvd}, pool_, mm_);
    Attention(args, sc, pool_);
    MatMul(a, nl, L.o, nullptr, o, pool_, mm_);
    for (int64_t i = 0; i < nl * Ht; ++i) x[i] += o[i];
    RmsNorm(x, nl, Ht, L.post_norm, eps, o, pool_);
    SwiGluMlp(o, nl, L.gate, L.up, L.down, mg, mu, o, pool_, mm_);
    for (int64_t i = 0; i < nl * Ht; ++i) x[i] += o[i];
  }
  RmsNorm(x, nl, Ht, w_.norm, eps, out, pool_);
  if (dump) dump("connector_output", out, {nl, Ht});
}

}  // namespace idefics
