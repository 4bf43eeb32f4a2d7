// PNG decoding: every colour type and bit depth, palette + tRNS, gray tRNS, interlacing, and both RGB paths
// (composite over white / drop alpha), checked against values computed independently here.
#include <gtest/gtest.h>

#include <algorithm>

#include "image/decode.h"
#include "image/encode_util.h"
#include "support/golden.h"

namespace idefics {
namespace {

using test::CompositeRef;
using test::EncodePng;
using test::PngSpec;

RgbImage Decode(const std::vector<uint8_t>& bytes, AlphaMode alpha = AlphaMode::kCompositeOnWhite) {
  DecodeOptions o;
  o.alpha = alpha;
  auto r = DecodeImageBytes(bytes.data(), bytes.size(), "test.png", o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : RgbImage{};
}

void ExpectPixel(const RgbImage& img, int x, int y, int r, int g, int b) {
  const uint8_t* p = &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3];
  EXPECT_EQ(int(p[0]), r) << "R at " << x << "," << y;
  EXPECT_EQ(int(p[1]), g) << "G at " << x << "," << y;
  EXPECT_EQ(int(p[2]), b) << "B at " << x << "," << y;
}

TEST(DecodePng, Rgb8AndDetectionByMagicBytes) {
  PngSpec s = test::MakePng(3, 2, PNG_COLOR_TYPE_RGB, 8);
  for (int i = 0; i < 18; ++i) s.rows.push_back(static_cast<uint8_t>(i * 13));
  const auto bytes = EncodePng(s);
  EXPECT_EQ(SniffImageFormat(bytes.data(), bytes.size()), ImageFormat::kPng);
  const RgbImage img = Decode(bytes);
  ASSERT_EQ(img.width, 3);
  ASSERT_EQ(img.height, 2);
  EXPECT_EQ(img.pixels, s.rows);
  // A misleading extension does not matter.
  const std::string dir = test::MakeTempDir("png");
  auto f = DecodeImageFile(test::WriteBytes(dir + "/really_a_png.jpg", bytes));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->pixels, s.rows);
}

TEST(DecodePng, Rgb16AndRgba16TakeTheHighByte) {
  PngSpec s = test::MakePng(2, 1, PNG_COLOR_TYPE_RGB, 16);
  s.rows = {0xAB, 0xCD, 0x12, 0xFF, 0x00, 0x80, 0xFF, 0xFF, 0x7F, 0xFF, 0x80, 0x00};
  ExpectPixel(Decode(EncodePng(s)), 0, 0, 0xAB, 0x12, 0x00);
  ExpectPixel(Decode(EncodePng(s)), 1, 0, 0xFF, 0x7F, 0x80);
  PngSpec a = test::MakePng(1, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16);
  a.rows = {0x64, 0xFF, 0x32, 0x00, 0xC8, 0x80, 0x80, 0xFF};  // (100, 50, 200) alpha 0x80
  const int al = 0x80;
  ExpectPixel(Decode(EncodePng(a)), 0, 0, CompositeRef(100, al), CompositeRef(50, al), CompositeRef(200, al));
  ExpectPixel(Decode(EncodePng(a), AlphaMode::kDrop), 0, 0, 100, 50, 200);
}

TEST(DecodePng, Gray8AndLowBitDepthsAreScaled) {
  PngSpec g8 = test::MakePng(4, 1, PNG_COLOR_TYPE_GRAY, 8);
  g8.rows = {0, 1, 128, 255};
  const RgbImage i8 = Decode(EncodePng(g8));
  for (int x = 0; x < 4; ++x) ExpectPixel(i8, x, 0, g8.rows[x], g8.rows[x], g8.rows[x]);
  // 2-bit: samples 0,1,2,3 packed MSB first -> 0, 85, 170, 255.
  PngSpec g2 = test::MakePng(4, 1, PNG_COLOR_TYPE_GRAY, 2);
  g2.rows = {0b00011011};
  const RgbImage i2 = Decode(EncodePng(g2));
  for (int x = 0; x < 4; ++x) ExpectPixel(i2, x, 0, 85 * x, 85 * x, 85 * x);
  PngSpec g1 = test::MakePng(8, 1, PNG_COLOR_TYPE_GRAY, 1);
  g1.rows = {0b10100000};
  const RgbImage i1 = Decode(EncodePng(g1));
  ExpectPixel(i1, 0, 0, 255, 255, 255);
  ExpectPixel(i1, 1, 0, 0, 0, 0);
  ExpectPixel(i1, 2, 0, 255, 255, 255);
  PngSpec g4 = test::MakePng(2, 1, PNG_COLOR_TYPE_GRAY, 4);
  g4.rows = {0x3F};
  const RgbImage i4 = Decode(EncodePng(g4));
  ExpectPixel(i4, 0, 0, 0x33, 0x33, 0x33);
  ExpectPixel(i4, 1, 0, 0xFF, 0xFF, 0xFF);
}

TEST(DecodePng, Gray16ClipsLikePillowModeI) {
  // Pillow 9.4 opens 16-bit gray as mode "I"; I -> RGB(A) clips each value to 0..255.
  PngSpec s = test::MakePng(3, 1, PNG_COLOR_TYPE_GRAY, 16);
  s.rows = {0x00, 0x80, 0x00, 0xFF, 0x12, 0x34};  // 128, 255, 4660
  const RgbImage img = Decode(EncodePng(s));
  ExpectPixel(img, 0, 0, 128, 128, 128);
  ExpectPixel(img, 1, 0, 255, 255, 255);
  ExpectPixel(img, 2, 0, 255, 255, 255);
}

TEST(DecodePng, GrayAlphaCompositesOrDrops) {
  PngSpec s = test::MakePng(3, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8);
  s.rows = {10, 0, 10, 128, 10, 255};
  const RgbImage c = Decode(EncodePng(s));
  ExpectPixel(c, 0, 0, 255, 255, 255);
  const int v = CompositeRef(10, 128);
  ExpectPixel(c, 1, 0, v, v, v);
  ExpectPixel(c, 2, 0, 10, 10, 10);
  const RgbImage d = Decode(EncodePng(s), AlphaMode::kDrop);
  for (int x = 0; x < 3; ++x) ExpectPixel(d, x, 0, 10, 10, 10);
  PngSpec s16 = test::MakePng(1, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 16);
  s16.rows = {0x40, 0x11, 0x90, 0x22};  // gray 0x40, alpha 0x90 (high bytes)
  const int v16 = CompositeRef(0x40, 0x90);
  ExpectPixel(Decode(EncodePng(s16)), 0, 0, v16, v16, v16);
}

TEST(DecodePng, RgbaAllAlphaValuesMatchTheCompositeFormula) {
  // 256 x 256 image: x = colour, y = alpha; every (c, a) pair of the spec's formula.
  PngSpec s = test::MakePng(256, 256, PNG_COLOR_TYPE_RGB_ALPHA, 8);
  for (int a = 0; a < 256; ++a) {
    for (int c = 0; c < 256; ++c)
      s.rows.insert(s.rows.end(), {uint8_t(c), uint8_t(255 - c), uint8_t(c / 2), uint8_t(a)});
  }
  const RgbImage img = Decode(EncodePng(s));
  for (int a = 0; a < 256; ++a) {
    for (int c = 0; c < 256; ++c) {
      const uint8_t* p = &img.pixels[(static_cast<size_t>(a) * 256 + c) * 3];
      ASSERT_EQ(p[0], CompositeRef(c, a)) << "c=" << c << " a=" << a;
      ASSERT_EQ(p[1], CompositeRef(255 - c, a));
      ASSERT_EQ(p[2], CompositeRef(c / 2, a));
    }
  }
}

TEST(DecodePng, PaletteWithTrnsAndLowBitDepth) {
  PngSpec s = test::MakePng(4, 1, PNG_COLOR_TYPE_PALETTE, 2);
  s.palette = {{200, 10, 20}, {0, 255, 0}, {5, 6, 7}, {90, 80, 70}};
  s.trns_alpha = {0, 100};  // entries 2 and 3 have no tRNS value: opaque
  s.rows = {0b00011011};    // indices 0, 1, 2, 3
  const RgbImage c = Decode(EncodePng(s));
  ExpectPixel(c, 0, 0, 255, 255, 255);
  ExpectPixel(c, 1, 0, CompositeRef(0, 100), CompositeRef(255, 100), CompositeRef(0, 100));
  ExpectPixel(c, 2, 0, 5, 6, 7);
  ExpectPixel(c, 3, 0, 90, 80, 70);
  const RgbImage d = Decode(EncodePng(s), AlphaMode::kDrop);
  ExpectPixel(d, 0, 0, 200, 10, 20);
  ExpectPixel(d, 1, 0, 0, 255, 0);
  // Without tRNS: a plain lookup.
  s.trns_alpha.clear();
  ExpectPixel(Decode(EncodePng(s)), 0, 0, 200, 10, 20);
}

TEST(DecodePng, GrayTrnsMakesThatValueWhiteOnlyWhenCompositing) {
  PngSpec s = test::MakePng(2, 1, PNG_COLOR_TYPE_GRAY, 8);
  s.has_trns_color = true;
  s.trns_color.gray = 7;
  s.rows = {7, 8};
  const RgbImage c = Decode(EncodePng(s));
  ExpectPixel(c, 0, 0, 255, 255, 255);
  ExpectPixel(c, 1, 0, 8, 8, 8);
  ExpectPixel(Decode(EncodePng(s), AlphaMode::kDrop), 0, 0, 7, 7, 7);
}

TEST(DecodePng, RgbTrnsIsIgnoredAsPillowKeepsRgbImages) {
  PngSpec s = test::MakePng(1, 1, PNG_COLOR_TYPE_RGB, 8);
  s.has_trns_color = true;
  s.trns_color.red = 1, s.trns_color.green = 2, s.trns_color.blue = 3;
  s.rows = {1, 2, 3};
  ExpectPixel(Decode(EncodePng(s)), 0, 0, 1, 2, 3);
}

TEST(DecodePng, InterlacedEqualsProgressiveRows) {
  for (int ct : {PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA, PNG_COLOR_TYPE_GRAY}) {
    const int ch = ct == PNG_COLOR_TYPE_RGB ? 3 : (ct == PNG_COLOR_TYPE_GRAY ? 1 : 4);
    PngSpec s = test::MakePng(13, 11, ct, 8);
    for (int i = 0; i < 13 * 11 * ch; ++i) s.rows.push_back(static_cast<uint8_t>((i * 7919) >> 3));
    PngSpec si = s;
    si.interlace = true;
    const auto a = EncodePng(s), b = EncodePng(si);
    EXPECT_NE(a, b);
    EXPECT_EQ(Decode(a).pixels, Decode(b).pixels) << "colour type " << ct;
  }
}

TEST(DecodePng, WarningsAreSilentAndBadAncillaryCrcIsTolerated) {
  PngSpec s = test::MakePng(2, 2, PNG_COLOR_TYPE_RGB, 8);
  s.rows.assign(12, 77);
  const std::string text("Comment\0hello", 13);
  s.extra_chunks.push_back({"tEXt", std::vector<uint8_t>(text.begin(), text.end())});
  auto bytes = EncodePng(s);
  // Corrupt the tEXt chunk's CRC: libpng warns and drops the chunk (Pillow ignores text chunks too).
  const std::string needle = "tEXt";
  auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  ASSERT_NE(it, bytes.end());
  const size_t crc_at = (it - bytes.begin()) + 4 + text.size();
  bytes[crc_at] ^= 0xFF;
  ::testing::internal::CaptureStderr();
  const RgbImage img = Decode(bytes);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "");
  EXPECT_EQ(img.pixels, s.rows);
}

}  // namespace
}  // namespace idefics
