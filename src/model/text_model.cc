// Decoder forward for a prefill block (one sequence) or a decode step over several sequences: every Linear
// runs once over all rows, attention runs per sequence against its own cache. Mirrors MistralModel.forward
// with eager attention and the 4.45 sliding-window mask (key j visible to query i iff i - window < j <= i).
#include "model/text_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <string>

#include "kernels/attention.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "model/swiglu.h"
#include "model/weight_formats.h"

namespace idefics {

namespace {
constexpr int64_t kMlpRows = 512;  // rows per MLP block in prefill
}  // namespace

TextModel::TextModel(const Idefics2Config& config, const TextWeights& weights, ThreadPool* pool,
                     const MatMulOptions& mm)
    : c_(config),
      w_(weights),
      pool_(pool),
      mm_(mm),
      inv_freq_(RopeInvFreq(config.text.head_dim, config.text.rope_theta)) {}

std::unique_ptr<TextKvCache> TextModel::NewCache(int64_t capacity) const {
  const TextConfig& t = c_.text;
  // Positions past max_position_embeddings are never needed by a sane request; the cap also keeps an absurd
  // capacity from asking for terabytes.
  capacity = std::clamp<int64_t>(capacity, 0, t.max_position_embeddings);
  return std::make_unique<TextKvCache>(t.num_hidden_layers, t.num_key_value_heads, t.head_dim, capacity);
}

Status TextModel::CheckCache(KvCache& cache, TextKvCache** out) const {
  auto* tc = dynamic_cast<TextKvCache*>(&cache);
  const TextConfig& t = c_.text;
  if (!tc || tc->n_layers() != t.num_hidden_layers || tc->kv_dim() != t.num_key_value_heads * t.head_dim)
    return InvalidArgument("the KV cache was not created by this model's NewCache");
  *out = tc;
  return Status::Ok();
}

Status TextModel::CheckIds(const int32_t* ids, int64_t n) const {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= c_.text.vocab_size)
      return InvalidArgument("token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                             " is outside the vocabulary of " + std::to_string(c_.text.vocab_size));
  return Status::Ok();
}

Status TextModel::CheckLogits(const float* logits, int64_t n) const {
  // A NaN or infinite logit means broken weights or constants (e.g. a NaN in a checkpoint): an error, never
  // a silent end of the answer or a token drawn from garbage.
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += !std::isfinite(logits[i]);
  if (bad == 0) return Status::Ok();
  return InternalError("the model produced " + std::to_string(bad) + " non-finite logits of " +
                       std::to_string(n) +
                       " (NaN or infinite activations: are the weights or config.json values broken?)");
}

Status TextModel::ReserveCache(TextKvCache* kv, int64_t n) const {
  if (kv->Reserve(n)) return Status::Ok();
  const double mb = 2.0 * c_.text.num_hidden_layers * kv->kv_dim() * n * sizeof(float) / 1e6;
  return ResourceExhausted("cannot allocate the KV cache's memory for " + std::to_string(n) + " positions (" +
                           std::to_string(static_cast<int64_t>(mb)) + " MB)");
}

void TextModel::ReleaseEmbeddingPages() const {
  // Read-only private file pages: dropping them only unmaps them (a later read maps them again).
  if (w_.embed_mapped && w_.embed.data != nullptr)
    ReleaseMappedPages(w_.embed.data, static_cast<size_t>(w_.embed.rows) * w_.embed.row_bytes());
}

Status TextModel::Forward(const int32_t* ids, int64_t n, const float* image_features, int64_t n_feature_rows,
                          KvCache& cache, float* logits, bool all_positions, const DumpFn& dump) {
  TextKvCache* kv = nullptr;
  RETURN_IF_ERROR(CheckCache(cache, &kv));
  if (n <= 0) return InvalidArgument("Forward needs at least one token, got " + std::to_string(n));
  if (ids == nullptr || logits == nullptr) return InvalidArgument("Forward: ids and logits must not be null");
  if (kv->size() + n > kv->capacity())
    return OutOfRange("Forward: " + std::to_string(kv->size()) + " cached + " + std::to_string(n) +
                      " new tokens exceed the KV cache capacity of " + std::to_string(kv->capacity()) +
                      " (at most text_config.max_position_embeddings = " +
                      std::to_string(c_.text.max_position_embeddings) + ")");
  RETURN_IF_ERROR(CheckIds(ids, n));
  // A single token without features is a decode step: like transformers' generate after the first step, an
  // image token then uses its own embedding row. Everything else must bring exactly one row per image token.
  const bool decode_step = n == 1 && n_feature_rows == 0;
  int64_t n_image = 0;
  for (int64_t i = 0; i < n; ++i) n_image += ids[i] == c_.image_token_id;
  if (decode_step) n_image = 0;
  if (n_image != n_feature_rows)
    return InvalidArgument("Forward: the tokens hold " + std::to_string(n_image) + " image tokens (id " +
                           std::to_string(c_.image_token_id) + ") but " + std::to_string(n_feature_rows) +
                           " image feature rows were given");
  if (n_feature_rows > 0 && image_features == nullptr)
    return InvalidArgument("Forward: image_features is null but " + std::to_string(n_feature_rows) +
                           " rows are expected");

  const int64_t Ht = c_.text.hidden_size, V = c_.text.vocab_size;
  float* h = h_.Get(n * Ht);  // [n, Ht] residual stream
  int64_t next_feature = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] == c_.image_token_id && !decode_step) {
      // The k-th image token takes the k-th feature row (spec §6).
      std::memcpy(h + i * Ht, image_features + next_feature++ * Ht, sizeof(float) * Ht);
    } else {
      DequantizeRow(w_.embed, ids[i], h + i * Ht);
    }
  }
  ReleaseEmbeddingPages();
  if (dump) dump("text_hidden_states.0", h, {n, Ht});
  RETURN_IF_ERROR(ReserveCache(kv, kv->size() + n));
  Layers(h, n, {Segment{kv, 0, n, kv->size()}}, dump);
  const int64_t first = all_positions ? 0 : n - 1, rows = n - first;
  MatMul(h + first * Ht, rows, w_.lm_head, nullptr, logits, pool_, mm_);
  if (dump) dump("logits", logits, {rows, V});
  RETURN_IF_ERROR(CheckLogits(logits, rows * V));  // a failed call leaves the cache's size as it was
  kv->Advance(n);
  return Status::Ok();
}

