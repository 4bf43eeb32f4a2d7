// The weight registry: every tensor an Idefics2 model needs, declared by name and shape from the config, so
// a checkpoint is checked in one pass and every missing, unexpected or mis-shaped tensor is reported at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "idefics/status.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "kernels/matmul.h"

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

// Quantized matrices in a folder written by `idefics quantize` are stored as U8 [rows, row_bytes] (the
// WeightMatrix row layout of matmul.h, used in place); the format and logical shape live in the file's
// __metadata__ under QuantizedLayoutKey(name) = "q4_0:[rows,cols]". The folder-wide format is under
// kQuantFormatKey ("bf16", "q8_0", "q4_0") in every shard's metadata and in the index's "metadata".
inline constexpr char kQuantFormatKey[] = "idefics_quant";

struct QuantizedLayout {
  WeightFormat format = WeightFormat::kQ8_0;
  int64_t rows = 0;
  int64_t cols = 0;
};

std::string QuantizedLayoutKey(const std::string& tensor_name);    // "idefics.<name>"
std::string QuantizedLayoutValue(const QuantizedLayout& layout);   // "q8_0:[rows,cols]"

// The declared layout of t (nullopt when its file declares none). InvalidArgument, naming the tensor, when
// the declaration does not parse, is not a block format, cols is not a multiple of 32, or the stored tensor
// is not U8 [rows, WeightRowBytes(format, cols)].
StatusOr<std::optional<QuantizedLayout>> FindQuantizedLayout(const TensorStore& store, const TensorInfo& t);

// The folder-wide kQuantFormatKey of the store's files ("" when absent, e.g. an original hub checkpoint).
std::string StoreQuantFormat(const TensorStore& store);

// Checks a tensor store against the specs: float dtypes (F32/BF16/F16, or a quantized layout that
// `quantized_ok` accepts for matrices) and exact shapes. Unexpected tensors are errors too.
// The message lists every problem, one per line, with expected vs actual shapes.
Status CheckWeights(const TensorStore& store, const std::vector<WeightSpec>& specs);

}  // namespace idefics
