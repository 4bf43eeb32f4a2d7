// Image data passed between the image processor and the vision encoder.
#pragma once

#include <cstdint>
#include <vector>

namespace idefics {

// 8-bit RGB pixels, row-major HWC (what decoding + RGB conversion produce).
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // [height, width, 3]
};

// One preprocessed (sub-)image, unpadded: normalized float32, channels-first. With image splitting one input
// image becomes 5 of these (4 crops, then the whole image).
struct PixelImage {
  int width = 0;
  int height = 0;
  std::vector<float> chw;  // [3, height, width]
};

}  // namespace idefics
