// A Hugging Face tokenizer.json BPE model of the Llama/Mistral kind (SentencePiece-style "▁" pieces, byte
// fallback), used when a folder has no tokenizer.model. Mirrors tokenizers' BPE model + the Prepend/Replace
// normalizers and the Metaspace pre-tokenizer; byte-level (GPT-2 style) vocabularies are rejected.
#include "tokenizer/hf_bpe_model.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <queue>

#include "core/mapped_file.h"
#include "tokenizer/utf8.h"

namespace idefics::tokenizer {

using nlohmann::json;

namespace {

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  if (from.empty()) return s;
  std::string out;
  size_t start = 0;
  for (size_t k = s.find(from); k != std::string::npos; k = s.find(from, start)) {
    out.append(s, start, k - start).append(to);
    start = k + from.size();
  }
  return out.append(s, start, std::string::npos);
}

// Returns the string member `key` of `j`, or "" when absent / not a string.
std::string StringField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool BoolField(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

}  // namespace

StatusOr<std::unique_ptr<HfBpeModel>> HfBpeModel::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, 256u << 20));
  return Parse(text, path);
}

StatusOr<std::unique_ptr<HfBpeModel>> HfBpeModel::Parse(std::string_view json_text, const std::string& name) {
  const json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(name + ": not a valid JSON object");
  std::unique_ptr<HfBpeModel> m(new HfBpeModel());
  auto err = [&](const std::string& what) { return InvalidArgument(name + ": " + what); };
  auto unsupported = [&](const std::string& what) { return Unimplemented(name + ": unsupported " + what); };

  // model
  auto mit = j.find("model");
  if (mit == j.end() || !mit->is_object()) return err("missing \"model\" object");
  const json& model = *mit;
  if (StringField(model, "type") != "BPE")
    return unsupported("model type \"" + StringField(model, "type") + "\" (only BPE)");
  if (!StringField(model, "continuing_subword_prefix").empty() ||
      !StringField(model, "end_of_word_suffix").empty()) {
    return unsupported("BPE continuing_subword_prefix / end_of_word_suffix");
  }
  m->byte_fallback_ = BoolField(model, "byte_fallback", false);
  m->fuse_unk_ = BoolField(model, "fuse_unk", false);
  m->ignore_merges_ = BoolField(model, "ignore_merges", false);
  m->unk_token_ = StringField(model, "unk_token");
  auto vit = model.find("vocab");
  if (vit == model.end() || !vit->is_object() || vit->empty())
    return err("model.vocab must be a non-empty object");
  int64_t max_id = -1;
  for (const auto& [piece, id] : vit->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24)) {
      return err("model.vocab[\"" + piece + "\"] is not a valid token id");
    }
    max_id = std::max(max_id, id.get<int64_t>());
  }
  m->pieces_.assign(static_cast<size_t>(max_id + 1), std::string());
  m->kinds_.assign(m->pieces_.size(), TokenKind::kNormal);
  m->byte_value_.assign(m->pieces_.size(), -1);
  std::fill(std::begin(m->byte_ids_), std::end(m->byte_ids_), -1);
  for (const auto& [piece, id_json] : vit->items()) {
    const auto id = static_cast<int32_t>(id_json.get<int64_t>());
    if (!m->pieces_[id].empty()) return err("model.vocab has token id " + std::to_string(id) + " twice");
    m->pieces_[id] = piece;
    m->vocab_.emplace(piece, id);
    unsigned v = 0;
    char tail = 0;
    if (m->byte_fallback_ && piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%2X>%c", &v, &tail) == 1 &&
        v < 256) {
      m->kinds_[id] = TokenKind::kByte;
      m->byte_value_[id] = static_cast<int>(v);
      m->byte_ids_[v] = id;
    }
  }
  if (!m->unk_token_.empty()) {
    m->unk_id_ = m->PieceToId(m->unk_token_);
    if (m->unk_id_ < 0) return err("model.unk_token \"" + m->unk_token_ + "\" is not in the vocabulary");
    m->kinds_[m->unk_id_] = TokenKind::kUnknown;
  }
  auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array()) return err("model.merges must be an array");
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    const json& e = (*merges)[rank];
    std::string left, right;
    if (e.is_string()) {  // "a b"
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        return err("model.merges[" + std::to_string(rank) + "] is not \"left right\"");
      }
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"]
      left = e[0].get<std::string>();
      right = e[1].get<std::string>();
    } else {
      return err("model.merges[" + std::to_string(rank) + "] is neither \"a b\" nor [\"a\", \"b\"]");
    }
    const int32_t a = m->PieceToId(left), b = m->PieceToId(right), c = m->PieceToId(left + right);
    if (a < 0 || b < 0 || c < 0) {
      return err("model.merges[" + std::to_string(rank) + "] uses a token that is not in the vocabulary");
    }
    m->merges_.try_emplace(PairKey(a, b), MergeInfo{static_cast<int32_t>(rank), c});
  }

  // normalizer: null, Prepend, Replace (string pattern) or a Sequence of them.
  std::vector<const json*> norms;
  if (auto it = j.find("normalizer"); it != j.end() && !it->is_null()) {
    if (StringField(*it, "type") == "Sequence" && it->contains("normalizers") &&
        (*it)["normalizers"].is_array()) {
      for (const json& n : (*it)["normalizers"]) norms.push_back(&n);
    } else {
      norms.push_back(&*it);
    }
  }
  for (const json* n : norms) {
    const std::string type = n->is_object() ? StringField(*n, "type") : std::string();
    if (type == "Prepend") {
      m->normalizer_.push_back({NormalizerOp::kPrepend, StringField(*n, "prepend"), ""});
    } else if (type == "Replace" && n->contains("pattern") && (*n)["pattern"].is_object() &&
               (*n)["pattern"].contains("String")) {
      m->normalizer_.push_back(
          {NormalizerOp::kReplace, StringField((*n)["pattern"], "String"), StringField(*n, "content")});
    } else {
      return unsupported("normalizer \"" + type + "\"");
    }
  }

  // pre_tokenizer: null or Metaspace.
  if (auto it = j.find("pre_tokenizer"); it != j.end() && !it->is_null()) {
    const std::string type = it->is_object() ? StringField(*it, "type") : std::string();
    if (type != "Metaspace") return unsupported("pre_tokenizer \"" + type + "\"");
    m->metaspace_ = true;
    m->metaspace_replacement_ = StringField(*it, "replacement");
    if (m->metaspace_replacement_.empty()) m->metaspace_replacement_ = "\xE2\x96\x81";
    m->metaspace_prepend_ = StringField(*it, "prepend_scheme");
    if (m->metaspace_prepend_.empty())
      m->metaspace_prepend_ = BoolField(*it, "add_prefix_space", true) ? "always" : "never";
    m->metaspace_split_ = BoolField(*it, "split", true);
  }

  // added_tokens
  if (auto it = j.find("added_tokens"); it != j.end() && it->is_array()) {
    for (const json& a : *it) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string() || a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() > (1 << 24)) {
        return err("added_tokens entries need an integer \"id\" and a string \"content\"");
      }
      AddedToken t{a["content"].get<std::string>(), static_cast<int32_t>(a["id"].get<int64_t>()),
                   BoolField(a, "special", false), BoolField(a, "lstrip", false),
                   BoolField(a, "rstrip", false)};
      if (t.special && t.id < m->size() && m->kinds_[t.id] == TokenKind::kNormal)
        m->kinds_[t.id] = TokenKind::kControl;
      m->added_.push_back(std::move(t));
    }
  }

  // post_processor: the special token TemplateProcessing puts before $A is the BOS.
  if (auto it = j.find("post_processor"); it != j.end() && it->is_object()) {
    auto single = it->find("single");
    if (single != it->end() && single->is_array() && !single->empty() && (*single)[0].is_object() &&
        (*single)[0].contains("SpecialToken") && (*single)[0]["SpecialToken"].is_object()) {
      m->bos_token_ = StringField((*single)[0]["SpecialToken"], "id");
    }
  }
  return m;
}

