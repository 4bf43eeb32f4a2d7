// The Idefics2 / Mistral text tokenizer loaded from a Hugging Face model folder: tokenizer.model
// (SentencePiece BPE) + added/special tokens from the JSON files. Mirrors transformers' LlamaTokenizer.
#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/mapped_file.h"
#include "tokenizer/hf_bpe_model.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/sentencepiece_bpe.h"

namespace idefics::tokenizer {

using nlohmann::json;

namespace {

// Reads an optional JSON object file; `*present` tells whether it existed.
StatusOr<json> ReadOptionalJson(const std::string& path, bool* present) {
  std::error_code ec;
  *present = std::filesystem::exists(path, ec);
  if (!*present) return json::object();
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(path + ": not valid JSON");
  if (!j.is_object()) return InvalidArgument(path + ": expected a JSON object at the top level");
  return j;
}

// A token spec as HF writes it: "text" or {"content": "text", "lstrip": ..., ...}.
struct TokenSpec {
  std::string content;
  std::optional<bool> lstrip, rstrip, special;
};

StatusOr<std::optional<TokenSpec>> ParseTokenSpec(const json& v, const std::string& where) {
  if (v.is_null()) return std::optional<TokenSpec>();
  TokenSpec s;
  if (v.is_string()) {
    s.content = v.get<std::string>();
    return std::optional<TokenSpec>(s);
  }
  if (!v.is_object() || !v.contains("content") || !v["content"].is_string()) {
    return InvalidArgument(where + ": expected a string or an object with a string \"content\"");
  }
  s.content = v["content"].get<std::string>();
  for (const auto& [key, field] :
       {std::pair{"lstrip", &s.lstrip}, {"rstrip", &s.rstrip}, {"special", &s.special}}) {
    auto it = v.find(key);
    if (it == v.end()) continue;
    if (!it->is_boolean()) return InvalidArgument(where + "." + key + ": expected a boolean");
    *field = it->get<bool>();
  }
  return std::optional<TokenSpec>(s);
}

}  // namespace

// Collects the token definitions of the three JSON files, then resolves ids.
class TokenizerLoader {
 public:
  TokenizerLoader(Tokenizer* t, std::string dir) : t_(t), dir_(std::move(dir)) {}

  Status Run() {
    RETURN_IF_ERROR(LoadModel());
    const SubwordModel& m = *t_->model_;
    // Defaults from the model file, overridden by the JSON files.
    for (int r = 0; r < 4; ++r) roles_[r] = m.DefaultSpecialToken(static_cast<SubwordModel::Role>(r));
    for (int r = 0; r < 3; ++r) {
      if (!roles_[r].empty()) AddLiteral(roles_[r], std::nullopt, true, false, false);
    }
    for (const AddedToken& a : m.ModelAddedTokens())
      AddLiteral(a.content, a.id, a.special, a.lstrip, a.rstrip);
    t_->add_bos_token_ = m.DefaultAddBos();
    RETURN_IF_ERROR(ReadTokenizerConfig());
    RETURN_IF_ERROR(ReadAddedTokens());
    RETURN_IF_ERROR(ReadSpecialTokensMap());
    return Resolve();
  }

 private:
  // tokenizer.model when present (what transformers' slow LlamaTokenizer reads), else tokenizer.json.
  Status LoadModel() {
    const std::string sp_path = dir_ + "/tokenizer.model";
    const std::string json_path = dir_ + "/tokenizer.json";
    std::error_code ec;
    if (std::filesystem::exists(sp_path, ec)) {
      ASSIGN_OR_RETURN(SentencePieceModel model, LoadSentencePieceModel(sp_path));
      ASSIGN_OR_RETURN(t_->model_, SentencePieceBpe::Create(std::move(model), sp_path));
      return Status::Ok();
    }
    if (std::filesystem::exists(json_path, ec)) {
      ASSIGN_OR_RETURN(t_->model_, HfBpeModel::Load(json_path));
      return Status::Ok();
    }
    return NotFound(sp_path +
                    ": no such file (a SentencePiece tokenizer.model, or a tokenizer.json, is required)");
  }

  struct Pending {
    std::optional<int32_t> id;
    bool special = true, lstrip = false, rstrip = false;
  };

