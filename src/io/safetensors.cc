// safetensors reading (strictly validated, mmapped) and writing (atomic).
#include "io/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/interrupt.h"
#include "core/output_file.h"

namespace idefics {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

using json = nlohmann::json;

bool MulOverflow(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

std::string TensorInfo::ShapeString() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(path));
  const size_t size = mapped->size();
  if (size < 8) {
    return InvalidArgument(path + ": truncated safetensors file (" + std::to_string(size) +
                           " bytes, need at least the 8-byte header length)");
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, mapped->data(), 8);  // little-endian host assumed (x86-64, aarch64)
  if (header_len > kMaxHeaderBytes) {
    return InvalidArgument(path + ": header length " + std::to_string(header_len) +
                           " exceeds the 100 MiB limit (not a safetensors file?)");
  }
  if (header_len > size - 8) {
    return InvalidArgument(path + ": header length " + std::to_string(header_len) + " runs past the end of the " +
                           std::to_string(size) + "-byte file (truncated?)");
  }
  const char* hdr = reinterpret_cast<const char*>(mapped->data() + 8);
  // JSON keeps the last of two equal keys; a header naming a tensor twice is malformed, so say so (the
  // callback sees every top-level key as it is parsed).
  std::set<std::string> keys;
  std::string duplicate;
  const json::parser_callback_t note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !keys.insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json j = json::parse(hdr, hdr + header_len, note_keys, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(path + ": header is not valid JSON");
  if (!duplicate.empty())
    return InvalidArgument(path + ": the header names tensor '" + duplicate + "' twice");
  if (!j.is_object()) return InvalidArgument(path + ": header is not a JSON object");

  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return InvalidArgument(path + ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return InvalidArgument(path + ": __metadata__ value '" + m.key() + "' is not a string");
        f->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    if (!v.is_object()) return InvalidArgument(where + ": entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) return InvalidArgument(where + ": missing string 'dtype'");
    if (!v.contains("shape") || !v["shape"].is_array()) return InvalidArgument(where + ": missing array 'shape'");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      return InvalidArgument(where + ": 'data_offsets' must be an array of two integers");
    TensorInfo t;
    t.name = name;
    t.file = path;
    const std::string dt = v["dtype"].get<std::string>();
    auto dtype = DTypeFromName(dt);
    if (!dtype) return InvalidArgument(where + ": unknown dtype '" + dt + "'");
    t.dtype = *dtype;
    uint64_t numel = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        return InvalidArgument(where + ": shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (MulOverflow(numel, dim, &numel)) return InvalidArgument(where + ": shape overflows");
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const json& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      return InvalidArgument(where + ": data_offsets must be non-negative integers");
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end) return InvalidArgument(where + ": data_offsets begin " + std::to_string(begin) + " > end " +
                                            std::to_string(end));
    if (end > data_size)
      return InvalidArgument(where + ": data_offsets end " + std::to_string(end) + " is past the data section (" +
                             std::to_string(data_size) + " bytes; file truncated?)");
    uint64_t expect = 0;
    if (MulOverflow(numel, DTypeSize(t.dtype), &expect)) return InvalidArgument(where + ": byte size overflows");
    if (end - begin != expect)
      return InvalidArgument(where + ": holds " + std::to_string(end - begin) + " bytes but shape " +
                             t.ShapeString() + " of " + dt + " needs " + std::to_string(expect));
    t.nbytes = end - begin;
    t.file_offset = data_start + begin;
    t.data = mapped->data() + data_start + begin;
    f->tensors_.push_back(std::move(t));
  }
  // No two tensors may share bytes.
  std::vector<const TensorInfo*> order;
  for (const auto& t : f->tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->file_offset < b->file_offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorInfo* a = order[i - 1];
    const TensorInfo* b = order[i];
    if (a->nbytes > 0 && b->nbytes > 0 && a->file_offset + a->nbytes > b->file_offset)
      return InvalidArgument(path + ": tensors '" + a->name + "' and '" + b->name + "' overlap (byte offset " +
                             std::to_string(b->file_offset - data_start) + ")");
  }
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->by_name_[f->tensors_[i].name] = i;
  f->file_ = std::move(mapped);
  return f;
}

const TensorInfo* SafetensorsFile::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

StatusOr<std::unique_ptr<TensorStore>> TensorStore::OpenFiles(const std::vector<std::string>& paths) {
  std::unique_ptr<TensorStore> s(new TensorStore());
  for (const std::string& p : paths) {
    ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(p));
    for (const TensorInfo& t : f->tensors()) {
      if (!s->by_name_.emplace(t.name, &t).second)
        return InvalidArgument(p + ": tensor '" + t.name + "' also appears in " + s->by_name_[t.name]->file);
    }
    s->files_.push_back(std::move(f));
  }
  return s;
}

StatusOr<std::unique_ptr<TensorStore>> TensorStore::OpenFolder(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  const std::string single_path = (fs::path(dir) / "model.safetensors").string();
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    ASSIGN_OR_RETURN(std::string text, ReadTextFile(index_path));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return InvalidArgument(index_path + ": not a JSON object");
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      return InvalidArgument(index_path + ": missing object 'weight_map'");
    std::map<std::string, std::vector<std::string>> by_shard;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        return InvalidArgument(index_path + ": weight_map['" + it.key() + "'] is not a file name");
      const std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard == ".." || shard.empty())
        return InvalidArgument(index_path + ": weight_map['" + it.key() + "'] names '" + shard +
                               "', which is not a file in the folder");
      by_shard[shard].push_back(it.key());
    }
    std::vector<std::string> paths;
    for (const auto& [shard, names] : by_shard) {
      const std::string p = (fs::path(dir) / shard).string();
      if (!fs::exists(p, ec))
        return NotFound(p + ": shard named by " + index_path + " is missing (holds '" + names.front() + "' and " +
                        std::to_string(names.size() - 1) + " more tensors)");
      paths.push_back(p);
    }
    ASSIGN_OR_RETURN(auto store, OpenFiles(paths));
    for (const auto& [shard, names] : by_shard) {
      for (const std::string& n : names) {
        const TensorInfo* t = store->Find(n);
        if (!t) return InvalidArgument(index_path + ": tensor '" + n + "' is mapped to " + shard + " but not in it");
        if (fs::path(t->file).filename() != shard)
          return InvalidArgument(index_path + ": tensor '" + n + "' is mapped to " + shard + " but found in " +
                                 t->file);
      }
    }
    return store;
  }
  if (fs::exists(single_path, ec)) return OpenFiles({single_path});
  return NotFound(dir + ": no model.safetensors or model.safetensors.index.json");
}

