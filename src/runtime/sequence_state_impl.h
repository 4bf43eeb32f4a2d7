// The state behind SequenceState (engine.h): kept out of the public header so it needs no internal types.
// Mirrors the per-row state of transformers' generate() loop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "idefics/engine.h"
#include "runtime/sampler.h"
#include "runtime/stop_rules.h"
#include "tokenizer/incremental_decoder.h"

namespace idefics {

struct SequenceState::Impl {
  Impl(const tokenizer::Tokenizer& tok, const SamplingParams& sampling, std::vector<int32_t> banned,
       StopConfig stop_config, std::vector<int32_t> prompt_ids)
      : sampler(sampling, std::move(banned)),
        stop(std::move(stop_config)),
        decoder(tok, /*skip_special=*/true, /*strip_leading_space=*/true),
        context(std::move(prompt_ids)) {}

  Sampler sampler;
  StopRules stop;
  tokenizer::IncrementalDecoder decoder;
  std::vector<int32_t> context;  // prompt + generated (the repetition penalty's window)
  std::vector<int32_t> generated;
  std::string visible;  // text handed out so far
  FinishReason finish = FinishReason::kNone;
};

}  // namespace idefics
