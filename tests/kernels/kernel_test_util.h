// Test helpers for the kernel tests: random data, weight matrices in every format, error measures.
// Mirrors no reference class.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "tensor/dtype.h"

namespace idefics::test {

inline std::vector<float> RandomVec(int64_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// A weight matrix built from float values, stored in `format`; `dense` holds the dequantized values.
struct TestWeights {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
  std::vector<float> dense;  // [N, K] what the stored format represents
};

inline TestWeights MakeWeights(WeightFormat f, int64_t N, int64_t K, uint32_t seed) {
  TestWeights t;
  const std::vector<float> v = RandomVec(N * K, seed, 0.5f);
  t.w.format = f;
  t.w.rows = N;
  t.w.cols = K;
  t.bytes.resize(WeightRowBytes(f, K) * N + 64);
  for (int64_t n = 0; n < N; ++n) {
    uint8_t* row = t.bytes.data() + n * WeightRowBytes(f, K);
    const float* src = v.data() + n * K;
    for (int64_t k = 0; k < K; ++k) {
      if (f == WeightFormat::kF32) std::memcpy(row + 4 * k, &src[k], 4);
      if (f == WeightFormat::kBF16) {
        const uint16_t h = F32ToBf16(src[k]);
        std::memcpy(row + 2 * k, &h, 2);
      }
      if (f == WeightFormat::kF16) {
        const uint16_t h = F32ToF16(src[k]);
        std::memcpy(row + 2 * k, &h, 2);
      }
    }
    if (f == WeightFormat::kQ8_0) QuantizeRowQ8_0(src, K, row);
    if (f == WeightFormat::kQ4_0) QuantizeRowQ4_0(src, K, row);
  }
  t.w.data = t.bytes.data();
  t.dense.resize(N * K);
  for (int64_t n = 0; n < N; ++n) DequantizeRow(t.w, n, t.dense.data() + n * K);
  return t;
}

// Per output: sum over k of |x[m,k] · w[n,k]| plus |bias[n]| — the scale the rounding errors are relative to.
inline std::vector<double> AbsProductSums(const std::vector<float>& x, int64_t M, const TestWeights& t,
                                          const float* bias) {
  const int64_t N = t.w.rows, K = t.w.cols;
  std::vector<double> s(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double a = bias ? std::fabs(bias[n]) : 0.0;
      for (int64_t k = 0; k < K; ++k) a += std::fabs(double(x[m * K + k]) * t.dense[n * K + k]);
      s[m * N + n] = a;
    }
  return s;
}

// Bound of the int8 activation quantization: per block |Δx| <= max|x_block| / 254, times sum |w| in the
// block.
inline std::vector<double> ActQuantBound(const std::vector<float>& x, int64_t M, const TestWeights& t) {
  const int64_t N = t.w.rows, K = t.w.cols;
  std::vector<double> bound(M * N, 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t b = 0; b < K / 32; ++b) {
      double amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(double(x[m * K + b * 32 + i])));
      for (int64_t n = 0; n < N; ++n) {
        double sw = 0;
        for (int i = 0; i < 32; ++i) sw += std::fabs(t.dense[n * K + b * 32 + i]);
        bound[m * N + n] += amax / 254.0 * 1.0001 * sw;
      }
    }
  return bound;
}

// Sets the active ISA for a scope (clamped to what the CPU supports), restoring the previous one after.
struct IsaGuard {
  explicit IsaGuard(Isa isa) : prev(SetActiveIsaForTesting(isa)) {}
  ~IsaGuard() { SetActiveIsaForTesting(prev); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;
  Isa prev;
};

// The active ISA and every SIMD level below it (an AVX-512 machine also runs the AVX2 dispatch).
inline std::vector<Isa> TestIsas() {
  std::vector<Isa> v = {ActiveIsa()};
  if (ActiveIsa() == Isa::kAvx512) v.push_back(Isa::kAvx2);
  return v;
}

}  // namespace idefics::test
