// Next-token choice from one row of logits: repetition penalty, banned ids, temperature, top-k, top-p, min-p,
// then greedy argmax or a seeded categorical draw. Mirrors transformers' LogitsProcessor/LogitsWarper chain.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "idefics/sampling.h"

namespace idefics {

// Applies the processors of `p` to logits in place, in transformers' order (generate() with do_sample):
//   1. repetition penalty over `context_ids` (prompt + generated so far; each distinct id once):
//      logit > 0 -> logit / r, else logit * r          (RepetitionPenaltyLogitsProcessor)
//   1b. OpenAI presence / frequency penalties over `generated_ids`: logit -= frequency * count + presence
//   2. banned ids -> -inf                                (NoBadWordsLogitsProcessor, single-token words)
//   3. temperature: logit / T                            (TemperatureLogitsWarper; skipped when greedy)
//   4. top-k: keep logits >= the k-th largest (ties kept)         (TopKLogitsWarper; skipped when greedy)
//   5. top-p: drop the least likely tokens whose cumulative probability <= 1 - top_p (the most likely token
//      always stays)                                     (TopPLogitsWarper; skipped when greedy)
//   6. min-p: drop tokens with prob < min_p * max prob   (MinPLogitsWarper; skipped when greedy)
// Filtered logits become -inf. Steps 3-6 are only meaningful for sampling and are skipped when p.greedy.
void ProcessLogits(const SamplingParams& p, std::span<const int32_t> context_ids,
                   std::span<const int32_t> banned_ids, std::span<float> logits,
                   std::span<const int32_t> generated_ids = {});

// Index of the largest logit, the lowest index on ties; -1 when no logit is a number above -inf.
int32_t ArgMax(std::span<const float> logits);

// Draws an index from softmax(logits) with u uniform in [0, 1). Deterministic given u: the cumulative sum
// runs over indices in increasing order in double precision. -1 when nothing is selectable.
int32_t SampleCategorical(std::span<const float> logits, double u);

// Per-sequence sampler: owns the RNG (std::mt19937_64 seeded with params.seed; the 53-bit uniform is derived
// by hand so draws are identical on every platform and standard library).
class Sampler {
 public:
  Sampler(const SamplingParams& params, std::vector<int32_t> banned_ids);

  // Picks the next token from `logits` (modified in place: [vocab]). context_ids: prompt + generated ids,
  // used by the repetition penalty; generated_ids: the presence / frequency penalties' window. Returns -1
  // only when every logit is -inf/NaN after filtering.
  int32_t Next(std::span<float> logits, std::span<const int32_t> context_ids,
               std::span<const int32_t> generated_ids = {});

  const SamplingParams& params() const { return params_; }
  const std::vector<int32_t>& banned_ids() const { return banned_; }

 private:
  double Uniform();

  SamplingParams params_;
  std::vector<int32_t> banned_;
  std::mt19937_64 rng_;
};

}  // namespace idefics