Status TextModel::DecodeBatch(const int32_t* ids, KvCache* const* caches, int64_t n_seqs, float* logits) {
  if (n_seqs <= 0) return InvalidArgument("DecodeBatch needs at least one sequence");
  if (ids == nullptr || caches == nullptr || logits == nullptr)
    return InvalidArgument("DecodeBatch: ids, caches and logits must not be null");
  RETURN_IF_ERROR(CheckIds(ids, n_seqs));
  std::vector<Segment> segs;
  std::set<KvCache*> seen;
  for (int64_t s = 0; s < n_seqs; ++s) {
    if (caches[s] == nullptr) return InvalidArgument("DecodeBatch: cache " + std::to_string(s) + " is null");
    if (!seen.insert(caches[s]).second)
      return InvalidArgument("DecodeBatch: cache " + std::to_string(s) + " appears more than once");
    TextKvCache* kv = nullptr;
    RETURN_IF_ERROR(CheckCache(*caches[s], &kv));
    if (kv->size() + 1 > kv->capacity())
      return OutOfRange("DecodeBatch: sequence " + std::to_string(s) + " is at its KV cache capacity of " +
                        std::to_string(kv->capacity()));
    segs.push_back(Segment{kv, s, 1, kv->size()});
  }
  for (const Segment& sg : segs) RETURN_IF_ERROR(ReserveCache(sg.cache, sg.pos0 + 1));
  const int64_t Ht = c_.text.hidden_size;
  float* h = h_.Get(n_seqs * Ht);  // [n_seqs, Ht]
  // Decode steps never merge image features: a generated image token uses its own embedding row.
  for (int64_t s = 0; s < n_seqs; ++s) DequantizeRow(w_.embed, ids[s], h + s * Ht);
  ReleaseEmbeddingPages();
  Layers(h, n_seqs, segs, nullptr);
  MatMul(h, n_seqs, w_.lm_head, nullptr, logits, pool_, mm_);
  RETURN_IF_ERROR(CheckLogits(logits, n_seqs * c_.text.vocab_size));
  for (const Segment& sg : segs) sg.cache->Advance(1);
  return Status::Ok();
}

