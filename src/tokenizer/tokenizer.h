// The Idefics2 / Mistral text tokenizer loaded from a Hugging Face model folder (tokenizer.model + the
// JSON files). Mirrors transformers' LlamaTokenizer (legacy=true) encoding and the Llama fast decoder.
//
// Typical use (thread-safe once loaded; all methods are const):
//   ASSIGN_OR_RETURN(auto tok, Tokenizer::Load(dir));
//   std::vector<int32_t> ids = tok->Encode(prompt, tok->add_bos_token());
//   IncrementalDecoder stream(*tok);  // per request: text = stream.Push(id) ... stream.Flush()
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "idefics/status.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/subword_model.h"

namespace idefics::tokenizer {

class Tokenizer {
 public:
  // Loads `model_dir`/tokenizer.model (or, when the folder has none, a Llama-style BPE tokenizer.json)
  // and, when present, tokenizer_config.json (added_tokens_decoder, bos/eos/unk/pad_token,
  // add_bos_token), added_tokens.json and special_tokens_map.json. Token ids always come from these files (e.g. <image> = 32001 for idefics2-8b,
  // 4001 for the tiny test models). Errors name the offending file.
  static StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& model_dir);

  // Encodes `text`: added/special tokens (<s>, </s>, <unk>, <image>, ...) written in the text are matched
  // literally first (leftmost-longest); each remaining segment is SentencePiece-encoded on its own with the
  // dummy-prefix "▁". BOS is prepended when `add_bos`. Never fails: unknown characters become byte tokens.
  std::vector<int32_t> Encode(std::string_view text, bool add_bos = true) const;

  // Decodes ids to UTF-8 text: "▁" -> " ", byte tokens joined into UTF-8 (ill-formed sequences -> U+FFFD),
  // one leading space of the result stripped. Special tokens are dropped when `skip_special`, else written
  // as their text. Ids outside the vocabulary are ignored. Equal to feeding an IncrementalDecoder.
  std::string Decode(std::span<const int32_t> ids, bool skip_special = true) const;

  // The id of a token given by its exact text (a piece like "▁Hello" or an added token like "<image>"),
  // or -1 when there is none.
  int32_t TokenId(std::string_view token) const;
  // The text of token `id` ("▁Hello", "<0x0A>", "<image>"), or "" when out of range.
  std::string_view IdToToken(int32_t id) const;
  // True for special tokens (bos/eos/unk/pad, additional special tokens, control pieces).
  bool IsSpecial(int32_t id) const;
  // Appends the raw bytes token `id` contributes to decoded text (before UTF-8 repair and leading-space
  // stripping); nothing for out-of-range ids or, when `skip_special`, special tokens.
  void AppendTokenBytes(int32_t id, bool skip_special, std::string* out) const;

  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t pad_id() const { return pad_id_; }  // -1 when the folder defines no pad token
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  const std::string& unk_token() const { return unk_token_; }
  const std::string& pad_token() const { return pad_token_; }
  // additional_special_tokens of tokenizer_config.json / special_tokens_map.json, in file order.
  const std::vector<std::string>& additional_special_tokens() const { return additional_special_tokens_; }
  // tokenizer_config.json's add_bos_token (default true): what callers should pass to Encode.
  bool add_bos_token() const { return add_bos_token_; }
  // Number of ids: SentencePiece pieces plus added tokens (4003 for the tiny models, 32003 for idefics2-8b).
  int32_t vocab_size() const { return static_cast<int32_t>(token_text_.size()); }
  // The vocabulary model (SentencePiece or tokenizer.json BPE).
  const SubwordModel& model() const { return *model_; }

 private:
  Tokenizer() = default;
  Status Finish(const std::string& dir);

  std::unique_ptr<SubwordModel> model_;
  AddedTokenMatcher matcher_;
  std::vector<AddedToken> added_;                           // every literal-matched token
  std::unordered_map<std::string, int32_t> added_by_text_;  // content -> id
  std::vector<std::string> token_text_;                     // id -> token text
  std::vector<std::string> decoded_bytes_;                  // id -> bytes it decodes to
  std::vector<uint8_t> special_;                            // id -> is special
  int32_t bos_id_ = -1, eos_id_ = -1, unk_id_ = -1, pad_id_ = -1;
  std::string bos_token_, eos_token_, unk_token_, pad_token_;
  std::vector<std::string> additional_special_tokens_;
  bool add_bos_token_ = true;

  friend class TokenizerLoader;
};

}  // namespace idefics::tokenizer
