// Image decoding (PNG / JPEG / WebP, sniffed by magic bytes) to 8-bit RGB, with size limits checked from the
// header before any pixel buffer exists. Mirrors PIL.Image.open + Idefics2ImageProcessor.convert_to_rgb.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "idefics/status.h"
#include "image/image_types.h"

namespace idefics {

// What happens to an alpha channel (RGBA, LA, palette or grayscale transparency) when going to RGB.
enum class AlphaMode {
  // Idefics2ImageProcessor.convert_to_rgb: convert("RGBA"), alpha-composite over opaque white, drop alpha.
  // Transparent pixels become white. This is the default of our pipeline.
  kCompositeOnWhite,
  // transformers.image_utils.load_image: convert("RGB"), alpha simply dropped (the stored colour stays).
  kDrop,
};

// 1 << 26 = 67,108,864 pixels (64 Mi pixels): about 192 MiB of RGB, under Pillow's own 89,478,485-pixel
// DecompressionBombWarning threshold.
inline constexpr int64_t kDefaultMaxImagePixels = int64_t{1} << 26;

struct DecodeOptions {
  AlphaMode alpha = AlphaMode::kCompositeOnWhite;
  // Rotate/flip by the EXIF Orientation tag (JPEG APP1, WebP EXIF chunk, PNG eXIf), as load_image does with
  // ImageOps.exif_transpose. Images without the tag are unaffected.
  bool apply_exif_orientation = true;
  // Images with width*height above this are refused from the header alone (kResourceExhausted).
  int64_t max_pixels = kDefaultMaxImagePixels;
};

// A PIL image opened with Image.open and passed straight to Idefics2ImageProcessor (the golden
// image_processor cases): composite over white, no EXIF rotation.
inline DecodeOptions ImageProcessorDecodeOptions() {
  DecodeOptions o;
  o.apply_exif_orientation = false;
  return o;
}

// What Idefics2Processor gets from a path/URL through transformers' load_image: exif_transpose, then
// convert("RGB") dropping alpha.
inline DecodeOptions LoadImageDecodeOptions() {
  DecodeOptions o;
  o.alpha = AlphaMode::kDrop;
  return o;
}

enum class ImageFormat { kUnknown, kPng, kJpeg, kWebp };

// Format from the first bytes (never from a file name).
ImageFormat SniffImageFormat(const uint8_t* data, size_t size);
const char* ImageFormatName(ImageFormat f);

// Reads and decodes a file. Errors name the file and say what is wrong (missing, empty, not an image,
// corrupt/truncated, too large).
StatusOr<RgbImage> DecodeImageFile(const std::string& path, const DecodeOptions& opts = {});

// Decodes an in-memory encoded image (e.g. base64-decoded request data); `name` is used in error messages.
StatusOr<RgbImage> DecodeImageBytes(const uint8_t* data, size_t size, const std::string& name,
                                    const DecodeOptions& opts = {});

}  // namespace idefics
