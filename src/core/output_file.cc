// Output files: atomic replacement of regular files, straight writes into devices and FIFOs.
#include "core/output_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace idefics {

namespace fs = std::filesystem;

StatusOr<OutputTarget> ResolveOutput(const std::string& path) {
  if (path.empty()) return InvalidArgument("empty output path");
  OutputTarget t;
  t.path = path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return t;  // a new file
    return IoError(path + ": cannot stat: " + std::strerror(errno));
  }
  // Follow a chain of links (a dangling one is written at the path it names).
  for (int hops = 0; S_ISLNK(st.st_mode); ++hops) {
    if (hops == 40) return InvalidArgument(path + ": too many levels of symbolic links");
    std::error_code ec;
    fs::path next = fs::read_symlink(fs::path(t.path), ec);
    if (ec) return IoError(t.path + ": cannot read the link: " + ec.message());
    if (next.is_relative()) next = fs::path(t.path).parent_path() / next;
    t.path = next.lexically_normal().string();
    if (::lstat(t.path.c_str(), &st) != 0) {
      if (errno == ENOENT) return t;
      return IoError(t.path + ": cannot stat: " + std::strerror(errno));
    }
  }
  if (S_ISDIR(st.st_mode)) return InvalidArgument(path + ": is a directory");
  t.direct = !S_ISREG(st.st_mode);
  return t;
}

StatusOr<std::unique_ptr<OutputFile>> OutputFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(OutputTarget t, ResolveOutput(path));
  std::unique_ptr<OutputFile> out(new OutputFile());
  out->path_ = path;
  out->target_ = t.path;
  if (!t.direct) out->tmp_ = t.path + ".tmp." + std::to_string(::getpid());
  const std::string& open_path = t.direct ? t.path : out->tmp_;
  out->f_ = std::fopen(open_path.c_str(), "wb");
  if (!out->f_) {
    out->tmp_.clear();  // nothing was created
    return IoError(path + ": cannot " + std::string(t.direct ? "open" : "create") + ": " +
                   std::strerror(errno));
  }
  return out;
}

OutputFile::~OutputFile() {
  if (f_) std::fclose(f_);
  if (!tmp_.empty()) std::remove(tmp_.c_str());
}

Status OutputFile::Commit() {
  std::FILE* f = f_;
  f_ = nullptr;
  const bool ok = f && !std::ferror(f) && std::fflush(f) == 0;
  const bool closed = f && std::fclose(f) == 0;
  if (!ok || !closed) return IoError(path_ + ": write failed");
  if (tmp_.empty()) return Status::Ok();
  if (std::rename(tmp_.c_str(), target_.c_str()) != 0)
    return IoError(path_ + ": cannot rename the temporary file: " + std::strerror(errno));
  tmp_.clear();
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, const void* data, size_t size) {
  ASSIGN_OR_RETURN(std::unique_ptr<OutputFile> out, OutputFile::Open(path));
  if (size && std::fwrite(data, 1, size, out->file()) != size) return IoError(path + ": write failed");
  return out->Commit();
}

}  // namespace idefics
