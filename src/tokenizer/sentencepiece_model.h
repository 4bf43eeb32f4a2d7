// Reads SentencePiece's `tokenizer.model` (a serialized sentencepiece.ModelProto) with a hand-written
// protobuf wire-format reader; mirrors the fields of sentencepiece_model.proto that encoding needs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idefics/status.h"

namespace idefics::tokenizer {

// ModelProto.SentencePiece.Type.
enum class PieceType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct SentencePiece {
  std::string piece;
  float score = 0.0f;
  PieceType type = PieceType::kNormal;
};

// The parts of ModelProto that tokenization depends on (defaults are the proto2 defaults).
struct SentencePieceModel {
  std::vector<SentencePiece> pieces;
  // TrainerSpec.
  int32_t model_type = 1;  // 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  int32_t unk_id = 0;
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  int32_t pad_id = -1;
  // NormalizerSpec.
  std::string normalizer_name;
  size_t precompiled_charsmap_size = 0;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

// Parses the serialized ModelProto in `bytes`; `name` (the file path) prefixes every error message.
StatusOr<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes, const std::string& name);

// Reads and parses the file at `path`.
StatusOr<SentencePieceModel> LoadSentencePieceModel(const std::string& path);

}  // namespace idefics::tokenizer
