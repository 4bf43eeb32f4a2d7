// `idefics preprocess` from the outside: the written safetensors file equals the golden image-processor
// output bit for bit; bad input gives exit code 1 and a message naming the file.
#include <gtest/gtest.h>

#include <cstring>

#include "io/safetensors.h"
#include "support/golden.h"

namespace idefics {
namespace {

std::string Cli(const std::string& args) {
  return test::CliPath() + " preprocess " + args + " 2>&1";
}

void ExpectSameTensor(const SafetensorsFile& got, const SafetensorsFile& want, const std::string& name) {
  const TensorInfo* a = got.Find(name);
  const TensorInfo* b = want.Find(name);
  ASSERT_NE(a, nullptr) << name;
  ASSERT_NE(b, nullptr) << name;
  EXPECT_EQ(a->dtype, b->dtype) << name;
  EXPECT_EQ(a->shape, b->shape) << name;
  ASSERT_EQ(a->nbytes, b->nbytes) << name;
  EXPECT_EQ(std::memcmp(a->data, b->data, a->nbytes), 0) << name << " differs";
}

// The preprocess output at `path` holds the golden file's pixel_values and pixel_attention_mask exactly.
void ExpectSameAsGolden(const std::string& path, const std::string& golden_relpath) {
  auto got = SafetensorsFile::Open(path);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto want = test::OpenGolden(golden_relpath);
  ASSERT_NE(want, nullptr);
  ExpectSameTensor(**got, *want, "pixel_values");
  ExpectSameTensor(**got, *want, "pixel_attention_mask");
}

TEST(PreprocessCli, SplitJpegMatchesGoldenBitForBit) {
  const std::string dir = test::MakeTempDir("ppcli");
  const std::string g = test::GoldenDir();
  std::string out;
  const int rc = test::RunCommand(Cli("--model " + g + "/models/idefics2-tiny-a --image " + g +
                                      "/images/photo_320x240.jpg --split --out " + dir + "/out.safetensors"),
                                  &out);
  ASSERT_EQ(rc, 0) << out;
  ExpectSameAsGolden(dir + "/out.safetensors", "image_processor/ip03_photo_jpg_split.safetensors");
}

TEST(PreprocessCli, SeveralImagesInOrderWithConfigDefaultSplitting) {
  const std::string dir = test::MakeTempDir("ppcli");
  const std::string g = test::GoldenDir();
  std::string out;
  // The tiny model's config has do_image_splitting=false, as ip06 (RGBA + palette, composite over white).
  const int rc = test::RunCommand(
      Cli("--model " + g + "/models/idefics2-tiny-a --image " + g + "/images/rgba_300x200.png --image " + g +
          "/images/palette_250x100.png --out " + dir + "/o.safetensors"),
      &out);
  ASSERT_EQ(rc, 0) << out;
  ExpectSameAsGolden(dir + "/o.safetensors", "image_processor/ip06_rgba_and_palette.safetensors");
}

TEST(PreprocessCli, ErrorsExitOneAndNameTheFile) {
  const std::string dir = test::MakeTempDir("ppcli");
  const std::string g = test::GoldenDir();
  std::string out;
  int rc = test::RunCommand(Cli("--model " + g + "/models/idefics2-tiny-a --image " + dir +
                                "/missing.png --out " + dir + "/o.safetensors"),
                            &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("missing.png"), std::string::npos) << out;
  rc = test::RunCommand(Cli("--model " + g + "/models/idefics2-tiny-a --image " + g +
                            "/images/tall_400x1003.png --max-pixels 1000 --out " + dir + "/o.safetensors"),
                        &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("tall_400x1003.png"), std::string::npos) << out;
  EXPECT_NE(out.find("limit"), std::string::npos) << out;
  rc =
      test::RunCommand(Cli("--model " + g + "/models/idefics2-tiny-a --out " + dir + "/o.safetensors"), &out);
  EXPECT_EQ(rc, 1);  // --image is required
  rc = test::RunCommand(Cli("--model " + dir + "/no_model --image " + g + "/images/tiny_17x9.png --out " +
                            dir + "/o.safetensors"),
                        &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("no_model"), std::string::npos) << out;
  // Nothing half-written was left behind.
  auto f = SafetensorsFile::Open(dir + "/o.safetensors");
  EXPECT_FALSE(f.ok());
}

}  // namespace
}  // namespace idefics
