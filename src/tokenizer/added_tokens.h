// Added / special tokens of a Hugging Face tokenizer folder and the literal matching that splits a text on
// them before SentencePiece sees it. Mirrors transformers' AddedToken + the Trie used by PreTrainedTokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace idefics::tokenizer {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = true;  // skipped by Decode(skip_special = true)
  bool lstrip = false;  // swallow whitespace to the left of the token
  bool rstrip = false;  // swallow whitespace to the right of the token
};

// A piece of the input: either plain text (token_id == -1) or one matched added token.
struct TextSegment {
  std::string_view text;
  int32_t token_id = -1;
};

// Leftmost-longest literal matcher over the added tokens (a byte trie).
class AddedTokenMatcher {
 public:
  AddedTokenMatcher();
  ~AddedTokenMatcher();
  AddedTokenMatcher(AddedTokenMatcher&&) noexcept;
  AddedTokenMatcher& operator=(AddedTokenMatcher&&) noexcept;

  // Adds (or replaces, for the same content) a token. Empty contents are ignored.
  void Add(const AddedToken& token);

  // Splits `text` into plain-text segments and tokens, applying lstrip/rstrip. Empty text segments are
  // dropped, so two adjacent tokens produce no text between them.
  std::vector<TextSegment> Split(std::string_view text) const;

  bool empty() const;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
};

}  // namespace idefics::tokenizer
