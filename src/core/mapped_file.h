// A read-only memory map of a whole file (weights are never read into a buffer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "idefics/status.h"

namespace idefics {

class MappedFile {
 public:
  static StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) text file such as a JSON config.
StatusOr<std::string> ReadTextFile(const std::string& path, size_t max_bytes = 64u << 20);

}  // namespace idefics
