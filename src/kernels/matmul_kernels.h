// Internal: the per-ISA matrix kernels behind MatMul (scalar twins in matmul_scalar.cc, AVX2 versions in
// *_avx2.cc, AVX-512 versions in *_avx512.cc). Exposed so tests can compare each SIMD kernel with its twin.
// Mirrors no reference class.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "kernels/matmul.h"

namespace idefics::kern {

// 64-byte aligned scratch memory.
struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
template <typename T>
using AlignedPtr = std::unique_ptr<T[], AlignedFree>;
template <typename T>
AlignedPtr<T> AllocAligned(size_t n) {
  const size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
  return AlignedPtr<T>(static_cast<T*>(std::aligned_alloc(64, bytes ? bytes : 64)));
}

// Quantizes one block of 32 activations to int8 with a float32 scale d = max|x|/127, q = round(x/d).
// Shared by the scalar and SIMD paths so both see the same integers. Returns d (0 for an all-zero block).
float QuantizeActBlock(const float* x, int8_t* q);

// ---- Scalar twins (always available). All compute y[m*N + n] for n in [n0, n1), m in [0, M). ----
namespace scalar {
// Float formats, M <= GemvMaxRows(format): dot products accumulated in float32 in k order (f32 arithmetic).
void GemvFloat(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1);
// bf16 dot products on activations rounded to bf16 (twin of the vdpbf16ps GEMV). xb: [M, K] bf16.
// Not used by MatMul (measured slower than GemvFloat on bf16 weights); kept, tested and benchmarked.
void GemvBf16Dot(const uint16_t* xb, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                 int64_t n0, int64_t n1);
// Q8_0/Q4_0 weights with int8-quantized activations: per block sum(q_w * q_x) exactly, scaled by d_w * d_x.
void GemvQuant(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1);
// Large-M product over rows [m0, m1), cols [n0, n1): per output one float32 fused multiply-add chain over k
// (bitwise the same as the AVX-512 GEMM), bias added last.
void GemmF32(const float* x, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w, const float* bias,
             float* y, int64_t n0, int64_t n1);
// Large-M bf16 product: activations xb [M, Kp] bf16 (Kp = K rounded up to even, zero pad), weights rounded to
// bf16; per output the chain acc = fma(x[k+1], w[k+1], acc); acc = fma(x[k], w[k], acc) per pair (the
// vdpbf16ps order).
void GemmBf16(const uint16_t* xb, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w, const float* bias,
              float* y, int64_t n0, int64_t n1);
// Bf16 panels (layout in matmul.h) of panels [p0, p1) of w into out (the whole buffer's base address).
void PackBf16Panels(const WeightMatrix& w, int64_t p0, int64_t p1, uint32_t* out);
// Large-M int8 product for Q8_0/Q4_0 weights (MatMulOptions::int8_dot): x rows quantized per 32-block by
// QuantizeActBlock and stored as unsigned bytes q + 128 (xq [M][K]) with their scales (xs [M][K/32]); each
// output accumulates, block by block in k order, acc = fma(float(exact int32 block sum), wscale · xscale,
// acc), then adds the bias.
void QuantizeActsU8(const float* x, int64_t m0, int64_t m1, int64_t K, uint8_t* xq, float* xs);
void GemmI8(const uint8_t* xq, const float* xs, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w,
            const float* bias, float* y, int64_t n0, int64_t n1);
// GemmBf16 reading w.panels instead of w.data (same chains, same result).
void GemmBf16Panels(const uint16_t* xb, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w,
                    const float* bias, float* y, int64_t n0, int64_t n1);
}  // namespace scalar

#if defined(IDEFICS_HAVE_SIMD)
namespace avx2 {
// Float formats (gemv_avx2.cc): 8-lane float32 partial sums per output, reduced in a fixed order.
void GemvFloat(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1);

// Activations prepared for the AVX2 int8 GEMV: the scalar twin's integers (QuantizeActBlock) and scales,
// plus for Q4_0 the per-lane offset corrections -8 · (sum of lane l's 4 activation bytes) of each block.
struct QuantActs {
  int64_t M = 0, K = 0;
  AlignedPtr<int8_t> q;      // [M, K]
  AlignedPtr<float> d;       // [M, K / 32]
  AlignedPtr<int32_t> corr;  // [M, K / 32, 8] (Q4_0 only)
};
void PrepareQuantActs(const float* x, int64_t M, int64_t K, WeightFormat f, QuantActs* out);
void GemvQuant(const QuantActs& a, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1);

// Large-M float32 product (gemm_avx2.cc), bitwise the same as scalar::GemmF32; `pack` scratch of
// GemmPackFloats() floats, 64-byte aligned.
size_t GemmPackFloats();
void GemmF32(const float* x, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w, const float* bias,
             float* y, int64_t n0, int64_t n1, float* pack);
}  // namespace avx2

namespace avx512 {
void GemvFloat(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1);
void GemvBf16Dot(const uint16_t* xb, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                 int64_t n0, int64_t n1);

// Activations prepared for the int8 GEMV: the int8 values in the order the weight unpack produces, the
// per-lane scales and the per-lane offset corrections. One object per MatMul call. Records per x row:
//   Q8_0: one per pair of 32-blocks, 192 bytes: int8 q[64] (blk0 0..31, blk1 0..31), float s[16], int32
//   c[16]; Q4_0: one per quad of 32-blocks, 256 bytes: int8 lo[64] (elements 0..15 of blk0..3), int8 hi[64]
//         (elements 16..31 of blk0..3), float s[16], int32 c[16]; lane l belongs to block l / 4.
struct QuantActs {
  int64_t M = 0, K = 0, records = 0, record_bytes = 0;
  AlignedPtr<uint8_t> data;  // [M][records] × record_bytes
};
void PrepareQuantActs(const float* x, int64_t M, int64_t K, WeightFormat f, QuantActs* out);
void GemvQuant(const QuantActs& a, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1);

// Large-M products over rows [m0, m1), cols [n0, n1); `pack` scratch of GemmPackFloats() floats.
size_t GemmPackFloats();
void GemmF32(const float* x, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w, const float* bias,
             float* y, int64_t n0, int64_t n1, float* pack);
void GemmBf16(const uint16_t* xb, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w, const float* bias,
              float* y, int64_t n0, int64_t n1, float* pack);
// Twins of scalar::QuantizeActsU8 / GemmI8 (n0 a multiple of 64); `pack` of GemmI8PackFloats() floats.
void QuantizeActsU8(const float* x, int64_t m0, int64_t m1, int64_t K, uint8_t* xq, float* xs);
size_t GemmI8PackFloats(int64_t K);
void GemmI8(const uint8_t* xq, const float* xs, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w,
            const float* bias, float* y, int64_t n0, int64_t n1, float* pack);
// Twins of the scalar functions above (n0 a multiple of 64 for the GEMM); `pack` as for GemmBf16.
void PackBf16Panels(const WeightMatrix& w, int64_t p0, int64_t p1, uint32_t* out, float* pack);
void GemmBf16Panels(const uint16_t* xb, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w,
                    const float* bias, float* y, int64_t n0, int64_t n1);
}  // namespace avx512
#endif

}  // namespace idefics::kern
