// One sequence's sampler + stop rules + incremental detokenizer (SequenceState of include/idefics/engine.h).
// Mirrors one row of transformers' generate() loop: logits processors, next token, stopping criteria.
#include <utility>

#include "idefics/engine.h"
#include "runtime/sampler.h"
#include "runtime/sequence_state_impl.h"
#include "runtime/stop_rules.h"
#include "tokenizer/incremental_decoder.h"

namespace idefics {

SequenceState::SequenceState(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SequenceState::~SequenceState() = default;
SequenceState::SequenceState(SequenceState&&) noexcept = default;
SequenceState& SequenceState::operator=(SequenceState&&) noexcept = default;

SequenceState::Step SequenceState::Advance(std::span<float> logits) {
  Impl& s = *impl_;
  Step step;
  if (s.finish != FinishReason::kNone) {
    step.finish = s.finish;
    return step;
  }
  const int32_t token = s.sampler.Next(logits, s.context, s.generated);
  if (token < 0) {
    // Every logit was -inf or NaN (only possible with broken weights): end rather than invent a token.
    s.finish = step.finish = FinishReason::kStop;
    return step;
  }
  step.token = token;
  s.context.push_back(token);
  s.generated.push_back(token);
  std::string piece;
  if (s.stop.IsEos(token)) {
    piece = s.decoder.Flush();  // bytes of an unfinished character, if any (U+FFFD)
  } else {
    piece = s.decoder.Push(token);
    if (s.stop.n_tokens() + 1 >= s.stop.config().max_new_tokens) piece += s.decoder.Flush();
  }
  StopRules::Step st = s.stop.OnToken(token, piece);
  s.visible += st.emit;
  step.text = std::move(st.emit);
  s.finish = step.finish = st.finish;
  return step;
}

void SequenceState::Cancel() {
  if (impl_->finish == FinishReason::kNone) impl_->finish = FinishReason::kCancelled;
}

bool SequenceState::finished() const {
  return impl_->finish != FinishReason::kNone;
}
FinishReason SequenceState::finish_reason() const {
  return impl_->finish;
}
const std::vector<int32_t>& SequenceState::generated_ids() const {
  return impl_->generated;
}
const std::string& SequenceState::text() const {
  return impl_->visible;
}

}  // namespace idefics
