// Internal: per-ISA versions of the ops.h kernels (same signatures), so tests compare each SIMD kernel with
// its scalar twin. Mirrors no reference class.
#pragma once

#include <cstdint>

#define IDEFICS_OPS_DECLARE                                                                           \
  float Dot(const float* a, const float* b, int64_t n);                                               \
  void Axpy(float alpha, const float* x, float* y, int64_t n);                                        \
  void WeightedRows(const float* p, int64_t p_stride, int64_t rows, const float* v, int64_t v_stride, \
                    int64_t n, int64_t d, float* out, int64_t out_stride);                            \
  void Add(const float* a, const float* b, float* out, int64_t n);                                    \
  void Mul(const float* a, const float* b, float* out, int64_t n);                                    \
  void Scale(float* x, float s, int64_t n);                                                           \
  void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y);                       \
  void LayerNorm(const float* x, const float* w, const float* b, int64_t n, float eps, float* y);     \
  void SoftmaxInPlace(float* x, int64_t n);                                                           \
  void Exp(const float* x, float* y, int64_t n);                                                      \
  void Silu(const float* x, float* y, int64_t n);                                                     \
  void SiluMul(const float* gate, const float* up, float* out, int64_t n);                            \
  void GeluTanh(const float* x, float* y, int64_t n);                                                 \
  void ConvertF32ToBf16(const float* x, uint16_t* y, int64_t n);                                      \
  void ConvertBf16ToF32(const uint16_t* x, float* y, int64_t n);

namespace idefics::kern {

// WeightedRows by its definition: each output row zeroed, then one Axpy per row of v (the scalar and AVX2
// versions; AVX-512 blocks the same arithmetic in registers).
template <typename AxpyFn>
void WeightedRowsByAxpy(AxpyFn axpy, const float* p, int64_t p_stride, int64_t rows, const float* v,
                        int64_t v_stride, int64_t n, int64_t d, float* out, int64_t out_stride) {
  for (int64_t r = 0; r < rows; ++r) {
    float* o = out + r * out_stride;
    for (int64_t c = 0; c < d; ++c) o[c] = 0.f;
    for (int64_t j = 0; j < n; ++j) axpy(p[r * p_stride + j], v + j * v_stride, o, d);
  }
}

namespace scalar {
IDEFICS_OPS_DECLARE
}  // namespace scalar
#if defined(IDEFICS_HAVE_SIMD)
namespace avx2 {
IDEFICS_OPS_DECLARE
}  // namespace avx2
namespace avx512 {
IDEFICS_OPS_DECLARE
}  // namespace avx512
#endif
}  // namespace idefics::kern
