// Idefics2ImageProcessor.preprocess for one image: split -> resize (Pillow) -> rescale -> normalize -> CHW.
// Mirrors transformers/models/idefics2/image_processing_idefics2.py (v4.40-v4.45 behaviour).
#include "image/image_processor.h"

#include <algorithm>

#include "core/check.h"

namespace idefics {

HeightWidth Idefics2ResizeOutputSize(int height, int width, int64_t shortest_edge, int64_t longest_edge) {
  // Python: aspect_ratio = width / height (double); int() truncates toward zero. Keep the double expression
  // max_len / aspect: the integer form max_len*h/w can differ (e.g. 489.99999... truncates to 489).
  const double aspect = static_cast<double>(width) / static_cast<double>(height);
  int64_t h = height, w = width;
  if (w >= h && w > longest_edge) {
    w = longest_edge;
    h = static_cast<int64_t>(static_cast<double>(w) / aspect);
  } else if (h > w && h > longest_edge) {
    h = longest_edge;
    w = static_cast<int64_t>(static_cast<double>(h) * aspect);
  }
  // Independent clamps: the aspect ratio is not kept for small images (200x100 -> 378x378).
  h = std::max(h, shortest_edge);
  w = std::max(w, shortest_edge);
  return {static_cast<int>(h), static_cast<int>(w)};
}

ImageProcessor::ImageProcessor(const PreprocessorConfig& config) : config_(config) {
  // Unknown resample values fall back to BILINEAR (Idefics2's value); PreprocessorConfig::Load validates.
  if (!ResampleFilterFromPil(config_.resample, &filter_)) filter_ = ResampleFilter::kBilinear;
  for (int c = 0; c < 3; ++c) {
    const auto pick = [c](const std::vector<double>& v, double dflt) {
      if (v.empty()) return dflt;
      return v.size() == 1 ? v[0] : v[std::min<size_t>(c, v.size() - 1)];
    };
    // numpy casts mean/std to the image dtype (float32) before (x - mean) / std.
    const float mean = static_cast<float>(pick(config_.image_mean, 0.5));
    const float std_ = static_cast<float>(pick(config_.image_std, 0.5));
    for (int u = 0; u < 256; ++u) {
      // rescale: uint8 * python float is computed in float64, then cast to float32.
      float x = config_.do_rescale ? static_cast<float>(static_cast<double>(u) * config_.rescale_factor)
                                   : static_cast<float>(u);
      // normalize in float32: (x - 0.5f) / 0.5f, which is not the same as u / 127.5 - 1.
      if (config_.do_normalize) x = (x - mean) / std_;
      lut_[c][u] = x;
    }
  }
}

namespace {

// Rows [y0, y1) x columns [x0, x1) of an RGB image.
RgbImage Crop(const RgbImage& img, int x0, int y0, int x1, int y1) {
  RgbImage out;
  out.width = x1 - x0;
  out.height = y1 - y0;
  out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y) {
    const uint8_t* src = &img.pixels[(static_cast<size_t>(y0 + y) * img.width + x0) * 3];
    std::copy(src, src + static_cast<size_t>(out.width) * 3,
              &out.pixels[static_cast<size_t>(y) * out.width * 3]);
  }
  return out;
}

}  // namespace

PixelImage ImageProcessor::ResizeAndNormalize(const RgbImage& piece) const {
  const RgbImage* src = &piece;
  RgbImage resized;
  if (config_.do_resize) {
    const HeightWidth hw =
        Idefics2ResizeOutputSize(piece.height, piece.width, config_.shortest_edge, config_.longest_edge);
    if (hw.height != piece.height || hw.width != piece.width) {
      resized = ResizePillow(piece, hw.width, hw.height, filter_);
      src = &resized;
    }
  }
  PixelImage out;
  out.width = src->width;
  out.height = src->height;
  const size_t plane = static_cast<size_t>(out.width) * out.height;
  out.chw.resize(3 * plane);              // [3, height, width]
  const uint8_t* p = src->pixels.data();  // [height, width, 3]
  for (size_t i = 0; i < plane; ++i, p += 3) {
    out.chw[i] = lut_[0][p[0]];
    out.chw[plane + i] = lut_[1][p[1]];
    out.chw[2 * plane + i] = lut_[2][p[2]];
  }
  return out;
}

std::vector<PixelImage> ImageProcessor::Process(const RgbImage& image, bool split) const {
  IDEFICS_CHECK(image.width > 0 && image.height > 0);
  IDEFICS_CHECK(image.pixels.size() == static_cast<size_t>(image.width) * image.height * 3);
  std::vector<PixelImage> out;
  if (split) {
    // Split before resizing, at floor(w/2), floor(h/2); the right/bottom crops get the odd row/column.
    const int w = image.width, h = image.height;
    const int mw = w / 2, mh = h / 2;
    // An axis of length 1 has an empty first half; use the whole axis there (see the header).
    const int left_end = mw > 0 ? mw : w, top_end = mh > 0 ? mh : h;
    out.push_back(ResizeAndNormalize(Crop(image, 0, 0, left_end, top_end)));
    out.push_back(ResizeAndNormalize(Crop(image, mw, 0, w, top_end)));
    out.push_back(ResizeAndNormalize(Crop(image, 0, mh, left_end, h)));
    out.push_back(ResizeAndNormalize(Crop(image, mw, mh, w, h)));
  }
  out.push_back(ResizeAndNormalize(image));
  return out;
}

}  // namespace idefics
