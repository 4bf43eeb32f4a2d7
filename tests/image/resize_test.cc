// Pillow bilinear resampling: identity, hand-computed up/down-scaling values, 1-pixel dimensions, constant
// images, separability and the other PIL filters' basic invariants.
#include "image/resize.h"

#include <gtest/gtest.h>

namespace idefics {
namespace {

RgbImage Gray(int w, int h, std::vector<uint8_t> v) {
  RgbImage img{w, h, {}};
  for (uint8_t x : v) img.pixels.insert(img.pixels.end(), {x, x, x});
  return img;
}

std::vector<int> Channel0(const RgbImage& img) {
  std::vector<int> r;
  for (size_t i = 0; i < img.pixels.size(); i += 3) r.push_back(img.pixels[i]);
  return r;
}

RgbImage Noise(int w, int h, uint32_t seed) {
  RgbImage img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (auto& p : img.pixels) {
    seed = seed * 1664525u + 1013904223u;
    p = static_cast<uint8_t>(seed >> 24);
  }
  return img;
}

TEST(ResizePillow, SameSizeIsACopy) {
  const RgbImage img = Noise(17, 9, 1);
  EXPECT_EQ(ResizeBilinearPillow(img, 17, 9).pixels, img.pixels);
}

TEST(ResizePillow, UpscaleTwoPixelsByHand) {
  // 2 -> 4 wide: centres 0.25, 0.75, 1.25, 1.75; weights (1), (.75,.25), (.25,.75), (1);
  // 255*0.25 = 63.75 -> 64 and 255*0.75 = 191.25 -> 191 after 22-bit fixed point with round-half-up.
  EXPECT_EQ(Channel0(ResizeBilinearPillow(Gray(2, 1, {0, 255}), 4, 1)), (std::vector<int>{0, 64, 191, 255}));
  // The same along the vertical axis.
  EXPECT_EQ(Channel0(ResizeBilinearPillow(Gray(1, 2, {0, 255}), 1, 4)), (std::vector<int>{0, 64, 191, 255}));
}

TEST(ResizePillow, DownscaleIsAntialiased) {
  // 4 -> 2: scale 2, support 2: each output is a triangle-weighted average over 3 inputs (.125, .375, .375,
  // .125 truncated at the border), not a 2-tap sample.
  // o=0: centre 1, taps x=0..2 weights tri(0.25), tri(-0.25), tri(-0.75) = .75,.75,.25 -> /1.75.
  const RgbImage r = ResizeBilinearPillow(Gray(4, 1, {0, 0, 255, 255}), 2, 1);
  // (0*.75 + 0*.75 + 255*.25) / 1.75 = 36.43 -> 36; symmetric: 255 - 36 = 219.
  EXPECT_EQ(Channel0(r), (std::vector<int>{36, 219}));
}

TEST(ResizePillow, OnePixelDimensions) {
  const RgbImage one = Gray(1, 1, {77});
  const RgbImage up = ResizeBilinearPillow(one, 5, 3);
  EXPECT_EQ(Channel0(up), std::vector<int>(15, 77));
  const RgbImage row = Noise(9, 1, 3);
  const RgbImage col = ResizeBilinearPillow(row, 1, 1);
  EXPECT_EQ(col.width, 1);
  EXPECT_EQ(col.height, 1);
  const RgbImage tall = ResizeBilinearPillow(row, 4, 7);  // both axes change, one of them from 1 row
  EXPECT_EQ(tall.height, 7);
  for (int y = 1; y < 7; ++y) {
    for (int x = 0; x < 4 * 3; ++x) EXPECT_EQ(tall.pixels[y * 12 + x], tall.pixels[x]);
  }
}

TEST(ResizePillow, ConstantImagesStayConstantForEveryFilter) {
  for (auto f : {ResampleFilter::kNearest, ResampleFilter::kLanczos, ResampleFilter::kBilinear,
                 ResampleFilter::kBicubic, ResampleFilter::kBox, ResampleFilter::kHamming}) {
    for (uint8_t v : {uint8_t{0}, uint8_t{1}, uint8_t{128}, uint8_t{255}}) {
      const RgbImage img = Gray(13, 7, std::vector<uint8_t>(13 * 7, v));
      for (auto [w, h] : {std::pair{5, 3}, {29, 17}, {13, 20}, {1, 1}}) {
        const RgbImage r = ResizePillow(img, w, h, f);
        ASSERT_EQ(r.pixels.size(), static_cast<size_t>(w) * h * 3);
        for (uint8_t p : r.pixels) ASSERT_EQ(p, v) << "filter " << int(f) << " " << w << "x" << h;
      }
    }
  }
}

TEST(ResizePillow, HorizontalPassComesFirstWithUint8Intermediate) {
  // Resizing both axes equals resizing the width, then the height, each with its own uint8 rounding.
  const RgbImage img = Noise(31, 23, 7);
  const RgbImage both = ResizeBilinearPillow(img, 12, 40);
  const RgbImage two_step = ResizeBilinearPillow(ResizeBilinearPillow(img, 12, 23), 12, 40);
  EXPECT_EQ(both.pixels, two_step.pixels);
}

TEST(ResizePillow, ChannelsAreIndependent) {
  RgbImage img = Noise(11, 6, 9);
  const RgbImage r = ResizeBilinearPillow(img, 20, 4);
  for (int c = 0; c < 3; ++c) {
    RgbImage g{11, 6, {}};
    for (size_t i = c; i < img.pixels.size(); i += 3) g.pixels.insert(g.pixels.end(), 3, img.pixels[i]);
    const RgbImage gr = ResizeBilinearPillow(g, 20, 4);
    for (size_t i = 0; i < gr.pixels.size(); i += 3) ASSERT_EQ(gr.pixels[i], r.pixels[i + c]);
  }
}

TEST(ResizePillow, NearestPicksPixelCentres) {
  EXPECT_EQ(Channel0(ResizePillow(Gray(4, 1, {10, 20, 30, 40}), 2, 1, ResampleFilter::kNearest)),
            (std::vector<int>{20, 40}));
  EXPECT_EQ(Channel0(ResizePillow(Gray(2, 1, {10, 20}), 4, 1, ResampleFilter::kNearest)),
            (std::vector<int>{10, 10, 20, 20}));
}

}  // namespace
}  // namespace idefics
