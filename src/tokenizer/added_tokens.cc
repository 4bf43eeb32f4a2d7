// Added / special tokens of a Hugging Face tokenizer folder and the literal matching that splits a text on
// them before SentencePiece sees it. Mirrors transformers' AddedToken + the Trie used by PreTrainedTokenizer.
#include "tokenizer/added_tokens.h"

#include <map>

namespace idefics::tokenizer {

struct AddedTokenMatcher::Node {
  std::map<uint8_t, std::unique_ptr<Node>> children;
  bool terminal = false;
  AddedToken token;
};

AddedTokenMatcher::AddedTokenMatcher() : root_(std::make_unique<Node>()) {}
AddedTokenMatcher::~AddedTokenMatcher() = default;
AddedTokenMatcher::AddedTokenMatcher(AddedTokenMatcher&&) noexcept = default;
AddedTokenMatcher& AddedTokenMatcher::operator=(AddedTokenMatcher&&) noexcept = default;

bool AddedTokenMatcher::empty() const {
  return root_->children.empty();
}

void AddedTokenMatcher::Add(const AddedToken& token) {
  if (token.content.empty()) return;
  Node* n = root_.get();
  for (char c : token.content) {
    auto& child = n->children[static_cast<uint8_t>(c)];
    if (!child) child = std::make_unique<Node>();
    n = child.get();
  }
  n->terminal = true;
  n->token = token;
}

namespace {
bool IsStripSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
}  // namespace

std::vector<TextSegment> AddedTokenMatcher::Split(std::string_view text) const {
  std::vector<TextSegment> out;
  size_t text_start = 0;  // start of the pending plain-text segment
  size_t i = 0;
  auto flush_text = [&](size_t end) {
    if (end > text_start) out.push_back(TextSegment{text.substr(text_start, end - text_start), -1});
  };
  while (i < text.size()) {
    // Longest token starting at i.
    const Node* n = root_.get();
    const Node* best = nullptr;
    size_t best_len = 0;
    for (size_t j = i; j < text.size(); ++j) {
      auto it = n->children.find(static_cast<uint8_t>(text[j]));
      if (it == n->children.end()) break;
      n = it->second.get();
      if (n->terminal) {
        best = n;
        best_len = j - i + 1;
      }
    }
    if (!best) {
      ++i;
      continue;
    }
    size_t text_end = i;
    if (best->token.lstrip) {
      while (text_end > text_start && IsStripSpace(text[text_end - 1])) --text_end;
    }
    flush_text(text_end);
    out.push_back(TextSegment{text.substr(i, best_len), best->token.id});
    i += best_len;
    if (best->token.rstrip) {
      while (i < text.size() && IsStripSpace(text[i])) ++i;
    }
    text_start = i;
  }
  flush_text(text.size());
  return out;
}

}  // namespace idefics::tokenizer
