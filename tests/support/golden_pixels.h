// Golden image-processor outputs as the model consumes them: the padded pixel batch of a case converted to
// per-sample lists of unpadded PixelImages (padding images dropped, valid region = the pixel-mask rectangle).
#pragma once

#include <string>
#include <vector>

#include "image/image_types.h"
#include "io/safetensors.h"

namespace idefics::test {

// pixel_values [B, N, 3, H, W] + pixel_attention_mask [B, N, H, W] -> samples[b] = that sample's real images,
// each cropped to its mask rectangle. An image whose mask is all 0 (or whose pixels are all 0.0) is dropped.
std::vector<std::vector<PixelImage>> GoldenPixelImages(const SafetensorsFile& f,
                                                       const std::string& values_name = "pixel_values",
                                                       const std::string& mask_name = "pixel_attention_mask");

// The image-processor file (relative to GoldenDir()) cases.json names as pixel input of a model case,
// e.g. ("idefics2-tiny-a", "one_image") -> "image_processor/ip02_photo_jpg.safetensors"; "" when the case has
// no images (text_only) or is unknown.
std::string GoldenPixelInputsFile(const std::string& model, const std::string& case_name);

// The case's images, per sample (empty samples for text-only cases). Fails the test on read errors.
std::vector<std::vector<PixelImage>> GoldenCaseImages(const std::string& model, const std::string& case_name);

}  // namespace idefics::test