int32_t HfBpeModel::PieceToId(std::string_view piece) const {
  auto it = vocab_.find(std::string(piece));
  return it == vocab_.end() ? -1 : it->second;
}

std::string HfBpeModel::DefaultSpecialToken(Role role) const {
  if (role == kBos) return bos_token_;
  if (role == kUnk) return unk_token_;
  return {};
}

void HfBpeModel::EncodeSegment(std::string_view text, bool at_input_start, std::vector<int32_t>* out) const {
  if (text.empty()) return;
  std::string s(text);
  for (const NormalizerOp& op : normalizer_) {
    if (op.type == NormalizerOp::kPrepend) {
      if (!s.empty()) s = op.a + s;
    } else {
      s = ReplaceAll(std::move(s), op.a, op.b);
    }
  }
  if (!metaspace_) {
    MergeWord(s, out);
    return;
  }
  const std::string& rep = metaspace_replacement_;
  s = ReplaceAll(std::move(s), " ", rep);
  const bool prepend = metaspace_prepend_ == "always" || (metaspace_prepend_ == "first" && at_input_start);
  if (prepend && s.compare(0, rep.size(), rep) != 0) s = rep + s;
  if (!metaspace_split_) {
    MergeWord(s, out);
    return;
  }
  // Split before every replacement character (each word keeps its leading "▁").
  size_t start = 0;
  for (size_t k = s.find(rep, 1); k != std::string::npos; k = s.find(rep, k + rep.size())) {
    MergeWord(std::string_view(s).substr(start, k - start), out);
    start = k;
  }
  MergeWord(std::string_view(s).substr(start), out);
}

