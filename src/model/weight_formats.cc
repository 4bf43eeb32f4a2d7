// Weight format planning and row conversion (see weight_formats.h).
#include "model/weight_formats.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "tensor/dtype.h"

namespace idefics {

StatusOr<WeightFormat> ParseWeightFormat(const std::string& s) {
  if (s == "f32" || s == "float32") return WeightFormat::kF32;
  if (s == "bf16" || s == "bfloat16") return WeightFormat::kBF16;
  if (s == "f16" || s == "float16") return WeightFormat::kF16;
  if (s == "q8_0") return WeightFormat::kQ8_0;
  if (s == "q4_0") return WeightFormat::kQ4_0;
  return InvalidArgument("unknown weights dtype '" + s + "' (expected f32, bf16, f16, q8_0 or q4_0)");
}

bool IsBlockFormat(WeightFormat f) {
  return f == WeightFormat::kQ8_0 || f == WeightFormat::kQ4_0;
}

WeightFormat PlanMatrixFormat(const std::string& name, int64_t cols, WeightFormat requested,
                              WeightFormat side) {
  if (!IsBlockFormat(requested)) return requested;
  if (cols % 32 != 0) return WeightFormat::kBF16;  // no partial blocks in the row layout
  if (name.rfind("model.text_model.layers.", 0) == 0) return requested;
  return side;  // vision tower, connector, lm_head (or a tied embed_tokens head)
}

void ConvertMatrixRows(const TensorInfo& t, int64_t rows, int64_t cols, WeightFormat format, uint8_t* dst,
                       ThreadPool* pool) {
  IDEFICS_CHECK(rows * cols == t.numel());
  IDEFICS_CHECK(IsFloat(t.dtype) && t.dtype != DType::kF64);
  const size_t es = DTypeSize(t.dtype);
  const size_t rb = WeightRowBytes(format, cols);
  auto run = [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<uint8_t> raw(static_cast<size_t>(cols) * es);
    for (int64_t r = r0; r < r1; ++r) {
      // Copy first: shards may place a tensor at any byte offset, so the source can be misaligned.
      std::memcpy(raw.data(), t.data + static_cast<size_t>(r) * cols * es, raw.size());
      ConvertToF32(t.dtype, raw.data(), row.data(), cols);
      uint8_t* out = dst + static_cast<size_t>(r) * rb;
      switch (format) {
        case WeightFormat::kF32:
          std::memcpy(out, row.data(), rb);
          break;
        case WeightFormat::kBF16:
        case WeightFormat::kF16: {
          auto* o = reinterpret_cast<uint16_t*>(out);
          for (int64_t j = 0; j < cols; ++j)
            o[j] = format == WeightFormat::kBF16 ? F32ToBf16(row[j]) : F32ToF16(row[j]);
          break;
        }
        case WeightFormat::kQ8_0:
          QuantizeRowQ8_0(row.data(), cols, out);
          break;
        case WeightFormat::kQ4_0:
          QuantizeRowQ4_0(row.data(), cols, out);
          break;
      }
    }
  };
  // Rows are independent, so splitting them over threads cannot change a byte.
  const int64_t grain = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, cols));
  if (pool && rows * cols >= (1 << 16)) {
    pool->ParallelFor(rows, grain, run);
  } else {
    run(0, rows);
  }
}

void ReleaseSourcePages(const TensorInfo& t) {
  ReleaseMappedPages(t.data, t.nbytes);
}

void ReleaseMappedPages(const void* data, size_t nbytes) {
  AdviseMappedPages(data, nbytes, MADV_DONTNEED);
}

void AdviseMappedPages(const void* data, size_t nbytes, int advice) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(data) + nbytes) / page * page;
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, advice);
}

}  // namespace idefics
