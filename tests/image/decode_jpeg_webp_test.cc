// JPEG (baseline, progressive, grayscale, CMYK/Adobe), WebP (lossless/lossy, alpha) decoding and EXIF
// orientation on encoded files.
#include <gtest/gtest.h>

#include <cstdlib>

#include "image/decode.h"
#include "image/encode_util.h"
#include "image/exif.h"

namespace idefics {
namespace {

using test::EncodeJpeg;
using test::JpegSpec;

StatusOr<RgbImage> DecodeBytes(const std::vector<uint8_t>& b, DecodeOptions o = {}) {
  return DecodeImageBytes(b.data(), b.size(), "mem", o);
}

// A smooth gradient (no wrap-around for the sizes used), so lossy codecs stay close.
std::vector<uint8_t> Pattern(int w, int h, int ch) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * ch);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < ch; ++c)
        px[(static_cast<size_t>(y) * w + x) * ch + c] = uint8_t(x * 3 + y * 2 + c * 40);
  return px;
}

int MaxAbsDiff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(int(a[i]) - int(b[i])));
  return m;
}

TEST(DecodeJpeg, BaselineIsCloseAndProgressiveIsIdentical) {
  JpegSpec s = test::MakeJpeg(37, 23, 3, JCS_RGB, 98);
  s.pixels = Pattern(37, 23, 3);
  const auto base = EncodeJpeg(s);
  s.progressive = true;
  const auto prog = EncodeJpeg(s);
  ASSERT_NE(base, prog);
  EXPECT_EQ(SniffImageFormat(base.data(), base.size()), ImageFormat::kJpeg);
  auto a = DecodeBytes(base), b = DecodeBytes(prog);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->width, 37);
  EXPECT_EQ(a->height, 23);
  EXPECT_LE(MaxAbsDiff(a->pixels, s.pixels), 12);
  // Same quantized coefficients, so the same pixels.
  EXPECT_EQ(a->pixels, b->pixels);
}

TEST(DecodeJpeg, GrayscaleIsReplicated) {
  JpegSpec s = test::MakeJpeg(16, 8, 1, JCS_GRAYSCALE, 100);
  s.pixels = Pattern(16, 8, 1);
  auto img = DecodeBytes(EncodeJpeg(s));
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  for (size_t i = 0; i < s.pixels.size(); ++i) {
    EXPECT_EQ(img->pixels[3 * i], img->pixels[3 * i + 1]);
    EXPECT_EQ(img->pixels[3 * i], img->pixels[3 * i + 2]);
    EXPECT_LE(std::abs(int(img->pixels[3 * i]) - int(s.pixels[i])), 3);
  }
}

TEST(DecodeJpeg, AdobeCmykUsesPillowsFormula) {
  // Stored Adobe-style (inverted): stored = 255 - ink. Inks C=0, M=255, Y=255, K=0 -> red; K=128 -> darker.
  JpegSpec s = test::MakeJpeg(16, 16, 4, JCS_CMYK, 100);
  for (int i = 0; i < 16 * 16; ++i) {
    const bool dark = i >= 128;
    s.pixels.insert(s.pixels.end(), {255, 0, 0, uint8_t(dark ? 255 - 128 : 255)});
  }
  auto img = DecodeBytes(EncodeJpeg(s));
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  const uint8_t* top = &img->pixels[0];
  EXPECT_NEAR(top[0], 255, 2);
  EXPECT_NEAR(top[1], 0, 2);
  EXPECT_NEAR(top[2], 0, 2);
  // K = 128: R = 255 - 128 - 0 = 127, G = B = (255-128) - 255*(127)/255 = 0.
  const uint8_t* bottom = &img->pixels[(15 * 16 + 8) * 3];
  EXPECT_NEAR(bottom[0], 127, 2);
  EXPECT_NEAR(bottom[1], 0, 2);
}

TEST(DecodeJpeg, ExifOrientationIsApplied) {
  JpegSpec s = test::MakeJpeg(24, 16, 3, JCS_RGB, 90);
  s.pixels = Pattern(24, 16, 3);
  const auto plain = EncodeJpeg(s);
  DecodeOptions no_exif;
  no_exif.apply_exif_orientation = false;
  for (int o = 1; o <= 8; ++o) {
    for (bool le : {true, false}) {
      s.app1 = test::ExifWithOrientation(o, le);
      const auto bytes = EncodeJpeg(s);
      EXPECT_EQ(FindExifOrientation(bytes.data(), bytes.size()), o);
      auto raw = DecodeBytes(bytes, no_exif);
      auto turned = DecodeBytes(bytes);
      ASSERT_TRUE(raw.ok() && turned.ok());
      EXPECT_EQ(raw->pixels, DecodeBytes(plain)->pixels);
      const RgbImage want = ApplyExifOrientation(*raw, o);
      EXPECT_EQ(turned->width, o >= 5 ? 16 : 24);
      EXPECT_EQ(turned->pixels, want.pixels) << "orientation " << o;
    }
  }
}

TEST(DecodeWebp, LosslessWithAlphaIsExact) {
  const int w = 9, h = 5;
  std::vector<uint8_t> px = Pattern(w, h, 4);
  for (int i = 0; i < w * h; ++i) px[4 * i + 3] = uint8_t(i * 6);
  const auto bytes = test::EncodeWebp(px, w, h, /*alpha=*/true, /*lossless=*/true);
  ASSERT_FALSE(bytes.empty());
  EXPECT_EQ(SniffImageFormat(bytes.data(), bytes.size()), ImageFormat::kWebp);
  DecodeOptions drop;
  drop.alpha = AlphaMode::kDrop;
  auto c = DecodeBytes(bytes), d = DecodeBytes(bytes, drop);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(d.ok());
  for (int i = 0; i < w * h; ++i) {
    const int a = px[4 * i + 3];
    for (int ch = 0; ch < 3; ++ch) {
      // Lossless WebP may alter the colour of fully transparent pixels; those composite to white anyway.
      EXPECT_EQ(c->pixels[3 * i + ch], test::CompositeRef(px[4 * i + ch], a)) << i;
      if (a > 0) {
        EXPECT_EQ(d->pixels[3 * i + ch], px[4 * i + ch]) << i;
      }
    }
  }
}

TEST(DecodeWebp, LossyRgbIsClose) {
  const int w = 32, h = 20;
  const std::vector<uint8_t> px = Pattern(w, h, 3);
  const auto bytes = test::EncodeWebp(px, w, h, /*alpha=*/false, /*lossless=*/false, 95);
  auto img = DecodeBytes(bytes);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->width, w);
  EXPECT_EQ(img->height, h);
  EXPECT_LE(MaxAbsDiff(img->pixels, px), 40);
}

}  // namespace
}  // namespace idefics
