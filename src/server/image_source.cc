// Image bytes from data: URIs and confined local files (see image_source.h).
// Mirrors the image_url content part of OpenAI's chat API.
#include "server/image_source.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <array>
#include <cctype>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

namespace idefics::server {
namespace {

int Base64Value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool IsSpace(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// realpath() that returns "" on failure.
std::string RealPath(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> p(realpath(path.c_str(), nullptr), &std::free);
  return p ? std::string(p.get()) : std::string();
}

// Decodes %XX escapes of a file: URL path. Returns false on a malformed escape or an embedded NUL.
bool PercentDecode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

StatusOr<std::string> LoadDataUri(const std::string& url, const ImageSourceOptions& options) {
  const size_t comma = url.find(',');
  if (comma == std::string::npos) return InvalidArgument("data URI without ','");
  std::string header = url.substr(5, comma - 5);  // "image/png;base64"
  for (char& c : header) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string kSuffix = ";base64";
  if (header.size() < kSuffix.size() || header.compare(header.size() - kSuffix.size(), kSuffix.size(), kSuffix))
    return InvalidArgument("data URI must be base64-encoded (data:image/...;base64,...)");
  const std::string media = header.substr(0, header.size() - kSuffix.size());
  if (!media.empty() && media.rfind("image/", 0) != 0 && media != "application/octet-stream")
    return InvalidArgument("data URI media type '" + media + "' is not an image type");
  // 4 base64 characters carry 3 bytes: refuse before decoding what would be too large.
  const size_t encoded = url.size() - comma - 1;
  if (static_cast<int64_t>(encoded / 4 * 3) > options.max_bytes + 3)
    return ResourceExhausted("image of about " + std::to_string(encoded / 4 * 3) + " bytes exceeds the limit of " +
                             std::to_string(options.max_bytes) + " bytes");
  auto bytes = DecodeBase64(url.substr(comma + 1));
  if (!bytes.ok()) return bytes.status().WithContext("data URI base64");
  if (bytes->empty()) return InvalidArgument("data URI holds no bytes");
  if (static_cast<int64_t>(bytes->size()) > options.max_bytes)
    return ResourceExhausted("image of " + std::to_string(bytes->size()) + " bytes exceeds the limit of " +
                             std::to_string(options.max_bytes) + " bytes");
  return bytes;
}

StatusOr<std::string> LoadLocalFile(const std::string& url, const ImageSourceOptions& options) {
  if (options.allow_local_dir.empty())
    return InvalidArgument("local image files are disabled (start the server with --allow-local-files DIR)");
  std::string path = url;
  if (url.rfind("file://", 0) == 0) {
    std::string rest = url.substr(7);
    if (rest.rfind("localhost/", 0) == 0) rest = rest.substr(9);
    if (rest.empty() || rest[0] != '/') return InvalidArgument("file: URL must be file:///absolute/path");
    if (!PercentDecode(rest, &path)) return InvalidArgument("file: URL has a malformed %-escape");
  }
  if (path.empty() || path.find('\0') != std::string::npos) return InvalidArgument("empty or invalid file path");
  const std::string root = RealPath(options.allow_local_dir);
  if (root.empty()) return InternalError("--allow-local-files folder no longer exists");
  const std::string joined = path[0] == '/' ? path : root + "/" + path;
  // Resolving symlinks and "..", then comparing prefixes, refuses every escape from the folder.
  const std::string real = RealPath(joined);
  const std::string prefix = root == "/" ? root : root + "/";
  if (real.empty() || real.rfind(prefix, 0) != 0)
    return InvalidArgument("image path '" + path + "' is not a file inside the allowed folder");
  struct stat st {};
  if (stat(real.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return InvalidArgument("image path '" + path + "' is not a regular file");
  if (st.st_size > options.max_bytes)
    return ResourceExhausted("image file '" + path + "' of " + std::to_string(st.st_size) +
                             " bytes exceeds the limit of " + std::to_string(options.max_bytes) + " bytes");
  std::ifstream in(real, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return IoError("cannot read image file '" + path + "'");
  if (bytes.empty()) return InvalidArgument("image file '" + path + "' is empty");
  return bytes;
}

}  // namespace

StatusOr<std::string> DecodeBase64(const std::string& text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (IsSpace(c)) continue;
    if (c == '=') {
      ++pad;
      if (pad > 2) return InvalidArgument("too much '=' padding at byte " + std::to_string(i));
      continue;
    }
    const int v = Base64Value(c);
    if (v < 0 || pad > 0)
      return InvalidArgument("invalid base64 character at byte " + std::to_string(i));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits: 0 (complete), 2 (one byte + "=="), 4 (two bytes + "="); 6 cannot end a valid encoding.
  if (bits == 6) return InvalidArgument("truncated base64 (a lone trailing character)");
  if (pad > 0 && pad != bits / 2) return InvalidArgument("base64 padding does not match the data length");
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return InvalidArgument("base64 has non-zero trailing bits");
  return out;
}

std::string EncodeBase64(const std::string& bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], kAlphabet[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

StatusOr<std::string> LoadImageUrl(const std::string& url, const ImageSourceOptions& options) {
  if (url.size() >= 5 && (url.compare(0, 5, "data:") == 0 || url.compare(0, 5, "DATA:") == 0))
    return LoadDataUri(url, options);
  if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0)
    return InvalidArgument("remote image URLs are not fetched; send the image as a data:image/...;base64 URI");
  return LoadLocalFile(url, options);
}

std::string Sha256Hex(const std::string& bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest.data(), &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

}  // namespace idefics::server
