// Scalar reference matrix product for every weight format (the twin SIMD kernels are tested against).
#include <cstring>
#include <vector>

#include "core/check.h"
#include "kernels/matmul.h"
#include "tensor/dtype.h"

namespace idefics {

const char* WeightFormatName(WeightFormat f) {
  switch (f) {
    case WeightFormat::kF32:
      return "f32";
    case WeightFormat::kBF16:
      return "bf16";
    case WeightFormat::kF16:
      return "f16";
    case WeightFormat::kQ8_0:
      return "q8_0";
    case WeightFormat::kQ4_0:
      return "q4_0";
  }
  return "?";
}

void DequantizeRowSegment(const WeightMatrix& w, int64_t r, int64_t k0, int64_t len, float* out) {
  const uint8_t* row = w.row(r);
  switch (w.format) {
    case WeightFormat::kF32:
      std::memcpy(out, row + k0 * 4, len * 4);
      return;
    case WeightFormat::kBF16:
      ConvertToF32(DType::kBF16, row + k0 * 2, out, len);
      return;
    case WeightFormat::kF16:
      ConvertToF32(DType::kF16, row + k0 * 2, out, len);
      return;
    case WeightFormat::kQ8_0: {
      IDEFICS_CHECK(k0 % 32 == 0 && len % 32 == 0);
      const uint8_t* p = row + (k0 / 32) * 34;
      for (int64_t b = 0; b < len / 32; ++b, p += 34) {
        uint16_t s16;
        std::memcpy(&s16, p, 2);
        const float s = F16ToF32(s16);
        const auto* q = reinterpret_cast<const int8_t*>(p + 2);
        for (int i = 0; i < 32; ++i) out[b * 32 + i] = s * q[i];
      }
      return;
    }
    case WeightFormat::kQ4_0: {
      IDEFICS_CHECK(k0 % 32 == 0 && len % 32 == 0);
      const uint8_t* p = row + (k0 / 32) * 18;
      // Byte i holds element i (low nibble) and element i + 16 (high nibble).
      for (int64_t b = 0; b < len / 32; ++b, p += 18) {
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
}

void DequantizeRow(const WeightMatrix& w, int64_t r, float* out) {
  DequantizeRowSegment(w, r, 0, w.cols, out);
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

}  // namespace idefics
