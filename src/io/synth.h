// Synthetic model folders: random weights at real idefics2-8b (or reduced) dimensions, written as a hub-style
// folder so every command loads them like a download. For benchmarks on machines without the real weights.
#pragma once

#include <cstdint>
#include <string>

#include "idefics/status.h"
#include "io/model_config.h"
#include "tensor/dtype.h"

namespace idefics {

struct SynthOptions {
  std::string preset = "idefics2-8b";  // "idefics2-8b" or "tiny"
  int64_t text_layers = -1;            // override the decoder depth (-1: keep the preset's)
  int64_t vision_layers = -1;          // override the vision depth (-1: keep)
  DType dtype = DType::kBF16;          // F32, BF16 or F16
  uint64_t seed = 1234;
};

// The config.json text of a preset (with overrides applied).
StatusOr<std::string> SynthConfigJson(const SynthOptions& opts);

// Writes config.json, generation_config.json, preprocessor_config.json, processor_config.json and
// model.safetensors into `out_dir` (created if needed). Weights ~ U(-a, a) with variance 1/fan_in for matrices
// (the golden models' scale), norms ~1, biases small, embeddings unit variance. Streams tensor by tensor.
Status WriteSynthFolder(const std::string& out_dir, const SynthOptions& opts);

}  // namespace idefics
