// Idefics2ImageProcessor parity: every golden case in tests/data/golden/image_processor must match bit for
// bit (pixel_values float32 bits, pixel_attention_mask, and the uint8 decode/convert debugging arrays).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "image/decode.h"
#include "image/image_processor.h"
#include "image/pixel_batch.h"
#include "io/model_config.h"
#include "support/golden.h"

namespace idefics {
namespace {

using json = nlohmann::json;

json LoadCases() {
  std::ifstream f(test::GoldenDir() + "/cases.json");
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  EXPECT_FALSE(j.is_discarded());
  return j;
}

// Reads a golden U8 tensor; empty when missing.
std::vector<uint8_t> GoldenU8(const SafetensorsFile& f, const std::string& name,
                              std::vector<int64_t>* shape) {
  const TensorInfo* t = f.Find(name);
  if (!t) return {};
  EXPECT_EQ(t->dtype, DType::kU8) << name;
  if (shape) *shape = t->shape;
  return std::vector<uint8_t>(t->data, t->data + t->nbytes);
}

// Bit-exact float comparison; the failure names the first differing element as [b, i, c, y, x].
::testing::AssertionResult SameBits(const std::vector<float>& got, const std::vector<float>& want,
                                    const std::vector<int64_t>& shape) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "size " << got.size() << " vs golden " << want.size();
  }
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      if (!bad) first = i;
      ++bad;
    }
  }
  if (!bad) return ::testing::AssertionSuccess();
  std::vector<int64_t> idx(shape.size());
  size_t r = first;
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = static_cast<int64_t>(r % shape[d]);
    r /= shape[d];
  }
  auto f = ::testing::AssertionFailure() << bad << " of " << got.size() << " values differ; first at [";
  for (size_t d = 0; d < idx.size(); ++d) f << (d ? "," : "") << idx[d];
  return f << "]: " << got[first] << " vs golden " << want[first];
}

::testing::AssertionResult SameImage(const RgbImage& img, const std::vector<uint8_t>& want,
                                     const std::vector<int64_t>& shape) {
  if (shape != std::vector<int64_t>{img.height, img.width, 3}) {
    return ::testing::AssertionFailure() << "size " << img.height << "x" << img.width << " vs golden shape";
  }
  for (size_t i = 0; i < want.size(); ++i) {
    if (img.pixels[i] != want[i]) {
      return ::testing::AssertionFailure()
             << "first difference at y=" << i / 3 / img.width << " x=" << i / 3 % img.width << " c=" << i % 3
             << ": " << int(img.pixels[i]) << " vs golden " << int(want[i]);
    }
  }
  return ::testing::AssertionSuccess();
}

class ImageProcessorGolden : public ::testing::TestWithParam<int> {};

TEST_P(ImageProcessorGolden, BitExact) {
  const json cases = LoadCases();
  const json& c = cases["image_processor_cases"][GetParam()];
  const std::string name = c["name"];
  SCOPED_TRACE(name);
  auto cfg = PreprocessorConfig::Load(test::GoldenDir() + "/models/idefics2-tiny-a");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  const bool split = c["call_kwargs"].value("do_image_splitting", cfg->do_image_splitting);
  ImageProcessor proc(*cfg);
  auto golden = test::OpenGolden(c["file"].get<std::string>());
  ASSERT_NE(golden, nullptr);

  std::vector<std::vector<PixelImage>> samples;
  for (size_t s = 0; s < c["images"].size(); ++s) {
    samples.emplace_back();
    for (size_t i = 0; i < c["images"][s].size(); ++i) {
      const std::string path = test::GoldenDir() + "/" + c["images"][s][i].get<std::string>();
      auto img = DecodeImageFile(path, ImageProcessorDecodeOptions());
      ASSERT_TRUE(img.ok()) << img.status().ToString();
      const std::string suffix = "_s" + std::to_string(s) + "_i" + std::to_string(i);
      std::vector<int64_t> shape;
      // JPEG decode as Pillow/libjpeg-turbo does it.
      if (auto want = GoldenU8(*golden, "decoded_u8" + suffix, &shape); !want.empty()) {
        EXPECT_TRUE(SameImage(*img, want, shape)) << "decoded_u8" << suffix;
      }
      // convert_to_rgb (composite over white) and load_image (alpha dropped).
      if (auto want = GoldenU8(*golden, "converted_rgb_u8" + suffix, &shape); !want.empty()) {
        EXPECT_TRUE(SameImage(*img, want, shape)) << "converted_rgb_u8" << suffix;
      }
      if (auto want = GoldenU8(*golden, "load_image_rgb_u8" + suffix, &shape); !want.empty()) {
        auto dropped = DecodeImageFile(path, LoadImageDecodeOptions());
        ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
        EXPECT_TRUE(SameImage(*dropped, want, shape)) << "load_image_rgb_u8" << suffix;
      }
      for (PixelImage& p : proc.Process(*img, split)) samples.back().push_back(std::move(p));
    }
  }
  const PixelBatch batch = PadBatch(samples);
  const TensorInfo* pv = golden->Find("pixel_values");
  ASSERT_NE(pv, nullptr);
  const std::vector<int64_t> shape = {batch.batch, batch.n_images, 3, batch.height, batch.width};
  ASSERT_EQ(pv->shape, shape);
  EXPECT_TRUE(SameBits(batch.pixel_values, test::GoldenF32(*golden, "pixel_values"), shape));
  std::vector<int64_t> mshape;
  const std::vector<uint8_t> mask = GoldenU8(*golden, "pixel_attention_mask", &mshape);
  EXPECT_EQ(mshape, (std::vector<int64_t>{batch.batch, batch.n_images, batch.height, batch.width}));
  EXPECT_TRUE(batch.mask == mask) << "pixel_attention_mask differs";
}

INSTANTIATE_TEST_SUITE_P(AllCases, ImageProcessorGolden, ::testing::Range(0, 6),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return LoadCases()["image_processor_cases"][info.param]["name"].get<std::string>();
                         });

TEST(ImageProcessorGoldenIndex, HasSixCases) {
  EXPECT_EQ(LoadCases()["image_processor_cases"].size(), 6u);
}

}  // namespace
}  // namespace idefics