const TensorInfo* TensorStore::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<const TensorInfo*> TensorStore::All() const {
  std::vector<const TensorInfo*> v;
  for (const auto& [n, t] : by_name_) v.push_back(t);
  return v;
}

StatusOr<std::vector<float>> ReadAsF32(const TensorInfo& t) {
  if (!IsFloat(t.dtype))
    return InvalidArgument(t.file + ": tensor '" + t.name + "' has dtype " + std::string(DTypeName(t.dtype)) +
                           ", expected a float type");
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ConvertToF32(t.dtype, t.data, out.data(), out.size());
  return out;
}

StatusOr<std::vector<int64_t>> ReadAsI64(const TensorInfo& t) {
  std::vector<int64_t> out(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* p = t.data + i * DTypeSize(t.dtype);
    switch (t.dtype) {
      case DType::kI64: { int64_t v; std::memcpy(&v, p, 8); out[i] = v; break; }
      case DType::kU64: { uint64_t v; std::memcpy(&v, p, 8); out[i] = static_cast<int64_t>(v); break; }
      case DType::kI32: { int32_t v; std::memcpy(&v, p, 4); out[i] = v; break; }
      case DType::kU32: { uint32_t v; std::memcpy(&v, p, 4); out[i] = v; break; }
      case DType::kI16: { int16_t v; std::memcpy(&v, p, 2); out[i] = v; break; }
      case DType::kU16: { uint16_t v; std::memcpy(&v, p, 2); out[i] = v; break; }
      case DType::kI8: out[i] = static_cast<int8_t>(*p); break;
      case DType::kU8: case DType::kBool: out[i] = *p; break;
      default:
        return InvalidArgument(t.file + ": tensor '" + t.name + "' has dtype " + std::string(DTypeName(t.dtype)) +
                               ", expected an integer type");
    }
  }
  return out;
}

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const TensorToWrite& t : tensors) {
    uint64_t n = DTypeSize(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    header[t.name] = {{"dtype", std::string(DTypeName(t.dtype))}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + n}}};
    sizes.push_back(n);
    offset += n;
  }
  // Spaces pad the header (as the reference writer pads it to 8) so the data starts on a 64-byte boundary:
  // a matrix whose offset is a multiple of 64 then has cache-line-aligned rows when mapped.
  std::string h = header.dump();
  while ((8 + h.size()) % 64) h.push_back(' ');
  ASSIGN_OR_RETURN(std::unique_ptr<OutputFile> out, OutputFile::Open(path));
  std::FILE* f = out->file();
  const uint64_t hl = h.size();
  if (std::fwrite(&hl, 8, 1, f) != 1 || std::fwrite(h.data(), 1, h.size(), f) != h.size())
    return IoError(path + ": write failed");
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < tensors.size(); ++i) {
    // Stopping here leaves nothing behind: OutputFile removes its temporary file.
    if (InterruptRequested()) return Cancelled(path + ": interrupted");
    const TensorToWrite& t = tensors[i];
    const void* src = t.data;
    if (!src) {
      if (!t.fill) return InternalError("tensor '" + t.name + "' has neither data nor fill");
      buf.assign(sizes[i], 0);
      RETURN_IF_ERROR(t.fill(buf.data(), buf.size()));
      src = buf.data();
    }
    if (sizes[i] && std::fwrite(src, 1, sizes[i], f) != sizes[i]) return IoError(path + ": write failed");
  }
  RETURN_IF_ERROR(out->Commit());
  return Status::Ok();
}

}  // namespace idefics
