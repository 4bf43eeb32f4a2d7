// A Hugging Face tokenizer.json BPE model of the Llama/Mistral kind (SentencePiece-style "▁" pieces, byte
// fallback), used when a folder has no tokenizer.model. Mirrors tokenizers' BPE model + the Prepend/Replace
// normalizers and the Metaspace pre-tokenizer; byte-level (GPT-2 style) vocabularies are rejected.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "idefics/status.h"
#include "tokenizer/subword_model.h"

namespace idefics::tokenizer {

class HfBpeModel : public SubwordModel {
 public:
  // Reads `path` (a tokenizer.json); errors name the file and the unsupported component.
  static StatusOr<std::unique_ptr<HfBpeModel>> Load(const std::string& path);
  // Same, from the file's text.
  static StatusOr<std::unique_ptr<HfBpeModel>> Parse(std::string_view json_text, const std::string& name);

  int32_t size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t PieceToId(std::string_view piece) const override;
  const std::string& PieceText(int32_t id) const override { return pieces_[static_cast<size_t>(id)]; }
  TokenKind Kind(int32_t id) const override { return kinds_[static_cast<size_t>(id)]; }
  int ByteValue(int32_t id) const override { return byte_value_[static_cast<size_t>(id)]; }
  void EncodeSegment(std::string_view text, bool at_input_start, std::vector<int32_t>* out) const override;
  std::string DefaultSpecialToken(Role role) const override;
  std::vector<AddedToken> ModelAddedTokens() const override { return added_; }
  bool DefaultAddBos() const override { return !bos_token_.empty(); }

 private:
  HfBpeModel() = default;
  struct NormalizerOp {
    enum Type { kPrepend, kReplace } type;
    std::string a, b;  // prepend: a; replace: a -> b
  };
  struct MergeInfo {
    int32_t rank;
    int32_t new_id;
  };

  void MergeWord(std::string_view word, std::vector<int32_t>* out) const;

  std::vector<std::string> pieces_;
  std::vector<TokenKind> kinds_;
  std::vector<int> byte_value_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, MergeInfo> merges_;  // (left id << 32 | right id) -> rank, merged id
  int32_t byte_ids_[256];
  int32_t unk_id_ = -1;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  std::vector<NormalizerOp> normalizer_;
  // Metaspace pre-tokenizer (absent when metaspace_ is false).
  bool metaspace_ = false;
  std::string metaspace_replacement_;
  std::string metaspace_prepend_;  // "always", "first" or "never"
  bool metaspace_split_ = false;
  std::vector<AddedToken> added_;
  std::string bos_token_, unk_token_;
};

}  // namespace idefics::tokenizer
