// Streaming detokenizer: turns generated ids into text piece by piece without ever emitting half a UTF-8
// character. Mirrors the Llama fast tokenizer's decoder chain (Replace "▁", ByteFallback, Fuse, Strip).
#pragma once

#include <cstdint>
#include <string>

namespace idefics::tokenizer {

class Tokenizer;

class IncrementalDecoder {
 public:
  // `tokenizer` must outlive the decoder. When `strip_leading_space`, the first space of the whole stream is
  // dropped (the dummy prefix), like Tokenizer::Decode.
  explicit IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special = true,
                              bool strip_leading_space = true);

  // Adds one token and returns the text that is now complete (possibly ""). Bytes of a multi-byte
  // character split over several byte tokens are held back until the character is complete; an ill-formed
  // sequence is emitted as U+FFFD as soon as it is known to be ill-formed.
  std::string Push(int32_t id);

  // Returns the held-back bytes (an incomplete character becomes U+FFFD) and resets to a fresh stream.
  std::string Flush();

  // Bytes currently held back (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  // Moves every decidable prefix of pending_ to the result.
  std::string Drain(bool final);

  const Tokenizer* tokenizer_;
  bool skip_special_;
  bool strip_leading_space_;
  bool at_start_ = true;
  std::string pending_;
};

}  // namespace idefics::tokenizer
