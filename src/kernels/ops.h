// Vector kernels the model calls between matrix products: dot/axpy, norms, softmax, activations, bf16
// conversion. Each dispatches on ActiveIsa() to an AVX-512 or AVX2 version with a scalar twin
// (ops_kernels.h). Mirrors torch ops: nn.LayerNorm, MistralRMSNorm, softmax(dim=-1), F.silu,
// gelu(approximate="tanh"), torch.exp.
#pragma once

#include <cstdint>

namespace idefics {

// Sum of a[i] * b[i] in float32 (SIMD: 16- or 8-lane partial sums, fixed order).
float Dot(const float* a, const float* b, int64_t n);
// y[i] += alpha * x[i].
void Axpy(float alpha, const float* x, float* y, int64_t n);
// Weighted sums of the n rows of v ([n, d], rows v_stride apart) for `rows` weight rows p ([rows, n], rows
// p_stride apart): out[r][c] = sum_j p[r][j] * v[j][c] (out rows out_stride apart), accumulated in j order
// exactly as zeroing out[r] and calling Axpy(p[r][j], v[j], out[r], d) for each j — bitwise, on every ISA —
// but with each row of v read once for all the weight rows (attention's p·v for the query heads that share
// a kv head).
void WeightedRows(const float* p, int64_t p_stride, int64_t rows, const float* v, int64_t v_stride, int64_t n,
                  int64_t d, float* out, int64_t out_stride);
// out[i] = a[i] + b[i] / a[i] * b[i]; out may alias a or b.
void Add(const float* a, const float* b, float* out, int64_t n);
void Mul(const float* a, const float* b, float* out, int64_t n);
// x[i] *= s.
void Scale(float* x, float s, int64_t n);

// MistralRMSNorm in float32: y[i] = w[i] * (x[i] * r), r = 1 / sqrt(sum(x²)/n + eps). w may be null (= 1).
// y may alias x.
void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y);
// nn.LayerNorm over n (biased variance, two passes): y = (x - mean) * r * w + b, r = 1/sqrt(var + eps).
// w and b may be null. y may alias x.
void LayerNorm(const float* x, const float* w, const float* b, int64_t n, float eps, float* y);
// In-place softmax: x = exp(x - max) * (1 / sum). -inf entries give 0; a row of all -inf gives NaN (as
// torch).
void SoftmaxInPlace(float* x, int64_t n);

// y = exp(x) (error ~1 ulp; overflows to inf above ~88.72, underflows to 0 below ~-103.97).
void Exp(const float* x, float* y, int64_t n);
// SiLU: y = x / (1 + exp(-x)).
void Silu(const float* x, float* y, int64_t n);
// out = silu(gate) * up (the SwiGLU product of Mistral/Idefics2 MLPs). out may alias gate or up.
void SiluMul(const float* gate, const float* up, float* out, int64_t n);
// gelu(approximate="tanh"): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), computed as x / (1 + exp(-2u)), an
// identity that avoids the cancellation of 1 + tanh(u) for negative x (relative error ~1e-7 everywhere).
void GeluTanh(const float* x, float* y, int64_t n);

// float32 -> bf16 with round-to-nearest-even (NaN stays NaN; denormals kept, unlike vcvtneps2bf16).
void ConvertF32ToBf16(const float* x, uint16_t* y, int64_t n);
// bf16 -> float32 (exact).
void ConvertBf16ToF32(const uint16_t* x, float* y, int64_t n);

}  // namespace idefics
