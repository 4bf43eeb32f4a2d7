// EXIF Orientation parsing (TIFF byte orders, prefixes, malformed blobs, PNG/WebP containers) and the eight
// orientation transposes.
#include "image/exif.h"

#include <gtest/gtest.h>

#include "image/decode.h"
#include "image/encode_util.h"

namespace idefics {
namespace {

// 3x2 image whose pixel (x, y) has R = 10*y + x.
RgbImage Tiny() {
  RgbImage img{3, 2, {}};
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x) img.pixels.insert(img.pixels.end(), {uint8_t(10 * y + x), 0, 0});
  return img;
}

std::vector<int> Reds(const RgbImage& img) {
  std::vector<int> r;
  for (size_t i = 0; i < img.pixels.size(); i += 3) r.push_back(img.pixels[i]);
  return r;
}

TEST(Exif, OrientationFromTiffBothByteOrders) {
  for (int o = 1; o <= 8; ++o) {
    for (bool le : {true, false}) {
      for (bool prefix : {true, false}) {
        const auto t = test::ExifWithOrientation(o, le, prefix);
        EXPECT_EQ(ExifOrientationFromTiff(t.data(), t.size()), o);
      }
    }
  }
  auto bad = test::ExifWithOrientation(9, true);
  EXPECT_EQ(ExifOrientationFromTiff(bad.data(), bad.size()), 1);
  auto t = test::ExifWithOrientation(6, true);
  for (size_t n = 0; n < t.size(); ++n) (void)ExifOrientationFromTiff(t.data(), n);  // no out-of-bounds reads
  EXPECT_EQ(ExifOrientationFromTiff(t.data(), t.size() - 10), 1);
}

TEST(Exif, Transposes) {
  const RgbImage img = Tiny();  // rows: [0 1 2] [10 11 12]
  EXPECT_EQ(Reds(ApplyExifOrientation(img, 1)), (std::vector<int>{0, 1, 2, 10, 11, 12}));
  EXPECT_EQ(Reds(ApplyExifOrientation(img, 2)), (std::vector<int>{2, 1, 0, 12, 11, 10}));
  EXPECT_EQ(Reds(ApplyExifOrientation(img, 3)), (std::vector<int>{12, 11, 10, 2, 1, 0}));
  EXPECT_EQ(Reds(ApplyExifOrientation(img, 4)), (std::vector<int>{10, 11, 12, 0, 1, 2}));
  // 5..8 are 2 wide, 3 high.
  EXPECT_EQ(Reds(ApplyExifOrientation(img, 5)), (std::vector<int>{0, 10, 1, 11, 2, 12}));
  EXPECT_EQ(Reds(ApplyExifOrientation(img, 6)), (std::vector<int>{10, 0, 11, 1, 12, 2}));  // 90 clockwise
  EXPECT_EQ(Reds(ApplyExifOrientation(img, 7)), (std::vector<int>{12, 2, 11, 1, 10, 0}));
  EXPECT_EQ(Reds(ApplyExifOrientation(img, 8)), (std::vector<int>{2, 12, 1, 11, 0, 10}));  // 90 counter-cw
  EXPECT_EQ(ApplyExifOrientation(img, 6).width, 2);
  EXPECT_EQ(ApplyExifOrientation(img, 6).height, 3);
}

TEST(Exif, PngExifChunkAndWebpExifChunk) {
  test::PngSpec s = test::MakePng(3, 2, PNG_COLOR_TYPE_RGB, 8);
  s.rows = Tiny().pixels;
  s.extra_chunks.push_back({"eXIf", test::ExifWithOrientation(8, false, /*exif_prefix=*/false)});
  const auto png = test::EncodePng(s);
  EXPECT_EQ(FindExifOrientation(png.data(), png.size()), 8);
  auto img = DecodeImageBytes(png.data(), png.size(), "rot.png");
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(Reds(*img), (std::vector<int>{2, 12, 1, 11, 0, 10}));

  // WebP extended format: RIFF, VP8X (flags: EXIF), the VP8L bitstream, then an EXIF chunk.
  const auto simple = test::EncodeWebp(Tiny().pixels, 3, 2, false, true);
  ASSERT_GE(simple.size(), 20u);
  std::vector<uint8_t> body = {'W', 'E',  'B', 'P', 'V', 'P', '8', 'X', 10, 0, 0,
                               0,   0x08, 0,   0,   0,   2,   0,   0,   1,  0, 0};
  body.insert(body.end(), simple.begin() + 12, simple.end());
  const auto exif = test::ExifWithOrientation(3, true);
  body.insert(body.end(), {'E', 'X', 'I', 'F'});
  for (int i = 0; i < 4; ++i) body.push_back(static_cast<uint8_t>(exif.size() >> (8 * i)));
  body.insert(body.end(), exif.begin(), exif.end());
  if (exif.size() & 1) body.push_back(0);
  std::vector<uint8_t> webp = {'R', 'I', 'F', 'F'};
  for (int i = 0; i < 4; ++i) webp.push_back(static_cast<uint8_t>(body.size() >> (8 * i)));
  webp.insert(webp.end(), body.begin(), body.end());
  EXPECT_EQ(FindExifOrientation(webp.data(), webp.size()), 3);
  auto w = DecodeImageBytes(webp.data(), webp.size(), "rot.webp");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(Reds(*w), (std::vector<int>{12, 11, 10, 2, 1, 0}));
}

}  // namespace
}  // namespace idefics
