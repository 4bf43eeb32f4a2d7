// The vocabulary-model interface behind Tokenizer: SentencePiece's tokenizer.model (SentencePieceBpe) or
// a Hugging Face tokenizer.json BPE (HfBpeModel). Mirrors the role of tokenizers' `Model` + normalizer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_tokens.h"

namespace idefics::tokenizer {

class SubwordModel {
 public:
  enum class TokenKind { kNormal, kByte, kControl, kUnknown };
  enum Role { kBos = 0, kEos = 1, kUnk = 2, kPad = 3 };

  virtual ~SubwordModel() = default;

  virtual int32_t size() const = 0;
  // -1 when `piece` is not in the vocabulary.
  virtual int32_t PieceToId(std::string_view piece) const = 0;
  // Requires 0 <= id < size().
  virtual const std::string& PieceText(int32_t id) const = 0;
  virtual TokenKind Kind(int32_t id) const = 0;
  // The byte a byte-fallback token ("<0x41>") stands for, or -1.
  virtual int ByteValue(int32_t id) const = 0;

  // Appends the ids of one text segment (the text between two added tokens). `at_input_start` says
  // whether the segment begins the whole input (a "first"-only prefix space depends on it).
  virtual void EncodeSegment(std::string_view text, bool at_input_start, std::vector<int32_t>* out) const = 0;

  // The model file's own idea of the special tokens ("" when it has none); the JSON files override it.
  virtual std::string DefaultSpecialToken(Role role) const = 0;
  // Added tokens the model file declares itself (tokenizer.json's "added_tokens").
  virtual std::vector<AddedToken> ModelAddedTokens() const { return {}; }
  // Whether BOS is prepended when tokenizer_config.json does not say (tokenizer.json's post-processor).
  virtual bool DefaultAddBos() const { return true; }
};

}  // namespace idefics::tokenizer
