// Output files written so that a reader never sees half of one, without clobbering what the path names.
#pragma once

#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>

#include "idefics/status.h"

namespace idefics {

// Where a write to `path` lands. A regular file (or a path that does not exist yet) is written atomically: a
// temporary file beside it, renamed over it when complete. A symbolic link is followed, so the link stays and
// its target is written. Anything else that exists — a device such as /dev/null or /dev/stdout, a FIFO — is
// written straight through (renaming over it would replace the node with a regular file). A directory is an
// error.
struct OutputTarget {
  std::string path;     // the file finally written (a link's target for a link)
  bool direct = false;  // write straight into `path`, no temporary file
};
StatusOr<OutputTarget> ResolveOutput(const std::string& path);

// An output file opened per ResolveOutput: Open, write through file(), then Commit (flush, close, rename). An
// OutputFile destroyed without a successful Commit removes its temporary file.
class OutputFile {
 public:
  static StatusOr<std::unique_ptr<OutputFile>> Open(const std::string& path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  std::FILE* file() { return f_; }
  Status Commit();

 private:
  OutputFile() = default;
  std::string path_, target_, tmp_;  // tmp_ is empty for a direct write
  std::FILE* f_ = nullptr;
};

// Writes `data` to `path` through OutputFile (atomically where `path` is a regular file).
Status WriteFileAtomic(const std::string& path, const void* data, size_t size);

}  // namespace idefics
