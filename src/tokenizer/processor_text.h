// The text half of the Idefics2 processor: expands each <image> placeholder into the image-token sequence
// the model expects, then tokenizes. Mirrors transformers' Idefics2Processor.__call__ (text part).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idefics/status.h"

namespace idefics::tokenizer {

class Tokenizer;

struct ProcessorTextConfig {
  int image_seq_len = 64;           // processor_config.json (perceiver latents per image)
  bool do_image_splitting = false;  // preprocessor_config.json (each image -> 4 crops + the whole image)
  std::string image_token = "<image>";
  std::string fake_image_token = "<fake_token_around_image>";
};

// Reads image_seq_len from processor_config.json (required) and do_image_splitting from
// preprocessor_config.json (optional, default false).
StatusOr<ProcessorTextConfig> LoadProcessorTextConfig(const std::string& model_dir);

// Number of non-overlapping occurrences of `image_token` in `prompt`.
int CountImageTokens(std::string_view prompt, std::string_view image_token = "<image>");

// Replaces every `image_token` by F + image_token x image_seq_len + F (that string x 5 when
// `image_splitting`), F = `fake_token`, then every "FF" by "F" (one left-to-right pass), exactly as
// Idefics2Processor. InvalidArgument (naming both counts) when the number of placeholders differs from
// `n_images`, or when image_seq_len < 1.
StatusOr<std::string> ExpandImageTokens(std::string_view prompt, int n_images, int image_seq_len,
                                        bool image_splitting, std::string_view image_token = "<image>",
                                        std::string_view fake_token = "<fake_token_around_image>");

// ExpandImageTokens with `config`, then Tokenizer::Encode with BOS as the tokenizer's add_bos_token says:
// the processor's input_ids for one sample.
StatusOr<std::vector<int32_t>> ProcessText(const Tokenizer& tokenizer, std::string_view prompt, int n_images,
                                           const ProcessorTextConfig& config);

}  // namespace idefics::tokenizer