  void AddLiteral(const std::string& content, std::optional<int32_t> id, bool special, bool lstrip,
                  bool rstrip) {
    if (content.empty()) return;
    auto [it, inserted] = pending_.try_emplace(content);
    if (inserted) order_.push_back(content);
    Pending& p = it->second;
    if (id) p.id = id;
    if (inserted) {
      p.special = special;
      p.lstrip = lstrip;
      p.rstrip = rstrip;
    } else {
      p.special = p.special || special;
    }
  }

  // Handles bos_token / eos_token / unk_token / pad_token / additional_special_tokens of a JSON object.
  Status ReadSpecialRoles(const json& j, const std::string& file) {
    static const char* kRoles[4] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    for (int r = 0; r < 4; ++r) {
      auto it = j.find(kRoles[r]);
      if (it == j.end()) continue;
      ASSIGN_OR_RETURN(auto spec, ParseTokenSpec(*it, file + ": " + kRoles[r]));
      roles_[r] = spec ? spec->content : std::string();
      if (spec)
        AddLiteral(spec->content, std::nullopt, true, spec->lstrip.value_or(false),
                   spec->rstrip.value_or(false));
    }
    auto it = j.find("additional_special_tokens");
    if (it != j.end() && !it->is_null()) {
      if (!it->is_array()) return InvalidArgument(file + ": additional_special_tokens: expected an array");
      t_->additional_special_tokens_.clear();  // a later file restates the whole list
      for (size_t i = 0; i < it->size(); ++i) {
        ASSIGN_OR_RETURN(auto spec, ParseTokenSpec((*it)[i], file + ": additional_special_tokens[" +
                                                                 std::to_string(i) + "]"));
        if (!spec) continue;
        AddLiteral(spec->content, std::nullopt, true, spec->lstrip.value_or(false),
                   spec->rstrip.value_or(false));
        t_->additional_special_tokens_.push_back(spec->content);
      }
    }
    return Status::Ok();
  }

  Status ReadTokenizerConfig() {
    const std::string file = dir_ + "/tokenizer_config.json";
    bool present = false;
    ASSIGN_OR_RETURN(json j, ReadOptionalJson(file, &present));
    if (!present) return Status::Ok();
    if (auto it = j.find("add_bos_token"); it != j.end()) {
      if (!it->is_boolean()) return InvalidArgument(file + ": add_bos_token: expected a boolean");
      t_->add_bos_token_ = it->get<bool>();
    }
    if (auto it = j.find("added_tokens_decoder"); it != j.end()) {
      if (!it->is_object()) return InvalidArgument(file + ": added_tokens_decoder: expected an object");
      for (const auto& [key, value] : it->items()) {
        const std::string where = file + ": added_tokens_decoder[\"" + key + "\"]";
        ASSIGN_OR_RETURN(int32_t id, ParseId(key, where));
        ASSIGN_OR_RETURN(auto spec, ParseTokenSpec(value, where));
        if (!spec) return InvalidArgument(where + ": is null");
        AddLiteral(spec->content, id, spec->special.value_or(false), spec->lstrip.value_or(false),
                   spec->rstrip.value_or(false));
      }
    }
    return ReadSpecialRoles(j, file);
  }

  Status ReadAddedTokens() {
    const std::string file = dir_ + "/added_tokens.json";
    bool present = false;
    ASSIGN_OR_RETURN(json j, ReadOptionalJson(file, &present));
    for (const auto& [content, value] : j.items()) {
      const std::string where = file + ": \"" + content + "\"";
      if (!value.is_number_integer()) return InvalidArgument(where + ": expected an integer id");
      const int64_t id = value.get<int64_t>();
      if (id < 0 || id > std::numeric_limits<int32_t>::max() / 2) {
        return InvalidArgument(where + ": id " + std::to_string(id) + " is out of range");
      }
      // added_tokens.json does not say whether a token is special; the other files do.
      AddLiteral(content, static_cast<int32_t>(id), false, false, false);
    }
    return Status::Ok();
  }

  Status ReadSpecialTokensMap() {
    const std::string file = dir_ + "/special_tokens_map.json";
    bool present = false;
    ASSIGN_OR_RETURN(json j, ReadOptionalJson(file, &present));
    return ReadSpecialRoles(j, file);
  }

  static StatusOr<int32_t> ParseId(const std::string& key, const std::string& where) {
    if (key.empty() || key.size() > 9 || key.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument(where + ": the key is not a token id");
    }
    return static_cast<int32_t>(std::stol(key));
  }