void TextModel::Layers(float* h, int64_t M, const std::vector<Segment>& segs, const DumpFn& dump) {
  const TextConfig& t = c_.text;
  const int64_t Ht = t.hidden_size, It = t.intermediate_size, hd = t.head_dim, half = hd / 2;
  const int64_t nh = t.num_attention_heads, nkv = t.num_key_value_heads;
  const int64_t qd = nh * hd, kvd = nkv * hd;
  const float eps = static_cast<float>(t.rms_norm_eps);
  float* x = x_.Get(M * Ht);                // [M, Ht]
  float* q = q_.Get(M * qd);                // [M, nh*hd]
  float* k = k_.Get(M * kvd);               // [M, nkv*hd]
  float* v = v_.Get(M * kvd);               // [M, nkv*hd]
  float* a = a_.Get(M * std::max(qd, Ht));  // [M, nh*hd] attention output, then [m, Ht] MLP output
  const int64_t mlp_block = std::min<int64_t>(M, kMlpRows);
  float* g = g_.Get(mlp_block * It);  // [mlp_block, It]
  float* u = u_.Get(mlp_block * It);  // [mlp_block, It]
  float* cs = cos_.Get(M * half);     // [M, half]
  float* sn = sin_.Get(M * half);     // [M, half]
  int64_t max_keys = 0;
  for (const Segment& sg : segs) {
    max_keys = std::max(max_keys, sg.pos0 + sg.n);
    for (int64_t i = 0; i < sg.n; ++i)
      RopeCosSin(inv_freq_.data(), half, sg.pos0 + i, cs + (sg.row0 + i) * half, sn + (sg.row0 + i) * half);
  }
  float* sc = attn_scratch_.Get(AttentionScratchFloats(M, max_keys, hd, pool_));
  const int64_t window = t.sliding_window.value_or(0);

  for (size_t l = 0; l < w_.layers.size(); ++l) {
    const TextLayerWeights& L = w_.layers[l];
    RmsNorm(h, M, Ht, L.input_norm, eps, x, pool_);
    MatMulMany(x, M, {&L.q, &L.k, &L.v}, {q, k, v}, pool_, mm_);  // one dispatch in decode
    for (int64_t r = 0; r < M; ++r) {
      ApplyRope(q + r * qd, nh, half, cs + r * half, sn + r * half);
      ApplyRope(k + r * kvd, nkv, half, cs + r * half, sn + r * half);
    }
    for (const Segment& sg : segs) {
      float* kc = sg.cache->keys(l);    // [nkv, stride, hd]
      float* vc = sg.cache->values(l);  // [nkv, stride, hd]
      const int64_t cap = sg.cache->stride();
      for (int64_t i = 0; i < sg.n; ++i)
        for (int64_t g2 = 0; g2 < nkv; ++g2) {
          std::memcpy(kc + (g2 * cap + sg.pos0 + i) * hd, k + (sg.row0 + i) * kvd + g2 * hd, sizeof(float) * hd);
          std::memcpy(vc + (g2 * cap + sg.pos0 + i) * hd, v + (sg.row0 + i) * kvd + g2 * hd, sizeof(float) * hd);
        }
      AttentionArgs args;
      args.q = q + sg.row0 * qd;
      args.n_q = sg.n;
      args.q_stride = qd;
      args.k = kc;
      args.v = vc;
      args.n_keys = sg.pos0 + sg.n;
      args.kv_stride = hd;
      args.kv_head_stride = cap * hd;
      args.n_heads = nh;
      args.n_kv_heads = nkv;
      args.head_dim = hd;
      args.divide_by_sqrt = true;  // eager Mistral: matmul(q, kᵀ) / sqrt(head_dim)
      args.bf16 = mm_.bf16_dot && L.q.format != WeightFormat::kF32;  // fast path: bf16 dot products
      args.causal = true;
      args.q_pos0 = sg.pos0;
      args.window = window;
      args.out = a + sg.row0 * qd;
      args.out_stride = qd;
      Attention(args, sc, pool_);
    }
    MatMul(a, M, L.o, nullptr, x, pool_, mm_);
    for (int64_t i = 0; i < M * Ht; ++i) h[i] += x[i];
    RmsNorm(h, M, Ht, L.post_norm, eps, x, pool_);
    // SwiGLU MLP in row blocks: the [rows, It] temporaries stay bounded for long prompts.
    for (int64_t r0 = 0; r0 < M; r0 += mlp_block) {
      const int64_t m = std::min(mlp_block, M - r0);
      SwiGluMlp(x + r0 * Ht, m, L.gate, L.up, L.down, g, u, a, pool_, mm_);  // a is free again after o_proj
      for (int64_t i = 0; i < m * Ht; ++i) h[r0 * Ht + i] += a[i];
    }
    // transformers' hidden_states[i] for i < layers is the output of layer i - 1; the last entry is replaced
    // by the final norm below.
    if (dump && l + 1 < w_.layers.size()) dump("text_hidden_states." + std::to_string(l + 1), h, {M, Ht});
  }
  RmsNorm(h, M, Ht, w_.norm, eps, h, pool_);
  if (dump) dump("text_hidden_states." + std::to_string(w_.layers.size()), h, {M, Ht});
}

}  // namespace idefics
