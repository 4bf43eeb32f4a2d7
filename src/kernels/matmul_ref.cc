// Scalar reference matrix product for every weight format (the twin SIMD kernels are tested against).
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "tensor/dtype.h"

namespace idefics {

const char* WeightFormatName(WeightFormat f) {
  switch (f) {
    case WeightFormat::kF32: return "f32";
    case WeightFormat::kBF16: return "bf16";
    case WeightFormat::kF16: return "f16";
    case WeightFormat::kQ8_0: return "q8_0";
    case WeightFormat::kQ4_0: return "q4_0";
  }
  return "?";
}

size_t WeightRowBytes(WeightFormat f, int64_t cols) {
  switch (f) {
    case WeightFormat::kF32: return static_cast<size_t>(cols) * 4;
    case WeightFormat::kBF16:
    case WeightFormat::kF16: return static_cast<size_t>(cols) * 2;
    case WeightFormat::kQ8_0: return static_cast<size_t>(cols / 32) * 34;
    case WeightFormat::kQ4_0: return static_cast<size_t>(cols / 32) * 18;
  }
  return 0;
}

void DequantizeRow(const WeightMatrix& w, int64_t r, float* out) {
  const uint8_t* p = w.row(r);
  switch (w.format) {
    case WeightFormat::kF32:
      std::memcpy(out, p, w.cols * 4);
      return;
    case WeightFormat::kBF16:
      ConvertToF32(DType::kBF16, p, out, w.cols);
      return;
    case WeightFormat::kF16:
      ConvertToF32(DType::kF16, p, out, w.cols);
      return;
    case WeightFormat::kQ8_0:
      for (int64_t b = 0; b < w.cols / 32; ++b, p += 34) {
        uint16_t s16;
        std::memcpy(&s16, p, 2);
        const float s = F16ToF32(s16);
        const auto* q = reinterpret_cast<const int8_t*>(p + 2);
        for (int i = 0; i < 32; ++i) out[b * 32 + i] = s * q[i];
      }
      return;
    case WeightFormat::kQ4_0:
      // Byte i holds element i (low nibble) and element i + 16 (high nibble).
      for (int64_t b = 0; b < w.cols / 32; ++b, p += 18) {
        uint16_t s16;
        std::memcpy(&s16, p, 2);
        const float s = F16ToF32(s16);
        for (int i = 0; i < 16; ++i) {
          out[b * 32 + i] = s * ((p[2 + i] & 0x0f) - 8);
          out[b * 32 + i + 16] = s * ((p[2 + i] >> 4) - 8);
        }
      }
      return;
  }
}

void MatMulRef(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  const int64_t N = w.rows, K = w.cols;
  std::vector<float> row(K);
  for (int64_t n = 0; n < N; ++n) {
    DequantizeRow(w, n, row.data());
    for (int64_t m = 0; m < M; ++m) {
      const float* xm = x + m * K;
      float acc = 0.f;
      for (int64_t k = 0; k < K; ++k) acc += xm[k] * row[k];
      y[m * N + n] = acc + (bias ? bias[n] : 0.f);
    }
  }
}

// Until the SIMD kernels land: split output columns over the pool, reference arithmetic per column.
void MatMul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, ThreadPool* pool) {
  IDEFICS_CHECK(w.data != nullptr || w.rows == 0);
  const int64_t N = w.rows, K = w.cols;
  auto body = [&](int64_t n0, int64_t n1) {
    std::vector<float> row(K);
    for (int64_t n = n0; n < n1; ++n) {
      DequantizeRow(w, n, row.data());
      for (int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * K;
        float acc = 0.f;
        for (int64_t k = 0; k < K; ++k) acc += xm[k] * row[k];
        y[m * N + n] = acc + (bias ? bias[n] : 0.f);
      }
    }
  };
  if (pool) {
    pool->ParallelFor(N, 16, body);
  } else {
    body(0, N);
  }
}

}  // namespace idefics
