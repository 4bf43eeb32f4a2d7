// Stop rules (see stop_rules.h). Mirrors transformers' MaxLengthCriteria, EosTokenCriteria and
// StopStringCriteria (the latter matched on decoded text here, and the stop string is cut from the output as
// servers do).
#include "runtime/stop_rules.h"

#include <algorithm>

namespace idefics {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kNone:
      return "";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "";
}

StopRules::StopRules(StopConfig config) : config_(std::move(config)) {
  auto& s = config_.stop_strings;
  s.erase(std::remove(s.begin(), s.end(), std::string()), s.end());
}

bool StopRules::IsEos(int32_t token) const {
  return std::find(config_.eos_ids.begin(), config_.eos_ids.end(), token) != config_.eos_ids.end();
}

size_t StopRules::HeldBackLength() const {
  const std::string_view tail = std::string_view(text_).substr(emitted_);
  size_t best = 0;
  for (const std::string& stop : config_.stop_strings) {
    const size_t max_len = std::min(tail.size(), stop.size() - 1);
    for (size_t len = max_len; len > best; --len) {
      if (tail.substr(tail.size() - len) == std::string_view(stop).substr(0, len)) {
        best = len;
        break;
      }
    }
  }
  return best;
}

StopRules::Step StopRules::OnToken(int32_t token, std::string_view piece) {
  Step step;
  ++n_tokens_;
  text_.append(piece);
  // A stop string cannot start inside already-emitted text: any of its prefixes at the end was held back.
  size_t stop_at = std::string::npos;
  for (const std::string& stop : config_.stop_strings) {
    const size_t pos = text_.find(stop, emitted_);
    if (pos != std::string::npos) stop_at = std::min(stop_at, pos);
  }
  if (stop_at != std::string::npos) {
    step.emit = text_.substr(emitted_, stop_at - emitted_);
    text_.resize(stop_at);
    emitted_ = stop_at;
    step.finish = FinishReason::kStop;
    return step;
  }
  if (IsEos(token)) {
    step.finish = FinishReason::kStop;
  } else if (n_tokens_ >= config_.max_new_tokens) {
    step.finish = FinishReason::kLength;
  }
  // At the end nothing is held back any more.
  const size_t hold = step.finish == FinishReason::kNone ? HeldBackLength() : 0;
  const size_t end = text_.size() - hold;
  step.emit = text_.substr(emitted_, end - emitted_);
  emitted_ = end;
  return step;
}

}  // namespace idefics
