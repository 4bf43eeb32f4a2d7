// Idefics2 image processor pieces: the output-size rule (spec §2.4/§11.1 examples), the normalization LUT
// values (§2.6), split geometry, padding and masks (§2.7).
#include "image/image_processor.h"

#include <gtest/gtest.h>

#include <cstring>

#include "image/pixel_batch.h"

namespace idefics {
namespace {

HeightWidth Rule(int h, int w) {
  return Idefics2ResizeOutputSize(h, w, 378, 980);
}

TEST(Idefics2ResizeOutputSize, SpecExamples) {
  auto eq = [](HeightWidth a, int h, int w) { return a.height == h && a.width == w; };
  EXPECT_TRUE(eq(Rule(1080, 1920), 551, 980));
  EXPECT_TRUE(eq(Rule(1920, 1080), 980, 551));
  EXPECT_TRUE(eq(Rule(3000, 4000), 735, 980));  // 4000x3000 (w x h)
  EXPECT_TRUE(eq(Rule(540, 960), 540, 960));
  EXPECT_TRUE(eq(Rule(300, 200), 378, 378));
  EXPECT_TRUE(eq(Rule(667, 1000), 653, 980));
  EXPECT_TRUE(eq(Rule(333, 500), 378, 500));
  EXPECT_TRUE(eq(Rule(100, 200), 378, 378));
  EXPECT_TRUE(eq(Rule(1003, 400), 980, 390));  // golden ip01
  EXPECT_TRUE(eq(Rule(300, 420), 378, 420));
  EXPECT_TRUE(eq(Rule(980, 980), 980, 980));
  EXPECT_TRUE(eq(Rule(1000, 1000), 980, 980));
  EXPECT_TRUE(eq(Rule(1, 5000), 378, 980));
}

TEST(Idefics2ResizeOutputSize, UsesDoubleDivisionNotIntegerArithmetic) {
  // Find sizes where 980 / (w / h) in double truncates below the exact rational 980*h/w, and check we follow
  // the double expression (transformers' behaviour) in every case.
  int checked = 0;
  for (int w = 981; w < 3000; ++w) {
    for (int h = 1; h < w; h += 37) {
      const double aspect = static_cast<double>(w) / h;
      const int want = static_cast<int>(980.0 / aspect);
      ASSERT_EQ(Rule(h, w).height, std::max(want, 378)) << h << "x" << w;
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000);
}

TEST(ImageProcessor, NormalizationLutMatchesSpecValues) {
  const ImageProcessor p{PreprocessorConfig{}};
  EXPECT_EQ(p.Normalized(0, 0), -1.0f);
  EXPECT_EQ(p.Normalized(0, 255), 1.0f);
  // float32 bit patterns of the spec's examples: fl32(2 * fl32(u / 255) - 1).
  for (int u : {1, 127, 128, 200}) {
    const float x = static_cast<float>(u * 0.00392156862745098);
    const float want = (x - 0.5f) / 0.5f;
    EXPECT_EQ(p.Normalized(1, static_cast<uint8_t>(u)), want) << u;
  }
  EXPECT_NEAR(p.Normalized(2, 1), -0.99215686321, 1e-9);
  EXPECT_NEAR(p.Normalized(2, 127), -0.00392156839, 1e-10);
  EXPECT_NEAR(p.Normalized(2, 128), 0.00392162799, 1e-10);
  // The rescale differs from float32 (u * fl32(1/255)) for some values; we use the double product.
  int differ = 0;
  for (int u = 0; u < 256; ++u) {
    const float naive = static_cast<float>(u) * static_cast<float>(1.0 / 255.0);
    differ += ((naive - 0.5f) / 0.5f) != p.Normalized(0, static_cast<uint8_t>(u));
  }
  EXPECT_GT(differ, 0);
}

RgbImage Ramp(int w, int h) {
  RgbImage img{w, h, {}};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img.pixels.insert(img.pixels.end(), {uint8_t(x), uint8_t(y), uint8_t(x + y)});
  return img;
}

TEST(ImageProcessor, SplitOrderAndOddSizes) {
  PreprocessorConfig cfg;
  cfg.do_resize = false;  // keep crop sizes visible
  const ImageProcessor p(cfg);
  const auto out = p.Process(Ramp(7, 5), /*split=*/true);
  ASSERT_EQ(out.size(), 5u);
  const int want[5][2] = {{3, 2}, {4, 2}, {3, 3}, {4, 3}, {7, 5}};  // (w, h): right/bottom get the extra
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(out[i].width, want[i][0]) << i;
    EXPECT_EQ(out[i].height, want[i][1]) << i;
  }
  // Top-left pixel of each crop: x in channel 0, y in channel 1.
  const int origin[5][2] = {{0, 0}, {3, 0}, {0, 2}, {3, 2}, {0, 0}};
  for (int i = 0; i < 5; ++i) {
    const size_t plane = static_cast<size_t>(out[i].width) * out[i].height;
    EXPECT_EQ(out[i].chw[0], p.Normalized(0, origin[i][0])) << i;
    EXPECT_EQ(out[i].chw[plane], p.Normalized(1, origin[i][1])) << i;
  }
  EXPECT_EQ(p.Process(Ramp(7, 5), false).size(), 1u);
  EXPECT_EQ(ImageProcessor::ImagesPerInput(true), 5);
}

TEST(ImageProcessor, ResizesEachPieceByTheRule) {
  const ImageProcessor p{PreprocessorConfig{}};
  const auto out = p.Process(Ramp(1000, 667), true);
  ASSERT_EQ(out.size(), 5u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i].height, 378);
    EXPECT_EQ(out[i].width, 500);
  }
  EXPECT_EQ(out[4].height, 653);
  EXPECT_EQ(out[4].width, 980);
}

