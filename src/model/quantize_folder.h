// `idefics quantize`: converts a hub model folder to bf16 / f16 / q8_0 / q4_0 weights, written as a hub-style
// folder every command loads like the original (quantized matrices are mmapped and used in place).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "idefics/status.h"
#include "kernels/matmul.h"

namespace idefics {

class ThreadPool;

struct QuantizeFolderOptions {
  WeightFormat format = WeightFormat::kQ8_0;  // kBF16, kF16, kQ8_0 or kQ4_0 (planned per matrix like at load)
  // Vision tower / connector / lm_head format under a block `format` (PlanMatrixFormat's `side`).
  WeightFormat side_format = WeightFormat::kQ8_0;
  bool force = false;                             // replace a non-empty output folder
  uint64_t shard_bytes = 4000000000ull;           // a new shard starts when this would be exceeded
  ThreadPool* pool = nullptr;                     // row conversion (not owned); the bytes don't depend on it
  std::function<void(double fraction)> progress;  // 0..1 over the input bytes, may be empty
};

// What was written.
struct QuantizeFolderResult {
  uint64_t input_bytes = 0;   // tensor bytes read
  uint64_t output_bytes = 0;  // tensor bytes written
  int shards = 0;
};

// Reads in_dir (checked against its config like a load), writes out_dir: the config / generation /
// processor / chat template / tokenizer files that exist, and safetensors shards (model.safetensors when
// one shard suffices, else model-0000i-of-0000N.safetensors + model.safetensors.index.json). Tensors stream
// one at a time (peak memory ~ the largest output tensor, source pages released after use). Matrices take
// PlanMatrixFormat(name, cols, format); q8_0/q4_0 ones are stored as U8 [rows, row_bytes] with their layout
// in the shard's __metadata__ (io/weight_registry.h); embed_tokens becomes bf16 (kept as is when tied to the
// head under a block format, so the head quantizes from the original values); vectors keep their dtype.
// Atomic: everything is written into a sibling staging folder renamed into place at the end; on error
// nothing is left behind. Errors: missing/invalid input, an input already quantized, out_dir = in_dir,
// out_dir non-empty without force, float32 target.
StatusOr<QuantizeFolderResult> QuantizeModelFolder(const std::string& in_dir, const std::string& out_dir,
                                                   const QuantizeFolderOptions& options);

}  // namespace idefics
