// Reads SentencePiece's `tokenizer.model` (a serialized sentencepiece.ModelProto) with a hand-written
// protobuf wire-format reader; mirrors the fields of sentencepiece_model.proto that encoding needs.
#include "tokenizer/sentencepiece_model.h"

#include <cstring>
#include <filesystem>

#include "core/mapped_file.h"

namespace idefics::tokenizer {
namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One protobuf field as read from the wire. Groups (wire types 3/4) are rejected: ModelProto has none.
struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t varint = 0;     // kVarint, kFixed32, kFixed64
  std::string_view data;   // kLengthDelimited
  size_t data_offset = 0;  // kLengthDelimited: file offset of `data`
  size_t end_offset = 0;   // file offset just past the field (where errors about it point)
};

// Sequential reader over one message's bytes; offsets in errors are relative to the whole file.
class WireReader {
 public:
  WireReader(std::string_view bytes, size_t base_offset) : bytes_(bytes), base_(base_offset) {}

  bool done() const { return pos_ >= bytes_.size(); }
  size_t offset() const { return base_ + pos_; }

  // Reads the next field (all but end_offset, which is offset() afterwards).
  Status Next(Field* f) {
    uint64_t key = 0;
    const size_t field_start = offset();
    RETURN_IF_ERROR(ReadVarint(&key));
    f->number = static_cast<uint32_t>(key >> 3);
    f->wire_type = static_cast<uint32_t>(key & 7);
    if (f->number == 0) return Error(field_start, "field number 0");
    switch (f->wire_type) {
      case kVarint:
        return ReadVarint(&f->varint);
      case kFixed32:
        return ReadFixed(4, &f->varint);
      case kFixed64:
        return ReadFixed(8, &f->varint);
      case kLengthDelimited: {
        uint64_t len = 0;
        RETURN_IF_ERROR(ReadVarint(&len));
        if (len > bytes_.size() - pos_) return Error(offset(), "length-delimited field runs past the end");
        f->data_offset = offset();
        f->data = bytes_.substr(pos_, len);
        pos_ += len;
        return Status::Ok();
      }
      default:
        return Error(field_start, "unsupported wire type " + std::to_string(f->wire_type));
    }
  }

 private:
  Status ReadVarint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) return Error(offset(), "truncated varint");
      const uint8_t b = static_cast<uint8_t>(bytes_[pos_++]);
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (b < 0x80) return Status::Ok();
    }
    return Error(offset(), "varint longer than 10 bytes");
  }
  Status ReadFixed(size_t n, uint64_t* v) {
    if (bytes_.size() - pos_ < n) return Error(offset(), "truncated fixed-width field");
    *v = 0;
    for (size_t i = 0; i < n; ++i)
      *v |= static_cast<uint64_t>(static_cast<uint8_t>(bytes_[pos_ + i])) << (8 * i);
    pos_ += n;
    return Status::Ok();
  }
  static Status Error(size_t at, const std::string& what) {
    return InvalidArgument("corrupt protobuf at byte offset " + std::to_string(at) + ": " + what);
  }

  std::string_view bytes_;
  size_t base_;
  size_t pos_ = 0;
};

// Calls fn(field) -> Status for each field of the message in `bytes` (at file offset `base`), in wire order,
// stopping at the first error.
template <typename Fn>
Status ForEachField(std::string_view bytes, size_t base, Fn&& fn) {
  WireReader r(bytes, base);
  while (!r.done()) {
    Field f;
    RETURN_IF_ERROR(r.Next(&f));
    f.end_offset = r.offset();
    RETURN_IF_ERROR(fn(f));
  }
  return Status::Ok();
}

