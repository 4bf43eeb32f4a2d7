// Padding preprocessed images into the processor's batch tensors: pixel_values (0.0 padding, bottom/right)
// and pixel_attention_mask. Mirrors Idefics2ImageProcessor.pad.
#pragma once

#include <cstdint>
#include <vector>

#include "image/image_types.h"

namespace idefics {

struct PixelBatch {
  int batch = 0;                    // B (number of samples)
  int n_images = 0;                 // max images per sample
  int height = 0;                   // H: max height over the whole batch
  int width = 0;                    // W: max width over the whole batch
  std::vector<float> pixel_values;  // [B, n_images, 3, H, W]
  std::vector<uint8_t> mask;        // [B, n_images, H, W] pixel_attention_mask: 1 = real pixel, 0 = padding
};

// One sample: [1, N, 3, H, W].
PixelBatch PadBatch(const std::vector<PixelImage>& images);
// Several samples, each with its own image list; samples with fewer than the max number of images get
// all-zero images with an all-zero mask in the missing slots.
PixelBatch PadBatch(const std::vector<std::vector<PixelImage>>& samples);

}  // namespace idefics
