// Where a request's image bytes come from: data: URIs (base64) or, when enabled, files confined to one folder.
// Mirrors the image_url content part of OpenAI's chat API (no remote fetching here).
#pragma once

#include <cstdint>
#include <string>

#include "idefics/status.h"

namespace idefics::server {

// Strict RFC 4648 base64 (standard alphabet, '=' padding optional, ASCII whitespace skipped). Errors name the
// byte offset of the first bad character.
StatusOr<std::string> DecodeBase64(const std::string& text);
std::string EncodeBase64(const std::string& bytes);

struct ImageSourceOptions {
  std::string allow_local_dir;   // "" -> local files are refused
  int64_t max_bytes = 20 << 20;  // of one image's bytes
};

// Returns the bytes an image_url points to: "data:image/<type>;base64,<data>", or with allow_local_dir set a
// path ("file:///abs", "/abs", "rel" relative to that folder) whose real path (symlinks resolved) lies inside
// the folder. kInvalidArgument for malformed or refused URLs, kResourceExhausted for oversized images.
StatusOr<std::string> LoadImageUrl(const std::string& url, const ImageSourceOptions& options);

// Lower-case hex SHA-256 of bytes (keys of the image-feature cache).
std::string Sha256Hex(const std::string& bytes);

}  // namespace idefics::server
