// Matrix products against weight matrices stored in any supported format. The one entry point the model
// uses for every Linear layer: y[M, N] = x[M, K] · Wᵀ (+ bias), W stored row-major [N, K] like nn.Linear.
#pragma once

#include <cstddef>
#include <cstdint>

namespace idefics {

class ThreadPool;

enum class WeightFormat : uint8_t {
  kF32,   // float32
  kBF16,  // bfloat16 (products accumulated in float32)
  kF16,   // float16
  kQ8_0,  // blocks of 32: f16 scale + 32 int8 (34 bytes)
  kQ4_0,  // blocks of 32: f16 scale + 16 bytes of 4-bit values (18 bytes), value = (q - 8) * scale
};

const char* WeightFormatName(WeightFormat f);
// Bytes of one row of `cols` elements (cols must be a multiple of 32 for the block formats).
size_t WeightRowBytes(WeightFormat f, int64_t cols);

// A view of a weight matrix; the bytes are owned elsewhere (an mmapped file or a converted buffer).
struct WeightMatrix {
  WeightFormat format = WeightFormat::kF32;
  int64_t rows = 0;  // N: output features
  int64_t cols = 0;  // K: input features
  const void* data = nullptr;

  size_t row_bytes() const { return WeightRowBytes(format, cols); }
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(); }
};

// y[M, N] = x[M, K] · Wᵀ + bias[N] (bias may be null). x and y are row-major float32 and must not alias.
// Uses the pool when given. Results are independent of the thread count.
void MatMul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, ThreadPool* pool);

// Reference (scalar) implementation; SIMD paths are tested against it.
void MatMulRef(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);

// Dequantizes row r of W into out[cols] as float32.
void DequantizeRow(const WeightMatrix& w, int64_t r, float* out);

}  // namespace idefics
