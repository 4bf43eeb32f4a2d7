// WebP decoding with libwebp (still images; lossy, lossless, with or without alpha), like Pillow's
// WebPImagePlugin: mode RGBA when the bitstream has alpha, else RGB; default (fancy) upsampling.
#include <webp/decode.h>

#include "image/codecs.h"

namespace idefics::image_internal {

StatusOr<SourceImage> DecodeWebp(const uint8_t* data, size_t size, const std::string& name,
                                 int64_t max_pixels) {
  WebPBitstreamFeatures features;
  const VP8StatusCode st = WebPGetFeatures(data, size, &features);
  if (st == VP8_STATUS_NOT_ENOUGH_DATA) return InvalidArgument(name + ": truncated WebP (header incomplete)");
  if (st != VP8_STATUS_OK) {
    return InvalidArgument(name + ": corrupt WebP header (libwebp status " + std::to_string(st) + ")");
  }
  if (features.has_animation) {
    return Unimplemented(name + ": animated WebP is not supported (use a still image)");
  }
  if (features.width <= 0 || features.height <= 0) {
    return InvalidArgument(name + ": corrupt WebP: invalid size");
  }
  RETURN_IF_ERROR(CheckPixelLimit(name, "WebP", features.width, features.height, max_pixels));

  SourceImage img;
  img.width = features.width;
  img.height = features.height;
  img.mode = features.has_alpha ? PixelMode::kRGBA : PixelMode::kRGB;
  const int ch = Channels(img.mode);
  const size_t stride = static_cast<size_t>(img.width) * ch;
  img.pixels.resize(stride * img.height);  // [height, width, ch]
  const uint8_t* res =
      features.has_alpha
          ? WebPDecodeRGBAInto(data, size, img.pixels.data(), img.pixels.size(), static_cast<int>(stride))
          : WebPDecodeRGBInto(data, size, img.pixels.data(), img.pixels.size(), static_cast<int>(stride));
  if (!res)
    return InvalidArgument(name + ": corrupt or truncated WebP (libwebp could not decode the pixels)");
  return img;
}

}  // namespace idefics::image_internal
