// When a sequence ends and which text may be shown so far: EOS ids, user stop strings (matched on the decoded
// text; the stop string is not emitted), max new tokens. Mirrors transformers' StoppingCriteria +
// StopStrings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idefics/sampling.h"

namespace idefics {

struct StopConfig {
  std::vector<int32_t> eos_ids;           // generation_config eos_token_id(s) + <end_of_utterance>
  std::vector<std::string> stop_strings;  // empty strings are ignored
  int64_t max_new_tokens = 512;           // >= 1
};

// Accumulates the generated text and decides, token by token, what can be emitted: text that could still be
// the start of a stop string is held back until it is known not to be one.
class StopRules {
 public:
  explicit StopRules(StopConfig config);

  struct Step {
    std::string emit;  // text safe to show now (maybe empty)
    FinishReason finish = FinishReason::kNone;
  };

  // Records one generated token and the text it decoded to (already UTF-8 complete; for an EOS token pass
  // whatever the decoder still held, usually ""). Must not be called after a Step with finish != kNone.
  Step OnToken(int32_t token, std::string_view piece);

  // The final text: everything generated, cut before a matched stop string; EOS tokens contribute nothing.
  const std::string& text() const { return text_; }
  int64_t n_tokens() const { return n_tokens_; }
  bool IsEos(int32_t token) const;
  const StopConfig& config() const { return config_; }

 private:
  // Length of the longest suffix of text_ (after emitted_) that is a proper prefix of a stop string.
  size_t HeldBackLength() const;

  StopConfig config_;
  std::string text_;
  size_t emitted_ = 0;  // bytes of text_ already handed out
  int64_t n_tokens_ = 0;
};

}  // namespace idefics
