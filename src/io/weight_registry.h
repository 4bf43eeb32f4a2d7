// The weight registry: every tensor an Idefics2 model needs, declared by name and shape from the config, so
// a checkpoint is checked in one pass and every missing, unexpected or mis-shaped tensor is reported at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "idefics/status.h"
#include "io/model_config.h"
#include "io/safetensors.h"

namespace idefics {

struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;
  bool is_matrix = false;  // a Linear weight (may be stored bf16 / quantized); otherwise a vector or table
};

// All tensors of Idefics2ForConditionalGeneration for this config, in checkpoint order
// (vision -> connector -> text -> lm_head).
std::vector<WeightSpec> DeclareIdefics2Weights(const Idefics2Config& config);

int64_t CountParameters(const std::vector<WeightSpec>& specs);

// Checks a tensor store against the specs: float dtypes (F32/BF16/F16, or a quantized layout that
// `quantized_ok` accepts for matrices) and exact shapes. Unexpected tensors are errors too.
// The message lists every problem, one per line, with expected vs actual shapes.
Status CheckWeights(const TensorStore& store, const std::vector<WeightSpec>& specs);

}  // namespace idefics
