// Conversion of a decoded image to 8-bit RGB exactly as Pillow does it: Idefics2ImageProcessor.convert_to_rgb
// (convert("RGBA") + alpha_composite over white) or load_image's convert("RGB") (alpha dropped).
#include <algorithm>

#include "core/check.h"
#include "image/codecs.h"

namespace idefics::image_internal {
namespace {

// Alpha-composite colour c with alpha a over opaque white. Pillow's alpha_composite result equals
// floor((c*a + 255*(255-a)) / 255 + 0.5) for all 65536 (c, a) pairs (spec §2.2); with n an integer,
// floor(n/255 + 1/2) = floor((2n + 255) / 510) exactly.
inline uint8_t CompositeOnWhite(int c, int a) {
  const int n = c * a + 255 * (255 - a);
  return static_cast<uint8_t>((2 * n + 255) / 510);
}

// Pillow's Convert.c CLIP8.
inline uint8_t Clip8(int v) {
  return static_cast<uint8_t>(v <= 0 ? 0 : (v < 256 ? v : 255));
}

// Pillow's MULDIV255: a*b/255 rounded, in integers.
inline int MulDiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

// Pillow's cmyk2rgb (since Pillow 4.3, PR #2699): R = 255-K - C*(255-K)/255 with MULDIV255 rounding.
// (Not the naive 255 - min(255, C+K).)
inline void CmykToRgb(const uint8_t* cmyk, uint8_t* rgb) {
  const int nk = 255 - cmyk[3];
  for (int c = 0; c < 3; ++c) rgb[c] = Clip8(nk - MulDiv255(cmyk[c], nk));
}

}  // namespace

int Channels(PixelMode m) {
  switch (m) {
    case PixelMode::kL:
    case PixelMode::kI16:
      return 1;
    case PixelMode::kLA:
      return 2;
    case PixelMode::kRGB:
      return 3;
    case PixelMode::kRGBA:
    case PixelMode::kCMYK:
      return 4;
  }
  return 0;
}

RgbImage ConvertToRgb(const SourceImage& src, AlphaMode alpha) {
  const size_t n = static_cast<size_t>(src.width) * static_cast<size_t>(src.height);
  const int ch = Channels(src.mode);
  if (src.mode == PixelMode::kI16) {
    IDEFICS_CHECK(src.pixels16.size() == n);
  } else {
    IDEFICS_CHECK(src.pixels.size() == n * static_cast<size_t>(ch));
  }
  RgbImage out;
  out.width = src.width;
  out.height = src.height;
  out.pixels.resize(n * 3);  // [height, width, 3]
  uint8_t* d = out.pixels.data();
  const uint8_t* s = src.pixels.data();
  const bool composite = alpha == AlphaMode::kCompositeOnWhite;

  switch (src.mode) {
    case PixelMode::kRGB:
      // convert_to_rgb returns RGB images untouched (an RGB tRNS colour is ignored on both paths).
      std::copy(s, s + n * 3, d);
      break;
    case PixelMode::kRGBA:
      for (size_t i = 0; i < n; ++i, s += 4, d += 3) {
        for (int c = 0; c < 3; ++c) d[c] = composite ? CompositeOnWhite(s[c], s[3]) : s[c];
      }
      break;
    case PixelMode::kLA:
      for (size_t i = 0; i < n; ++i, s += 2, d += 3) {
        d[0] = d[1] = d[2] = composite ? CompositeOnWhite(s[0], s[1]) : s[0];
      }
      break;
    case PixelMode::kL:
      // L -> RGBA honours a grayscale tRNS (Pillow's convert_transparent); L -> RGB ignores it. Pillow
      // compares the raw tRNS value with the expanded 8-bit sample, so for 1/2/4-bit PNGs only tRNS 0 ever
      // matches.
      for (size_t i = 0; i < n; ++i, ++s, d += 3) {
        const bool clear = composite && src.has_transparent_gray && *s == src.transparent_gray;
        d[0] = d[1] = d[2] = clear ? 255 : *s;
      }
      break;
    case PixelMode::kI16:
      // Pillow's i2rgb clips the 32-bit "I" value to 0..255: 16-bit grayscale mostly saturates to white.
      // This is what transformers gets from a 16-bit grayscale PNG, so we reproduce it.
      for (size_t i = 0; i < n; ++i, d += 3) {
        // Like Pillow's rgbT2rgba, the tRNS value is compared with the converted (clipped) sample.
        const uint8_t v = Clip8(src.pixels16[i]);
        const bool clear = composite && src.has_transparent_gray && v == src.transparent_gray;
        d[0] = d[1] = d[2] = clear ? 255 : v;
      }
      break;
    case PixelMode::kCMYK:
      for (size_t i = 0; i < n; ++i, s += 4, d += 3) CmykToRgb(s, d);
      break;
  }
  return out;
}

}  // namespace idefics::image_internal
