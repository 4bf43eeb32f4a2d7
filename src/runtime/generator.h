// The generation loop of one request: vision encoder on the prepared images, prefill over the prompt (reusing
// a cached prefix when allowed), then token-by-token decoding through a SequenceState. Mirrors
// Idefics2ForConditionalGeneration.generate() (greedy/sample, batch size 1, with a KV cache).
#pragma once

#include <cstdint>
#include <vector>

#include "idefics/engine.h"
#include "idefics/status.h"

namespace idefics {

class Idefics2Model;
class KvCache;

struct GeneratorInputs {
  Idefics2Model* model = nullptr;
  const PreparedPrompt* prompt = nullptr;
  int64_t image_seq_len = 0;  // image tokens per (sub-)image
  int32_t image_token_id = -1;
  KvCache* cache = nullptr;  // capacity >= prompt + max_tokens
  // Tokens already in `cache` (from an earlier call of the same session); updated to what the cache holds on
  // return. The longest common prefix with the prompt is kept, the rest recomputed.
  std::vector<int32_t>* cached_ids = nullptr;
  SequenceState* sequence = nullptr;
};

// Fills result->{text, generated_ids, finish_reason, prompt_logits, timings.vision/prefill/decode,
// generated_tokens}. prompt_ids/preprocess/load timings are the caller's.
Status RunGeneration(const GeneratorInputs& in, const TextCallback& on_text, const GenerateOptions& options,
                     GenerationResult* result);

}  // namespace idefics
