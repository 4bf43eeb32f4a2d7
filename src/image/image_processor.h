// The Idefics2 image processor on decoded RGB images: optional split into 4 crops + the whole image, resize
// by the shortest/longest-edge rule with Pillow's resampling, rescale + normalize through an exact float32
// LUT. Mirrors transformers' Idefics2ImageProcessor (the PIL-based "slow" processor).
#pragma once

#include <array>
#include <vector>

#include "image/image_types.h"
#include "image/resize.h"
#include "io/model_config.h"

namespace idefics {

// get_resize_output_image_size: double-precision aspect ratio, truncation, then independent min clamps.
// Returns {height, width}.
struct HeightWidth {
  int height = 0;
  int width = 0;
};
HeightWidth Idefics2ResizeOutputSize(int height, int width, int64_t shortest_edge, int64_t longest_edge);

class ImageProcessor {
 public:
  explicit ImageProcessor(const PreprocessorConfig& config);

  // One input image -> its sub-images, unpadded, in order: with `split` top-left, top-right, bottom-left,
  // bottom-right crops (at height/2, width/2, floor), then the whole image; without, just the whole image.
  // The image must be non-empty (decoded images always are). An image 1 pixel wide or high has an empty
  // half-crop in transformers (which then fails); we use the whole extent on that axis instead.
  std::vector<PixelImage> Process(const RgbImage& image, bool split) const;
  // Same, splitting as the config says (do_image_splitting).
  std::vector<PixelImage> Process(const RgbImage& image) const {
    return Process(image, config_.do_image_splitting);
  }

  // Sub-images per input image (5 with splitting, else 1).
  static int ImagesPerInput(bool split) { return split ? 5 : 1; }

  const PreprocessorConfig& config() const { return config_; }
  // value -> normalized float for channel c (rescale then normalize, both as numpy does them).
  float Normalized(int channel, uint8_t value) const { return lut_[channel][value]; }

 private:
  PixelImage ResizeAndNormalize(const RgbImage& piece) const;

  PreprocessorConfig config_;
  ResampleFilter filter_ = ResampleFilter::kBilinear;
  std::array<std::array<float, 256>, 3> lut_{};  // [channel][uint8 value]
};

}  // namespace idefics
