// Streaming detokenizer: turns generated ids into text piece by piece without ever emitting half a UTF-8
// character. Mirrors the Llama fast tokenizer's decoder chain (Replace "▁", ByteFallback, Fuse, Strip).
#include "tokenizer/incremental_decoder.h"

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace idefics::tokenizer {

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special,
                                       bool strip_leading_space)
    : tokenizer_(&tokenizer), skip_special_(skip_special), strip_leading_space_(strip_leading_space) {}

std::string IncrementalDecoder::Push(int32_t id) {
  const size_t before = pending_.size();
  tokenizer_->AppendTokenBytes(id, skip_special_, &pending_);
  if (at_start_ && pending_.size() > before) {
    // Only the very first byte of the stream may be the stripped dummy-prefix space.
    if (strip_leading_space_ && pending_[before] == ' ') pending_.erase(before, 1);
    at_start_ = false;
  }
  return Drain(/*final=*/false);
}

std::string IncrementalDecoder::Flush() {
  std::string out = Drain(/*final=*/true);
  pending_.clear();
  at_start_ = true;
  return out;
}

std::string IncrementalDecoder::Drain(bool final) {
  std::string out;
  const auto* p = reinterpret_cast<const uint8_t*>(pending_.data());
  size_t i = 0;
  while (i < pending_.size()) {
    size_t len = 0;
    const Utf8Scan r = ScanUtf8Char(p + i, pending_.size() - i, &len);
    if (r == Utf8Scan::kIncomplete && !final) break;  // wait for the next token
    if (r == Utf8Scan::kValid) {
      out.append(pending_, i, len);
    } else {
      out.append(kReplacementChar);
    }
    i += len;
  }
  pending_.erase(0, i);
  return out;
}

}  // namespace idefics::tokenizer