float AsFloat(uint64_t bits32) {
  const uint32_t u = static_cast<uint32_t>(bits32);
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

Status ExpectWire(const Field& f, uint32_t wire, const char* field_name) {
  if (f.wire_type == wire) return Status::Ok();
  return InvalidArgument(std::string("field ") + field_name + " has wire type " +
                         std::to_string(f.wire_type) + ", expected " + std::to_string(wire) +
                         " (near byte offset " + std::to_string(f.end_offset) + ")");
}

Status ParsePiece(std::string_view bytes, size_t base, SentencePiece* p) {
  return ForEachField(bytes, base, [&](const Field& f) -> Status {
    switch (f.number) {
      case 1:
        RETURN_IF_ERROR(ExpectWire(f, kLengthDelimited, "SentencePiece.piece"));
        p->piece.assign(f.data);
        break;
      case 2:
        RETURN_IF_ERROR(ExpectWire(f, kFixed32, "SentencePiece.score"));
        p->score = AsFloat(f.varint);
        break;
      case 3:
        RETURN_IF_ERROR(ExpectWire(f, kVarint, "SentencePiece.type"));
        if (f.varint < 1 || f.varint > 6) {
          return InvalidArgument("SentencePiece.type " + std::to_string(f.varint) +
                                 " is not a known piece type");
        }
        p->type = static_cast<PieceType>(f.varint);
        break;
      default:
        break;  // unknown fields are skipped, as protobuf does
    }
    return Status::Ok();
  });
}

Status ParseTrainerSpec(std::string_view bytes, size_t base, SentencePieceModel* m) {
  return ForEachField(bytes, base, [&](const Field& f) -> Status {
    if (f.wire_type != kVarint) return Status::Ok();  // only scalar options matter here
    const auto i32 = static_cast<int32_t>(static_cast<uint32_t>(f.varint));  // int32 -1 is a 10-byte varint
    switch (f.number) {
      case 3:
        m->model_type = i32;
        break;
      case 24:
        m->treat_whitespace_as_suffix = f.varint != 0;
        break;
      case 35:
        m->byte_fallback = f.varint != 0;
        break;
      case 40:
        m->unk_id = i32;
        break;
      case 41:
        m->bos_id = i32;
        break;
      case 42:
        m->eos_id = i32;
        break;
      case 43:
        m->pad_id = i32;
        break;
      default:
        break;
    }
    return Status::Ok();
  });
}

Status ParseNormalizerSpec(std::string_view bytes, size_t base, SentencePieceModel* m) {
  return ForEachField(bytes, base, [&](const Field& f) -> Status {
    switch (f.number) {
      case 1:
        RETURN_IF_ERROR(ExpectWire(f, kLengthDelimited, "NormalizerSpec.name"));
        m->normalizer_name.assign(f.data);
        break;
      case 2:
        RETURN_IF_ERROR(ExpectWire(f, kLengthDelimited, "NormalizerSpec.precompiled_charsmap"));
        m->precompiled_charsmap_size = f.data.size();
        break;
      case 3:
        m->add_dummy_prefix = f.varint != 0;
        break;
      case 4:
        m->remove_extra_whitespaces = f.varint != 0;
        break;
      case 5:
        m->escape_whitespaces = f.varint != 0;
        break;
      default:
        break;
    }
    return Status::Ok();
  });
}

}  // namespace

StatusOr<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes, const std::string& name) {
  SentencePieceModel m;
  const Status st = ForEachField(bytes, 0, [&](const Field& f) -> Status {
    const bool nested = f.number >= 1 && f.number <= 3;
    if (nested) RETURN_IF_ERROR(ExpectWire(f, kLengthDelimited, "ModelProto submessage"));
    if (f.number == 1) {
      SentencePiece p;
      const Status ps = ParsePiece(f.data, f.data_offset, &p);
      if (!ps.ok()) return ps.WithContext("piece " + std::to_string(m.pieces.size()));
      m.pieces.push_back(std::move(p));
    } else if (f.number == 2) {
      RETURN_IF_ERROR(ParseTrainerSpec(f.data, f.data_offset, &m).WithContext("trainer_spec"));
    } else if (f.number == 3) {
      RETURN_IF_ERROR(ParseNormalizerSpec(f.data, f.data_offset, &m).WithContext("normalizer_spec"));
    }
    return Status::Ok();
  });
  if (!st.ok()) return st.WithContext(name);
  if (m.pieces.empty()) return InvalidArgument(name + ": not a SentencePiece model (no pieces)");
  const auto n = static_cast<int32_t>(m.pieces.size());
  for (const auto& [id, what] :
       {std::pair{m.unk_id, "unk_id"}, {m.bos_id, "bos_id"}, {m.eos_id, "eos_id"}, {m.pad_id, "pad_id"}}) {
    if (id >= n || id < -1) {
      return InvalidArgument(name + ": trainer_spec." + what + " = " + std::to_string(id) +
                             " is outside the " + std::to_string(n) + " pieces");
    }
  }
  return m;
}

StatusOr<SentencePieceModel> LoadSentencePieceModel(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFound(path + ": no such file");
  ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  return ParseSentencePieceModel(std::string_view(reinterpret_cast<const char*>(file->data()), file->size()),
                                 path);
}

}  // namespace idefics::tokenizer
