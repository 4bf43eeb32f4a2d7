// Pillow's Image.resize on 8-bit RGB, reproduced bit for bit (separable fixed-point convolution, horizontal
// pass first into a uint8 intermediate, antialiased when shrinking). Mirrors Pillow's libImaging/Resample.c.
#pragma once

#include "image/image_types.h"

namespace idefics {

// The integer values are PIL's resample constants (preprocessor_config.json "resample").
enum class ResampleFilter {
  kNearest = 0,
  kLanczos = 1,
  kBilinear = 2,
  kBicubic = 3,
  kBox = 4,
  kHamming = 5,
};

// Maps a PIL resample constant to the filter; false for unknown values.
bool ResampleFilterFromPil(int value, ResampleFilter* out);

// Image.resize((out_w, out_h), filter, reducing_gap=None). Same size: a plain copy. out_w, out_h >= 1 and the
// input non-empty (internal invariants).
RgbImage ResizePillow(const RgbImage& img, int out_w, int out_h, ResampleFilter filter);

// The Idefics2 case: Image.resize(..., resample=BILINEAR).
inline RgbImage ResizeBilinearPillow(const RgbImage& img, int out_w, int out_h) {
  return ResizePillow(img, out_w, out_h, ResampleFilter::kBilinear);
}

}  // namespace idefics
