// SentencePiece BPE encoder over one text segment: normalization (dummy prefix, spaces -> "▁") then greedy
// merging by piece score, byte fallback for unknown characters. Mirrors sentencepiece's bpe::Model::Encode.
#include "tokenizer/sentencepiece_bpe.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "core/check.h"
#include "tokenizer/utf8.h"

namespace idefics::tokenizer {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // "▁" U+2581

// A symbol of the segment being merged: a byte range of the normalized text in a doubly linked list.
struct Symbol {
  int prev;
  int next;
  size_t begin;
  size_t len;   // 0 once merged into its left neighbour
  bool atomic;  // a user-defined piece: never merged with neighbours
};

// A candidate merge of two adjacent symbols.
struct Candidate {
  float score;
  int left;
  int right;
  size_t len;  // len(left) + len(right) when pushed; a mismatch later means the candidate is stale
};

// Highest score first; on equal scores the leftmost pair first (sentencepiece's agenda order).
struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  }
};

}  // namespace

StatusOr<std::unique_ptr<SentencePieceBpe>> SentencePieceBpe::Create(SentencePieceModel model,
                                                                     const std::string& name) {
  if (model.model_type != 2) {
    return Unimplemented(name + ": trainer_spec.model_type = " + std::to_string(model.model_type) +
                         "; only BPE (2) SentencePiece models are supported");
  }
  if (model.precompiled_charsmap_size > 0) {
    return Unimplemented(name + ": normalizer '" + model.normalizer_name +
                         "' with a precompiled_charsmap is not supported (only the identity normalizer)");
  }
  std::unique_ptr<SentencePieceBpe> bpe(new SentencePieceBpe(std::move(model)));
  const auto& pieces = bpe->model_.pieces;
  bpe->byte_value_.assign(pieces.size(), -1);
  std::fill(std::begin(bpe->byte_ids_), std::end(bpe->byte_ids_), -1);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const SentencePiece& p = pieces[i];
    const auto id = static_cast<int32_t>(i);
    if (p.piece.empty()) return InvalidArgument(name + ": piece " + std::to_string(i) + " is empty");
    bpe->all_.emplace(p.piece, id);
    if (p.type == PieceType::kNormal || p.type == PieceType::kUserDefined)
      bpe->mergeable_.emplace(p.piece, id);
    if (p.type == PieceType::kUserDefined) bpe->user_defined_.push_back(p.piece);
    if (p.type == PieceType::kByte) {
      unsigned v = 0;
      char tail = 0;
      if (p.piece.size() != 6 || std::sscanf(p.piece.c_str(), "<0x%2X>%c", &v, &tail) != 1 || v > 255) {
        return InvalidArgument(name + ": piece " + std::to_string(i) + " '" + p.piece +
                               "' has type BYTE but is not of the form <0xXX>");
      }
      bpe->byte_value_[i] = static_cast<int>(v);
      if (bpe->byte_ids_[v] < 0) bpe->byte_ids_[v] = id;
    }
  }
  if (bpe->model_.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      if (bpe->byte_ids_[b] < 0) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "<0x%02X>", b);
        return InvalidArgument(name + ": byte_fallback is on but the BYTE piece " + hex + " is missing");
      }
    }
  }
  bpe->split_at_words_ = true;
  for (const auto& [piece, id] : bpe->mergeable_) {
    for (size_t k = piece.find(kSpaceSymbol, 1); k != std::string_view::npos;
         k = piece.find(kSpaceSymbol, k + 1)) {
      if (k < kSpaceSymbol.size() ||
          piece.substr(k - kSpaceSymbol.size(), kSpaceSymbol.size()) != kSpaceSymbol) {
        bpe->split_at_words_ = false;
      }
    }
  }
  // Longest user-defined pieces first so that the first match is the longest one.
  std::sort(bpe->user_defined_.begin(), bpe->user_defined_.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  return bpe;
}

int32_t SentencePieceBpe::PieceToId(std::string_view piece) const {
  auto it = all_.find(piece);
  return it == all_.end() ? -1 : it->second;
}

SubwordModel::TokenKind SentencePieceBpe::Kind(int32_t id) const {
  switch (piece(id).type) {
    case PieceType::kByte:
      return TokenKind::kByte;
    case PieceType::kControl:
      return TokenKind::kControl;
    case PieceType::kUnknown:
      return TokenKind::kUnknown;
    default:
      return TokenKind::kNormal;
  }
}

std::string SentencePieceBpe::DefaultSpecialToken(Role role) const {
  const int32_t ids[4] = {model_.bos_id, model_.eos_id, model_.unk_id, model_.pad_id};
  const int32_t id = ids[role];
  return id >= 0 && id < size() ? piece(id).piece : std::string();
}

