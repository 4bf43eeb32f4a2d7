// Decoding entry points: sniff the format from magic bytes, decode, convert to RGB, apply EXIF orientation.
// Mirrors PIL.Image.open + (ImageOps.exif_transpose) + Idefics2ImageProcessor.convert_to_rgb /
// convert("RGB").
#include "image/decode.h"

#include <cstdio>
#include <cstring>

#include "core/mapped_file.h"
#include "image/codecs.h"
#include "image/exif.h"

namespace idefics {

namespace image_internal {

Status CheckPixelLimit(const std::string& name, const char* format, int64_t width, int64_t height,
                       int64_t max_pixels) {
  if (width * height > max_pixels) {
    return ResourceExhausted(name + ": " + format + " image of " + std::to_string(width) + "x" +
                             std::to_string(height) + " = " + std::to_string(width * height) +
                             " pixels is over the limit of " + std::to_string(max_pixels) + " pixels");
  }
  return Status::Ok();
}

}  // namespace image_internal

ImageFormat SniffImageFormat(const uint8_t* d, size_t n) {
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImageFormat::kJpeg;
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0)
    return ImageFormat::kWebp;
  return ImageFormat::kUnknown;
}

const char* ImageFormatName(ImageFormat f) {
  switch (f) {
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kWebp:
      return "WebP";
    case ImageFormat::kUnknown:
      break;
  }
  return "unknown";
}

namespace {

// A recognisable but unsupported format gets its name in the error.
const char* OtherFormatName(const uint8_t* d, size_t n) {
  if (n >= 6 && (std::memcmp(d, "GIF87a", 6) == 0 || std::memcmp(d, "GIF89a", 6) == 0)) return "GIF";
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return "BMP";
  if (n >= 4 && (std::memcmp(d, "II*\0", 4) == 0 || std::memcmp(d, "MM\0*", 4) == 0)) return "TIFF";
  if (n >= 12 && std::memcmp(d + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
  if (n >= 4 && std::memcmp(d, "%PDF", 4) == 0) return "PDF";
  return nullptr;
}

std::string FirstBytesHex(const uint8_t* d, size_t n) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < n && i < 8; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", d[i]);
    if (i) s += ' ';
    s += buf;
  }
  return s;
}

}  // namespace

StatusOr<RgbImage> DecodeImageBytes(const uint8_t* data, size_t size, const std::string& name,
                                    const DecodeOptions& opts) {
  using namespace image_internal;
  if (size == 0 || data == nullptr) return InvalidArgument(name + ": empty file (0 bytes), not an image");
  if (opts.max_pixels <= 0) return InvalidArgument(name + ": max_pixels must be positive");
  const ImageFormat fmt = SniffImageFormat(data, size);
  StatusOr<SourceImage> src = InvalidArgument("");
  switch (fmt) {
    case ImageFormat::kPng:
      src = DecodePng(data, size, name, opts.max_pixels);
      break;
    case ImageFormat::kJpeg:
      src = DecodeJpeg(data, size, name, opts.max_pixels);
      break;
    case ImageFormat::kWebp:
      src = DecodeWebp(data, size, name, opts.max_pixels);
      break;
    case ImageFormat::kUnknown:
      if (const char* other = OtherFormatName(data, size)) {
        return Unimplemented(name + ": " + other + " images are not supported (use PNG, JPEG or WebP)");
      }
      return InvalidArgument(
          name + ": not a PNG, JPEG or WebP image (first bytes: " + FirstBytesHex(data, size) + ")");
  }
  if (!src.ok()) return src.status();
  RgbImage rgb = ConvertToRgb(*src, opts.alpha);
  if (opts.apply_exif_orientation) {
    const int orientation = FindExifOrientation(data, size);
    if (orientation != 1) rgb = ApplyExifOrientation(rgb, orientation);
  }
  return rgb;
}

StatusOr<RgbImage> DecodeImageFile(const std::string& path, const DecodeOptions& opts) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  return DecodeImageBytes(file->data(), file->size(), path, opts);
}

}  // namespace idefics
