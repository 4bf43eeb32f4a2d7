// safetensors files: strict header validation, memory-mapped tensor data, sharded checkpoints
// (model.safetensors.index.json), and an atomic writer. Mirrors the format of huggingface/safetensors.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "idefics/status.h"
#include "tensor/dtype.h"

namespace idefics {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // points into the mmapped file
  uint64_t nbytes = 0;
  uint64_t file_offset = 0;       // absolute byte offset of the data in its file
  std::string file;               // path of the file holding it

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  std::string ShapeString() const;  // "[1152, 3, 14, 14]"
};

// One .safetensors file. Validation: header length within the file and <= 100 MiB, valid JSON object,
// known dtypes, non-negative shapes, offsets inside the data section, byte size = numel x dtype size,
// no two tensors overlapping. Errors name the file, the tensor and the offending value.
class SafetensorsFile {
 public:
  static StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* Find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::unique_ptr<MappedFile> file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a model folder: `model.safetensors`, or shards listed in `model.safetensors.index.json`
// (every shard named by the weight map must exist and hold the tensors mapped to it).
class TensorStore {
 public:
  static StatusOr<std::unique_ptr<TensorStore>> OpenFolder(const std::string& dir);
  // A single file or an explicit list of files (tests, tools).
  static StatusOr<std::unique_ptr<TensorStore>> OpenFiles(const std::vector<std::string>& paths);

  const TensorInfo* Find(const std::string& name) const;
  std::vector<const TensorInfo*> All() const;  // sorted by name
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  size_t size() const { return by_name_.size(); }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> by_name_;
};

// Reads a whole tensor as float32 (F32/F16/BF16/F64 accepted); an error names the tensor otherwise.
StatusOr<std::vector<float>> ReadAsF32(const TensorInfo& t);
// Reads an integer tensor (I64/I32/U8/BOOL/...) as int64.
StatusOr<std::vector<int64_t>> ReadAsI64(const TensorInfo& t);

// Writing. Each tensor's bytes come from `data` or, when it is null, from `fill` (called once, in file
// order, with a buffer of nbytes): that lets a converter stream tensors without holding them all.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::function<Status(uint8_t* dst, size_t nbytes)> fill;
};

// Writes a safetensors file atomically (temporary file + rename; nothing half-written is left behind).
Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace idefics