TEST(ImageProcessor, OnePixelWideImagesDoNotCrashWhenSplitting) {
  const ImageProcessor p{PreprocessorConfig{}};
  for (auto [w, h] : {std::pair{1, 1}, {1, 9}, {9, 1}}) {
    const auto out = p.Process(Ramp(w, h), true);
    ASSERT_EQ(out.size(), 5u);
    for (const PixelImage& im : out) {
      EXPECT_EQ(im.width, 378);
      EXPECT_EQ(im.height, 378);
    }
  }
}

TEST(PadBatch, PadsWithZerosAndBuildsMasks) {
  PixelImage a{2, 1, {1, 2, 3, 4, 5, 6}};     // [3, 1, 2]
  PixelImage b{1, 2, {7, 8, 9, 10, 11, 12}};  // [3, 2, 1]
  const PixelBatch one = PadBatch(std::vector<PixelImage>{a, b});
  EXPECT_EQ(one.batch, 1);
  EXPECT_EQ(one.n_images, 2);
  EXPECT_EQ(one.height, 2);
  EXPECT_EQ(one.width, 2);
  EXPECT_EQ(one.pixel_values, (std::vector<float>{1, 2, 0, 0, 3, 4, 0,  0, 5,  6, 0,  0,  //
                                                  7, 0, 8, 0, 9, 0, 10, 0, 11, 0, 12, 0}));
  EXPECT_EQ(one.mask, (std::vector<uint8_t>{1, 1, 0, 0, 1, 0, 1, 0}));

  const PixelBatch two = PadBatch(std::vector<std::vector<PixelImage>>{{a}, {a, b}});
  EXPECT_EQ(two.batch, 2);
  EXPECT_EQ(two.n_images, 2);
  ASSERT_EQ(two.pixel_values.size(), 2u * 2 * 3 * 4);
  // Sample 0, slot 1 is a padding image: all zero values and mask.
  for (int i = 12; i < 24; ++i) EXPECT_EQ(two.pixel_values[i], 0.0f);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(two.mask[i], 0);
  EXPECT_EQ(two.pixel_values[24 + 12], 7.0f);

  const PixelBatch none = PadBatch(std::vector<PixelImage>{});
  EXPECT_EQ(none.n_images, 0);
  EXPECT_TRUE(none.pixel_values.empty());
}

}  // namespace
}  // namespace idefics
