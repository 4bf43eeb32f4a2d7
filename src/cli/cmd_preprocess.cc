// idefics preprocess: decode images, run the Idefics2 image processor and write pixel_values /
// pixel_attention_mask (one sample) to a safetensors file. Parses flags and formats only.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/parse_flags.h"
#include "image/decode.h"
#include "image/image_processor.h"
#include "image/pixel_batch.h"
#include "io/model_config.h"
#include "io/safetensors.h"

namespace idefics::cli {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "idefics preprocess: %s\n", message.c_str());
  return 1;
}

}  // namespace

int RunPreprocess(int argc, char** argv) {
  CLI::App app{
      "Run the Idefics2 image processor on images and write pixel_values (F32 [1, N, 3, H, W]) and "
      "pixel_attention_mask (U8 [1, N, H, W]) to a safetensors file.",
      "idefics preprocess"};
  std::string model_dir, out_path, alpha = "composite";
  std::vector<std::string> images;
  bool split = false, no_split = false, no_exif = false;
  int64_t max_pixels = kDefaultMaxImagePixels;
  app.add_option("--model", model_dir, "model folder (its preprocessor_config.json is used)")->required();
  app.add_option("--image", images, "image file (PNG, JPEG or WebP); repeat for several, kept in order")
      ->required()
      ->take_all();
  CLI::Option* split_opt = app.add_flag("--split", split, "split each image into 4 crops + the whole image");
  CLI::Option* no_split_opt =
      app.add_flag("--no-split", no_split, "do not split (default: do_image_splitting)");
  split_opt->excludes(no_split_opt);
  app.add_option("--out", out_path, "output .safetensors file (written atomically)")->required();
  app.add_option("--max-pixels", max_pixels, "refuse images with more pixels than this")
      ->check(IntegerIn(1, INT64_MAX))
      ->capture_default_str();
  app.add_option("--alpha", alpha,
                 "transparency: 'composite' over white (Idefics2ImageProcessor) or 'drop' (load_image)")
      ->check(CLI::IsMember({"composite", "drop"}))
      ->capture_default_str();
  app.add_flag("--no-exif", no_exif, "ignore the EXIF Orientation tag");
  if (std::optional<int> rc = ParseFlags(app, argc, argv)) return *rc;

  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) return Fail(model_dir + ": model folder does not exist");
  auto config = PreprocessorConfig::Load(model_dir);
  if (!config.ok()) return Fail(config.status().message());
  const bool do_split = split ? true : (no_split ? false : config->do_image_splitting);

  DecodeOptions opts;
  opts.alpha = alpha == "drop" ? AlphaMode::kDrop : AlphaMode::kCompositeOnWhite;
  opts.apply_exif_orientation = !no_exif;
  opts.max_pixels = max_pixels;
  const ImageProcessor processor(*config);
  std::vector<PixelImage> pieces;
  for (const std::string& path : images) {
    auto img = DecodeImageFile(path, opts);
    if (!img.ok()) return Fail(img.status().message());
    for (PixelImage& p : processor.Process(*img, do_split)) pieces.push_back(std::move(p));
  }
  const PixelBatch batch = PadBatch(pieces);
  const std::vector<TensorToWrite> tensors = {
      {"pixel_values",
       DType::kF32,
       {1, batch.n_images, 3, batch.height, batch.width},
       batch.pixel_values.data(),
       nullptr},
      {"pixel_attention_mask",
       DType::kU8,
       {1, batch.n_images, batch.height, batch.width},
       batch.mask.data(),
       nullptr},
  };
  Status st = WriteSafetensors(out_path, tensors, {{"format", "pt"}});
  if (!st.ok()) return Fail(st.message());
  std::fprintf(stderr, "idefics preprocess: %zu image(s) -> %d sub-image(s) of up to %dx%d (HxW) -> %s\n",
               images.size(), batch.n_images, batch.height, batch.width, out_path.c_str());
  return 0;
}

}  // namespace idefics::cli
