// Dispatch of the ops.h kernels to the AVX-512 or AVX2 version or the scalar twin by ActiveIsa().
// Mirrors no reference class.
#include "kernels/ops.h"

#include "kernels/cpu_features.h"
#include "kernels/ops_kernels.h"

namespace idefics {

#if defined(IDEFICS_HAVE_SIMD)
#define IDEFICS_OPS_DISPATCH(name, ...)       \
  switch (ActiveIsa()) {                      \
    case Isa::kAvx512:                        \
      return kern::avx512::name(__VA_ARGS__); \
    case Isa::kAvx2:                          \
      return kern::avx2::name(__VA_ARGS__);   \
    default:                                  \
      return kern::scalar::name(__VA_ARGS__); \
  }
#else
#define IDEFICS_OPS_DISPATCH(name, ...) return kern::scalar::name(__VA_ARGS__)
#endif

float Dot(const float* a, const float* b, int64_t n) {
  IDEFICS_OPS_DISPATCH(Dot, a, b, n);
}
void Axpy(float alpha, const float* x, float* y, int64_t n) {
  IDEFICS_OPS_DISPATCH(Axpy, alpha, x, y, n);
}
void WeightedRows(const float* p, int64_t p_stride, int64_t rows, const float* v, int64_t v_stride, int64_t n,
                  int64_t d, float* out, int64_t out_stride) {
  IDEFICS_OPS_DISPATCH(WeightedRows, p, p_stride, rows, v, v_stride, n, d, out, out_stride);
}
void Add(const float* a, const float* b, float* out, int64_t n) {
  IDEFICS_OPS_DISPATCH(Add, a, b, out, n);
}
void Mul(const float* a, const float* b, float* out, int64_t n) {
  IDEFICS_OPS_DISPATCH(Mul, a, b, out, n);
}
void Scale(float* x, float s, int64_t n) {
  IDEFICS_OPS_DISPATCH(Scale, x, s, n);
}
void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y) {
  IDEFICS_OPS_DISPATCH(RmsNorm, x, w, n, eps, y);
}
void LayerNorm(const float* x, const float* w, const float* b, int64_t n, float eps, float* y) {
  IDEFICS_OPS_DISPATCH(LayerNorm, x, w, b, n, eps, y);
}
void SoftmaxInPlace(float* x, int64_t n) {
  IDEFICS_OPS_DISPATCH(SoftmaxInPlace, x, n);
}
void Exp(const float* x, float* y, int64_t n) {
  IDEFICS_OPS_DISPATCH(Exp, x, y, n);
}
void Silu(const float* x, float* y, int64_t n) {
  IDEFICS_OPS_DISPATCH(Silu, x, y, n);
}
void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  IDEFICS_OPS_DISPATCH(SiluMul, gate, up, out, n);
}
void GeluTanh(const float* x, float* y, int64_t n) {
  IDEFICS_OPS_DISPATCH(GeluTanh, x, y, n);
}
void ConvertF32ToBf16(const float* x, uint16_t* y, int64_t n) {
  IDEFICS_OPS_DISPATCH(ConvertF32ToBf16, x, y, n);
}
void ConvertBf16ToF32(const uint16_t* x, float* y, int64_t n) {
  IDEFICS_OPS_DISPATCH(ConvertBf16ToF32, x, y, n);
}

}  // namespace idefics
