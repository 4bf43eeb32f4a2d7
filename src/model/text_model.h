// The Mistral decoder with image-feature merge, KV cache, causal + sliding-window GQA attention, lm_head.
// Mirrors MistralModel / MistralForCausalLM as used by Idefics2ForConditionalGeneration (transformers 4.45).
#pragma once

#include <cstdint>
#include <vector>

#include "idefics/status.h"
#include "io/model_config.h"
#include "model/idefics2_model.h"
#include "model/kv_cache.h"
#include "model/scratch.h"
#include "model/weights.h"

namespace idefics {

class TextModel {
 public:
  TextModel(const Idefics2Config& config, const TextWeights& weights, ThreadPool* pool,
            const MatMulOptions& mm);

  std::unique_ptr<TextKvCache> NewCache(int64_t capacity) const;

  // See Idefics2Model::Forward. Dumps text_hidden_states.<i> ([n, Ht]; the last is after the final norm)
  // and logits ([n or 1, V]).
  Status Forward(const int32_t* ids, int64_t n, const float* image_features, int64_t n_feature_rows,
                 KvCache& cache, float* logits, bool all_positions, const DumpFn& dump);
  // See Idefics2Model::DecodeBatch.
  Status DecodeBatch(const int32_t* ids, KvCache* const* caches, int64_t n_seqs, float* logits);

 private:
  // Rows [row0, row0 + n) of the batch are consecutive tokens of one sequence starting at position pos0.
  struct Segment {
    TextKvCache* cache;
    int64_t row0, n, pos0;
  };
  Status CheckCache(KvCache& cache, TextKvCache** out) const;
  Status CheckIds(const int32_t* ids, int64_t n) const;
  // InternalError when any of the n logits is NaN or infinite.
  Status CheckLogits(const float* logits, int64_t n) const;
  // Makes room in the cache for positions [0, n); ResourceExhausted when the memory is not there.
  Status ReserveCache(TextKvCache* kv, int64_t n) const;
  // Runs every decoder layer over h ([M, Ht], M = total rows), appending to the caches; leaves the final
  // RMSNorm in h. Dumps only when dump is set (single segment).
  void Layers(float* h, int64_t M, const std::vector<Segment>& segs, const DumpFn& dump);
  // After a lookup: unmaps the rows just read when the table is read in place from the file mapping (the page
  // cache keeps them), so the 262 MB table never adds to the resident memory a few rows at a time.
  void ReleaseEmbeddingPages() const;

  const Idefics2Config& c_;
  const TextWeights& w_;
  ThreadPool* pool_;
  MatMulOptions mm_;             // options of the Linear layers
  std::vector<float> inv_freq_;  // [head_dim / 2]
  ScratchBuffer h_, x_, q_, k_, v_, a_, g_, u_, cos_, sin_, attn_scratch_;
};

}  // namespace idefics