void HfBpeModel::MergeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const int32_t whole = PieceToId(word);
    if (whole >= 0) {
      out->push_back(whole);
      return;
    }
  }
  struct Symbol {
    int32_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Symbol> sym;
  const std::string w(word);  // valid UTF-8 is not guaranteed: scan with the repair rules
  const auto* p = reinterpret_cast<const uint8_t*>(w.data());
  bool prev_unk = false;
  for (size_t i = 0; i < w.size();) {
    size_t len = 0;
    ScanUtf8Char(p + i, w.size() - i, &len);
    len = std::max<size_t>(len, 1);
    const std::string ch = w.substr(i, len);
    i += len;
    const int32_t id = PieceToId(ch);
    std::vector<int32_t> ids;
    if (id >= 0) {
      ids.push_back(id);
      prev_unk = false;
    } else if (byte_fallback_ && std::all_of(ch.begin(), ch.end(), [&](char c) {
                 return byte_ids_[static_cast<uint8_t>(c)] >= 0;
               })) {
      for (char c : ch) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
      prev_unk = false;
    } else if (unk_id_ >= 0) {
      if (fuse_unk_ && prev_unk) continue;  // consecutive unknowns become one <unk>
      ids.push_back(unk_id_);
      prev_unk = true;
    } else {
      continue;  // no way to represent the character: dropped (tokenizers would fail)
    }
    for (int32_t x : ids) {
      const int idx = static_cast<int>(sym.size());
      sym.push_back(Symbol{x, idx - 1, idx + 1, true});
    }
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  struct Candidate {
    int32_t rank;
    int pos;
    int32_t new_id;
  };
  // Lowest rank first, then leftmost (tokenizers' Word::merge_all order).
  auto worse = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> agenda(worse);
  auto push = [&](int left) {
    if (left < 0 || sym[left].next < 0) return;
    auto it = merges_.find(PairKey(sym[left].id, sym[sym[left].next].id));
    if (it != merges_.end()) agenda.push(Candidate{it->second.rank, left, it->second.new_id});
  };
  for (int k = 0; k < static_cast<int>(sym.size()); ++k) push(k);
  while (!agenda.empty()) {
    const Candidate c = agenda.top();
    agenda.pop();
    Symbol& l = sym[c.pos];
    if (!l.alive || l.next < 0) continue;
    auto it = merges_.find(PairKey(l.id, sym[l.next].id));
    if (it == merges_.end() || it->second.rank != c.rank || it->second.new_id != c.new_id) continue;  // stale
    Symbol& r = sym[l.next];
    l.id = c.new_id;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.pos;
    push(l.prev);
    push(c.pos);
  }
  for (int k = 0; k >= 0; k = sym[k].next) out->push_back(sym[k].id);
}

}  // namespace idefics::tokenizer
