// The model folder's configuration files as structs, field names as in the JSON. Missing fields take the
// defaults of the transformers classes (Idefics2VisionConfig, Idefics2PerceiverConfig, MistralConfig,
// Idefics2Config, Idefics2ImageProcessor, Idefics2Processor, GenerationConfig).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "idefics/status.h"

namespace idefics {

struct VisionConfig {                      // Idefics2VisionConfig
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 32;
  std::string hidden_act = "gelu_pytorch_tanh";
  double layer_norm_eps = 1e-6;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t num_patches_per_side() const { return image_size / patch_size; }
};

struct PerceiverConfig {                   // Idefics2PerceiverConfig
  std::string hidden_act = "silu";
  int64_t hidden_size = 4096;              // forced to the text hidden size (see Idefics2Config)
  double rms_norm_eps = 1e-6;
  int64_t resampler_n_latents = 64;
  int64_t resampler_depth = 3;
  int64_t resampler_n_heads = 16;
  int64_t resampler_head_dim = 96;
  int64_t num_key_value_heads = 4;
};

struct TextConfig {                        // MistralConfig (as Idefics2Config builds it)
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 14336;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 8;
  int64_t head_dim = 0;                    // 0 in JSON/absent -> hidden_size / num_attention_heads
  std::string hidden_act = "silu";
  int64_t max_position_embeddings = 4096 * 32;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<int64_t> sliding_window = 4096;  // null -> no window
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  std::optional<int64_t> pad_token_id;
  bool tie_word_embeddings = false;
};

struct Idefics2Config {
  VisionConfig vision;
  PerceiverConfig perceiver;
  TextConfig text;
  int64_t image_token_id = 32001;
  bool tie_word_embeddings = false;
  std::string torch_dtype;                 // informational ("float32", "bfloat16")

  // Reads <dir>/config.json. Errors name the file and the field.
  static StatusOr<Idefics2Config> Load(const std::string& dir);
  static StatusOr<Idefics2Config> Parse(const std::string& json_text, const std::string& source_name);
  Status Validate() const;
};

struct GenerationConfig {
  int64_t bos_token_id = 1;
  std::vector<int64_t> eos_token_ids;      // int or list in JSON
  std::optional<int64_t> pad_token_id;
  std::vector<std::vector<int64_t>> bad_words_ids;
  std::optional<int64_t> max_new_tokens;
  std::optional<int64_t> max_length;
  bool do_sample = false;
  std::optional<double> temperature, top_p, repetition_penalty;
  std::optional<int64_t> top_k;

  // Missing file -> defaults (eos from the text config is filled in by the caller).
  static StatusOr<GenerationConfig> Load(const std::string& dir);
};

struct PreprocessorConfig {                // Idefics2ImageProcessor
  bool do_convert_rgb = true;
  bool do_resize = true;
  int64_t shortest_edge = 378;
  int64_t longest_edge = 980;
  int resample = 2;                        // PIL BILINEAR
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::vector<double> image_mean = {0.5, 0.5, 0.5};
  std::vector<double> image_std = {0.5, 0.5, 0.5};
  bool do_pad = true;
  bool do_image_splitting = false;

  static StatusOr<PreprocessorConfig> Load(const std::string& dir);
};

struct ProcessorConfig {                   // Idefics2Processor
  int64_t image_seq_len = 64;
  std::string chat_template;               // from processor_config.json or chat_template.json ("" if none)

  static StatusOr<ProcessorConfig> Load(const std::string& dir);
};

// Everything a model folder says about itself (weights are opened separately).
struct ModelFolder {
  std::string dir;
  Idefics2Config config;
  GenerationConfig generation;
  PreprocessorConfig preprocessor;
  ProcessorConfig processor;

  static StatusOr<ModelFolder> Load(const std::string& dir);
};

}  // namespace idefics
