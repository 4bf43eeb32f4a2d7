// Which storage format each Idefics2 weight takes for a requested --weights-dtype, and the row-by-row
// conversion of a float tensor into that format. Mirrors no transformers class (llama.cpp-style block
// formats).
#pragma once

#include <cstdint>
#include <string>

#include "idefics/status.h"
#include "io/safetensors.h"
#include "kernels/matmul.h"

namespace idefics {

class ThreadPool;

// "f32"/"float32", "bf16"/"bfloat16", "f16"/"float16", "q8_0", "q4_0". The one parser of --weights-dtype
// (run, chat, serve, bench) and of `idefics quantize --type`.
StatusOr<WeightFormat> ParseWeightFormat(const std::string& s);

bool IsBlockFormat(WeightFormat f);

// The format for vision encoder, connector (modality projection + perceiver) and lm_head matrices when a
// block format is requested: these carry ~1.2 B of the 8 B parameters and the image path is the most
// sensitive to weight noise (docs/quantization.md measures it), so they get 8 bits even for q4_0.
inline constexpr WeightFormat kSideMatrixBlockFormat = WeightFormat::kQ8_0;

// The storage of the Linear weight `name` (a checkpoint tensor name) with `cols` input features when
// `requested` is asked for: float formats apply to every matrix; with q8_0/q4_0, text decoder layers get the
// requested format, the vision tower, connector and lm_head get kSideMatrixBlockFormat, and any matrix whose
// cols is not a multiple of 32 (idefics2-8b vision mlp.fc2, K = 4304) falls back to bf16. `side` replaces
// kSideMatrixBlockFormat (used to measure the alternatives in docs/quantization.md).
WeightFormat PlanMatrixFormat(const std::string& name, int64_t cols, WeightFormat requested,
                              WeightFormat side = kSideMatrixBlockFormat);

// Converts the float (F32/BF16/F16, any alignment) tensor t, viewed as [rows, cols], into rows of `format`
// (dst holds rows * WeightRowBytes(format, cols) bytes). f32/bf16/f16 targets round to nearest even like
// tensor.to(dtype); block targets use QuantizeRowQ8_0 / QuantizeRowQ4_0. Parallel over rows on the pool;
// the bytes do not depend on the thread count.
void ConvertMatrixRows(const TensorInfo& t, int64_t rows, int64_t cols, WeightFormat format, uint8_t* dst,
                       ThreadPool* pool);

// Drops the clean file-backed pages of t's mapping (whole pages inside the tensor only), so streaming a
// 33.6 GB float32 checkpoint through a conversion does not keep the source resident.
void ReleaseSourcePages(const TensorInfo& t);
// The same for any mapped range (whole pages inside [data, data + nbytes) only).
void ReleaseMappedPages(const void* data, size_t nbytes);
// madvise(advice) on the whole pages inside [data, data + nbytes) (advisory: errors are ignored).
void AdviseMappedPages(const void* data, size_t nbytes, int advice);

}  // namespace idefics
