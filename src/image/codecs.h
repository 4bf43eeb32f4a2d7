// Internal to src/image: the per-format decoders and the image they produce, which holds pixels the way
// Pillow holds them after Image.open (its "mode"), before convert_to_rgb (see convert_rgb.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "idefics/status.h"
#include "image/decode.h"
#include "image/image_types.h"

namespace idefics::image_internal {

// Pillow modes we can get from PNG/JPEG/WebP. Palette images are expanded by the decoder to kRGB (no tRNS)
// or kRGBA (tRNS alphas), which is exactly what Pillow's P -> RGB / P -> RGBA conversions give.
enum class PixelMode {
  kL,     // 1 channel
  kLA,    // 2 channels
  kRGB,   // 3 channels
  kRGBA,  // 4 channels
  kI16,   // 1 channel, 16-bit samples in `pixels16` (Pillow 9.4 opens 16-bit grayscale PNG as mode "I")
  kCMYK,  // 4 channels, already un-inverted like Pillow's "CMYK;I" raw mode
};

struct SourceImage {
  int width = 0;
  int height = 0;
  PixelMode mode = PixelMode::kRGB;
  std::vector<uint8_t> pixels;     // [height, width, channels]
  std::vector<uint16_t> pixels16;  // [height, width] for kI16
  // Grayscale tRNS ("transparency" in Pillow's info): pixels equal to this value become transparent when
  // converted to RGBA. As in Pillow, the raw tRNS value is compared with the converted 8-bit sample (the
  // expanded sample for kL, the clipped sample for kI16).
  bool has_transparent_gray = false;
  int transparent_gray = 0;
};

int Channels(PixelMode m);

// Checks the declared size against the limit; the message names the file and both numbers.
Status CheckPixelLimit(const std::string& name, const char* format, int64_t width, int64_t height,
                       int64_t max_pixels);

StatusOr<SourceImage> DecodePng(const uint8_t* data, size_t size, const std::string& name,
                                int64_t max_pixels);
StatusOr<SourceImage> DecodeJpeg(const uint8_t* data, size_t size, const std::string& name,
                                 int64_t max_pixels);
StatusOr<SourceImage> DecodeWebp(const uint8_t* data, size_t size, const std::string& name,
                                 int64_t max_pixels);

// Pillow's convert_to_rgb (kCompositeOnWhite) or convert("RGB") (kDrop).
RgbImage ConvertToRgb(const SourceImage& src, AlphaMode alpha);

}  // namespace idefics::image_internal
