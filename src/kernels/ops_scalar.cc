// Scalar twins of the vector kernels in ops.h (reference semantics; the SIMD versions are tested against
// them). Mirrors torch's float32 CPU formulas for rms_norm / layer_norm / softmax / silu / gelu-tanh.
#include <cmath>
#include <limits>

#include "kernels/ops_kernels.h"
#include "tensor/dtype.h"

namespace idefics::kern::scalar {

namespace {
// sqrt(2/pi) and the cubic coefficient of the tanh GELU.
constexpr float kGeluBeta = 0.7978845608028654f;
constexpr float kGeluKappa = 0.044715f;
}  // namespace

float Dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void Axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void WeightedRows(const float* p, int64_t p_stride, int64_t rows, const float* v, int64_t v_stride, int64_t n,
                  int64_t d, float* out, int64_t out_stride) {
  WeightedRowsByAxpy(Axpy, p, p_stride, rows, v, v_stride, n, d, out, out_stride);
}

void Add(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void Mul(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

void Scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y) {
  float ss = 0.f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float r = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (w ? w[i] : 1.f) * (x[i] * r);
}

void LayerNorm(const float* x, const float* w, const float* b, int64_t n, float eps, float* y) {
  float s = 0.f;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  const float mean = s / static_cast<float>(n);
  float v = 0.f;
  for (int64_t i = 0; i < n; ++i) v += (x[i] - mean) * (x[i] - mean);
  const float r = 1.f / std::sqrt(v / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * r * (w ? w[i] : 1.f) + (b ? b[i] : 0.f);
}

void SoftmaxInPlace(float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, x[i]);
  float s = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    s += x[i];
  }
  const float inv = 1.f / s;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void Exp(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void Silu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.f + std::exp(-x[i]));
}

void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}

void GeluTanh(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float u = kGeluBeta * (v + kGeluKappa * v * v * v);
    // 0.5·(1 + tanh(u)) == 1 / (1 + exp(-2u)).
    y[i] = v / (1.f + std::exp(-2.f * u));
  }
}

void ConvertF32ToBf16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F32ToBf16(x[i]);
}

void ConvertBf16ToF32(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Bf16ToF32(x[i]);
}

}  // namespace idefics::kern::scalar