  Status Resolve() {
    const SubwordModel& m = *t_->model_;
    int32_t n = m.size();
    for (const std::string& content : order_) {
      Pending& p = pending_[content];
      if (!p.id) {
        const int32_t id = m.PieceToId(content);
        if (id < 0) {
          return InvalidArgument(
              dir_ + ": special token \"" + content +
              "\" has no id in the vocabulary, added_tokens.json or tokenizer_config.json");
        }
        p.id = id;
      }
      n = std::max(n, *p.id + 1);
    }
    t_->token_text_.assign(static_cast<size_t>(n), std::string());
    t_->decoded_bytes_.assign(static_cast<size_t>(n), std::string());
    t_->special_.assign(static_cast<size_t>(n), 0);
    for (int32_t id = 0; id < m.size(); ++id) {
      const std::string& piece = m.PieceText(id);
      const SubwordModel::TokenKind kind = m.Kind(id);
      t_->token_text_[id] = piece;
      std::string& bytes = t_->decoded_bytes_[id];
      if (kind == SubwordModel::TokenKind::kControl || kind == SubwordModel::TokenKind::kUnknown) {
        t_->special_[id] = 1;
        bytes = piece;  // written as text when special tokens are not skipped
      } else if (kind == SubwordModel::TokenKind::kByte) {
        bytes.push_back(static_cast<char>(m.ByteValue(id)));
      } else {
        for (size_t i = 0; i < piece.size(); ++i) {
          if (piece.compare(i, 3, "\xE2\x96\x81") == 0) {
            bytes.push_back(' ');
            i += 2;
          } else {
            bytes.push_back(piece[i]);
          }
        }
      }
    }
    for (const std::string& content : order_) {
      const Pending& p = pending_[content];
      const int32_t id = *p.id;
      AddedToken tok{content, id, p.special, p.lstrip, p.rstrip};
      t_->added_.push_back(tok);
      t_->matcher_.Add(tok);
      t_->added_by_text_[content] = id;
      t_->token_text_[id] = content;
      t_->decoded_bytes_[id] = content;
      t_->special_[id] = p.special ? 1 : 0;
    }
    int32_t* ids[4] = {&t_->bos_id_, &t_->eos_id_, &t_->unk_id_, &t_->pad_id_};
    std::string* texts[4] = {&t_->bos_token_, &t_->eos_token_, &t_->unk_token_, &t_->pad_token_};
    for (int r = 0; r < 4; ++r) {
      *texts[r] = roles_[r];
      *ids[r] = roles_[r].empty() ? -1 : *pending_[roles_[r]].id;
      if (*ids[r] >= 0) t_->special_[*ids[r]] = 1;
    }
    return Status::Ok();
  }

  Tokenizer* t_;
  std::string dir_;
  std::string roles_[4];  // bos, eos, unk, pad token texts
  std::unordered_map<std::string, Pending> pending_;
  std::vector<std::string> order_;
};

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& model_dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) return NotFound(model_dir + ": not a directory");
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  TokenizerLoader loader(t.get(), model_dir);
  RETURN_IF_ERROR(loader.Run());
  return t;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
  for (const TextSegment& seg : matcher_.Split(text)) {
    if (seg.token_id >= 0) {
      ids.push_back(seg.token_id);
    } else {
      model_->EncodeSegment(seg.text, seg.text.data() == text.data(), &ids);
    }
  }
  return ids;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  IncrementalDecoder dec(*this, skip_special);
  std::string out;
  for (int32_t id : ids) out += dec.Push(id);
  out += dec.Flush();
  return out;
}

int32_t Tokenizer::TokenId(std::string_view token) const {
  auto it = added_by_text_.find(std::string(token));
  if (it != added_by_text_.end()) return it->second;
  return model_->PieceToId(token);
}

std::string_view Tokenizer::IdToToken(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return token_text_[static_cast<size_t>(id)];
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[static_cast<size_t>(id)] != 0;
}

void Tokenizer::AppendTokenBytes(int32_t id, bool skip_special, std::string* out) const {
  if (id < 0 || id >= vocab_size()) return;
  if (skip_special && special_[static_cast<size_t>(id)]) return;
  out->append(decoded_bytes_[static_cast<size_t>(id)]);
}

}  // namespace idefics::tokenizer
