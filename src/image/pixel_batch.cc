// Zero padding to the batch maximum and the pixel attention mask (Idefics2ImageProcessor.pad).
#include "image/pixel_batch.h"

#include <algorithm>

#include "core/check.h"

namespace idefics {

PixelBatch PadBatch(const std::vector<PixelImage>& images) {
  return PadBatch(std::vector<std::vector<PixelImage>>{images});
}

PixelBatch PadBatch(const std::vector<std::vector<PixelImage>>& samples) {
  PixelBatch b;
  b.batch = static_cast<int>(samples.size());
  for (const auto& s : samples) {
    b.n_images = std::max(b.n_images, static_cast<int>(s.size()));
    for (const PixelImage& im : s) {
      IDEFICS_CHECK(im.chw.size() == static_cast<size_t>(3) * im.height * im.width);
      b.height = std::max(b.height, im.height);
      b.width = std::max(b.width, im.width);
    }
  }
  const size_t H = b.height, W = b.width, plane = H * W;
  // Padding is 0.0 in normalized space (mid-gray), and missing image slots are all zero.
  b.pixel_values.assign(static_cast<size_t>(b.batch) * b.n_images * 3 * plane, 0.0f);
  b.mask.assign(static_cast<size_t>(b.batch) * b.n_images * plane, 0);
  for (size_t s = 0; s < samples.size(); ++s) {
    for (size_t i = 0; i < samples[s].size(); ++i) {
      const PixelImage& im = samples[s][i];
      const size_t slot = s * b.n_images + i;
      float* dst = &b.pixel_values[slot * 3 * plane];  // [3, H, W]
      uint8_t* m = &b.mask[slot * plane];              // [H, W]
      for (int c = 0; c < 3; ++c) {
        for (int y = 0; y < im.height; ++y) {
          const float* src = &im.chw[(static_cast<size_t>(c) * im.height + y) * im.width];
          std::copy(src, src + im.width, dst + c * plane + y * W);
        }
      }
      for (int y = 0; y < im.height; ++y) std::fill(m + y * W, m + y * W + im.width, uint8_t{1});
    }
  }
  return b;
}

}  // namespace idefics
