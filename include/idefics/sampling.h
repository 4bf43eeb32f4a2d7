// Sampling parameters and finish reasons of one generation request (public API).
// Field meanings follow transformers' GenerationConfig (temperature, top_k, top_p, min_p,
// repetition_penalty).
#pragma once

#include <cstdint>

namespace idefics {

struct SamplingParams {
  // true: argmax (lowest token id on ties) after the repetition penalty and banned ids; temperature, top-k,
  // top-p, min-p and seed are ignored. This is the default, like idefics2's generation_config (do_sample
  // off).
  bool greedy = true;
  float temperature = 1.0f;         // > 0; logits are divided by it before the filters
  int32_t top_k = 0;                // keep the k most likely tokens (ties kept); 0 = off
  float top_p = 1.0f;               // nucleus: keep the smallest set with probability mass >= top_p; 1 = off
  float min_p = 0.0f;               // drop tokens with p < min_p * p(most likely); 0 = off
  float repetition_penalty = 1.0f;  // > 0; 1 = off; applied over prompt + generated ids, also when greedy
  // OpenAI's penalties over the generated ids only (also when greedy): logit -= frequency_penalty * count
  // + presence_penalty * (count > 0). 0 = off; the API allows [-2, 2].
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;                // RNG seed (std::mt19937_64); same seed + same logits -> same tokens
};

enum class FinishReason {
  kNone,       // still running
  kStop,       // an EOS id (generation_config eos_token_id, <end_of_utterance>) or a stop string
  kLength,     // max new tokens reached
  kCancelled,  // the caller stopped it (text callback returned false)
};

// "stop", "length", "cancelled" ("" for kNone): the OpenAI finish_reason strings.
const char* FinishReasonName(FinishReason r);

}  // namespace idefics
