// SentencePiece BPE encoder over one text segment: normalization (dummy prefix, spaces -> "▁") then greedy
// merging by piece score, byte fallback for unknown characters. Mirrors sentencepiece's bpe::Model::Encode.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "idefics/status.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/subword_model.h"

namespace idefics::tokenizer {

class SentencePieceBpe : public SubwordModel {
 public:
  // Validates the model (BPE type, no unsupported normalizer) and builds the piece indexes.
  static StatusOr<std::unique_ptr<SentencePieceBpe>> Create(SentencePieceModel model,
                                                            const std::string& name);

  // Normalizes `text` like sentencepiece's Normalizer with the model's NormalizerSpec ("" stays "").
  std::string Normalize(std::string_view text) const;

  // Appends the ids of Normalize(text) to `out`. `text` must not contain special tokens to be matched; those
  // are split off by the caller (Tokenizer).
  void Encode(std::string_view text, std::vector<int32_t>* out) const;

  // Appends the ids of an already normalized string.
  void EncodeNormalized(std::string_view normalized, std::vector<int32_t>* out) const;

  // EncodeNormalized without the word-by-word shortcut: one BPE over the whole string (the reference the
  // shortcut must equal; tests compare the two).
  void EncodeChunk(std::string_view normalized, std::vector<int32_t>* out) const;

  // SubwordModel.
  int32_t size() const override { return static_cast<int32_t>(model_.pieces.size()); }
  int32_t PieceToId(std::string_view piece) const override;
  const std::string& PieceText(int32_t id) const override { return piece(id).piece; }
  TokenKind Kind(int32_t id) const override;
  int ByteValue(int32_t id) const override { return byte_value_[static_cast<size_t>(id)]; }
  void EncodeSegment(std::string_view text, bool, std::vector<int32_t>* out) const override {
    Encode(text, out);
  }
  std::string DefaultSpecialToken(Role role) const override;

  // Requires 0 <= id < size().
  const SentencePiece& piece(int32_t id) const { return model_.pieces[static_cast<size_t>(id)]; }
  const SentencePieceModel& model() const { return model_; }

 private:
  explicit SentencePieceBpe(SentencePieceModel model) : model_(std::move(model)) {}

  SentencePieceModel model_;
  // Pieces that merges may produce (NORMAL, USER_DEFINED), keyed by views into model_.pieces.
  std::unordered_map<std::string_view, int32_t> mergeable_;
  // Every piece, first occurrence wins.
  std::unordered_map<std::string_view, int32_t> all_;
  std::vector<std::string_view> user_defined_;  // matched as atomic symbols before merging
  std::vector<int> byte_value_;
  // True when no piece has "▁" right after another character, except after "▁" itself: then no merge can
  // cross the boundary before a word-initial "▁", and words can be encoded independently (and cached).
  bool split_at_words_ = false;
  int32_t byte_ids_[256];
};

}  // namespace idefics::tokenizer