std::string SentencePieceBpe::Normalize(std::string_view text) const {
  std::string_view t = text;
  if (model_.remove_extra_whitespaces) {
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  }
  if (t.empty()) return {};
  const std::string space = model_.escape_whitespaces ? std::string(kSpaceSymbol) : std::string(" ");
  std::string out;
  out.reserve(t.size() + t.size() / 2 + 3);
  const bool prefix = model_.add_dummy_prefix && !model_.treat_whitespace_as_suffix;
  if (prefix) out += space;
  // Invalid UTF-8 becomes U+FFFD, as sentencepiece's normalizer does.
  const std::string repaired = IsValidUtf8(t) ? std::string() : RepairUtf8(t);
  if (!repaired.empty()) t = repaired;
  bool prev_space = false;
  for (char c : t) {
    if (c == ' ') {
      if (model_.remove_extra_whitespaces && prev_space) continue;
      out += space;
      prev_space = true;
    } else {
      out += c;
      prev_space = false;
    }
  }
  if (model_.add_dummy_prefix && model_.treat_whitespace_as_suffix) out += space;
  return out;
}

void SentencePieceBpe::Encode(std::string_view text, std::vector<int32_t>* out) const {
  EncodeNormalized(Normalize(text), out);
}

void SentencePieceBpe::EncodeNormalized(std::string_view text, std::vector<int32_t>* out) const {
  if (text.empty()) return;
  if (!split_at_words_) {
    EncodeChunk(text, out);
    return;
  }
  // Exact shortcut for long inputs: encode word by word (a word starts at a "▁" that follows another
  // character) and reuse the ids of repeated words.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;  // word -> range in *out
  const size_t w = kSpaceSymbol.size();
  size_t start = 0;
  for (size_t i = 1; i <= text.size(); ++i) {
    const bool boundary = i == text.size() || (text.substr(i, w) == kSpaceSymbol && i >= w &&
                                               text.substr(i - w, w) != kSpaceSymbol);
    if (!boundary) continue;
    const std::string_view word = text.substr(start, i - start);
    start = i;
    auto it = seen.find(word);
    if (it != seen.end()) {
      const auto [b, e] = it->second;
      for (size_t k = b; k < e; ++k) {
        const int32_t id = (*out)[k];  // copy first: push_back may reallocate
        out->push_back(id);
      }
      continue;
    }
    const size_t b = out->size();
    EncodeChunk(word, out);
    seen.emplace(word, std::pair{b, out->size()});
  }
}

void SentencePieceBpe::EncodeChunk(std::string_view text, std::vector<int32_t>* out) const {
  // 1. Split into characters (user-defined pieces are single atomic symbols).
  std::vector<Symbol> sym;
  sym.reserve(text.size());
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    size_t len = 0;
    bool atomic = false;
    for (std::string_view u : user_defined_) {
      if (text.substr(i, u.size()) == u) {
        len = u.size();
        atomic = true;
        break;
      }
    }
    if (len == 0) {
      ScanUtf8Char(bytes + i, text.size() - i, &len);  // Normalize() made the text valid UTF-8
      len = std::max<size_t>(len, 1);
    }
    const int idx = static_cast<int>(sym.size());
    sym.push_back(Symbol{idx - 1, idx + 1, i, len, atomic});
    i += len;
  }
  sym.back().next = -1;

  // 2. Merge the best-scoring adjacent pair until no adjacent pair forms a piece.
  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> agenda;
  auto maybe_push = [&](int left, int right) {
    if (left < 0 || right < 0 || sym[left].atomic || sym[right].atomic) return;
    const size_t len = sym[left].len + sym[right].len;
    auto it = mergeable_.find(text.substr(sym[left].begin, len));
    if (it == mergeable_.end()) return;
    agenda.push(Candidate{model_.pieces[static_cast<size_t>(it->second)].score, left, right, len});
  };
  for (size_t k = 1; k < sym.size(); ++k) maybe_push(static_cast<int>(k - 1), static_cast<int>(k));
  while (!agenda.empty()) {
    const Candidate top = agenda.top();
    agenda.pop();
    Symbol& l = sym[top.left];
    Symbol& r = sym[top.right];
    // Both lengths only grow, so an unchanged sum means neither side was merged since the push.
    if (l.len == 0 || r.len == 0 || l.len + r.len != top.len) continue;
    IDEFICS_CHECK(l.next == top.right);
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = top.left;
    maybe_push(l.prev, top.left);
    maybe_push(top.left, l.next);
  }

  // 3. Emit ids; characters outside the vocabulary become byte pieces (or one <unk> per unknown run).
  bool prev_unk = false;
  for (int k = 0; k >= 0; k = sym[k].next) {
    const std::string_view piece = text.substr(sym[k].begin, sym[k].len);
    // Only NORMAL / USER_DEFINED pieces are emitted as such (an UNUSED piece falls back like an unknown one).
    const auto it = mergeable_.find(piece);
    if (it != mergeable_.end()) {
      out->push_back(it->second);
      prev_unk = false;
    } else if (model_.byte_fallback) {
      for (char c : piece) out->push_back(byte_ids_[static_cast<uint8_t>(c)]);
      prev_unk = false;
    } else {
      if (!prev_unk) out->push_back(model_.unk_id);
      prev_unk = true;
    }
  }
}

}  // namespace idefics::tokenizer
