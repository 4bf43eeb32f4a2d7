// Tests of the prepacked bf16 GEMM panels (PackBf16Panels, WeightMatrix::panels): the AVX-512 packing is
// bitwise its scalar twin, products from panels are bitwise the per-call packing's, and a matrix kept only as
// panels (data == nullptr) still multiplies at any M and on every ISA. Mirrors nn.Linear.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"

namespace idefics {
namespace {

using test::AbsProductSums;
using test::IsaGuard;
using test::MakeWeights;
using test::RandomVec;
using test::TestWeights;

constexpr WeightFormat kPackedFormats[] = {WeightFormat::kBF16, WeightFormat::kF16, WeightFormat::kQ8_0,
                                           WeightFormat::kQ4_0};

bool IsQuant(WeightFormat f) {
  return f == WeightFormat::kQ8_0 || f == WeightFormat::kQ4_0;
}

// K values around the GEMM's 1152-element k-block (and past several of them), odd ones
// included for the float formats.
std::vector<int64_t> KsFor(WeightFormat f) {
  if (IsQuant(f)) return {32, 96, 1152, 1184, 2336, 4128};
  return {1, 3, 64, 257, 1151, 1153, 2306, 4099};
}

kern::AlignedPtr<uint8_t> Pack(const WeightMatrix& w, ThreadPool* pool) {
  auto p = kern::AllocAligned<uint8_t>(Bf16PanelBytes(w.rows, w.cols));
  PackBf16Panels(w, p.get(), pool);
  return p;
}

TEST(MatMulPanelsTest, SimdPackingIsBitwiseItsScalarTwin) {
  if (ActiveIsa() != Isa::kAvx512) GTEST_SKIP() << "no AVX-512 BF16";
  ThreadPool pool(2);
  for (WeightFormat f : kPackedFormats) {
    for (int64_t K : KsFor(f)) {
      for (int64_t N : {1, 64, 130}) {
        const TestWeights t = MakeWeights(f, N, K, 17);
        const size_t bytes = Bf16PanelBytes(N, K);
        const kern::AlignedPtr<uint8_t> simd = Pack(t.w, &pool);
        kern::AlignedPtr<uint8_t> twin;
        {
          IsaGuard g(Isa::kScalar);
          twin = Pack(t.w, nullptr);
        }
        ASSERT_EQ(0, std::memcmp(simd.get(), twin.get(), bytes)) << WeightFormatName(f) << " N=" << N << " K=" << K;
      }
    }
  }
}

// Extreme block scales (f16 subnormal 2^-24, smallest normal, largest finite, zero, negative, inf, NaN): the
// SIMD packer rounds the dequantized values to bf16 with vcvtne2ps2bf16, which would differ from the scalar
// rounding on float32 denormals — a dequantized weight never is one, down to the smallest scale.
TEST(MatMulPanelsTest, QuantPackingWithExtremeScalesIsBitwiseItsScalarTwin) {
  if (ActiveIsa() != Isa::kAvx512) GTEST_SKIP() << "no AVX-512 BF16";
  const uint16_t scales[] = {0x0001, 0x0400, 0x7bff, 0x0000, 0x8001, 0xfbff, 0x7c00, 0x7e00};
  for (WeightFormat f : {WeightFormat::kQ8_0, WeightFormat::kQ4_0}) {
    const int64_t N = 70, K = 1184, nb = K / 32, bb = f == WeightFormat::kQ8_0 ? 34 : 18;
    std::vector<uint8_t> bytes(static_cast<size_t>(N * nb * bb));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>((i * 2654435761u) >> 11);
    for (int64_t b = 0; b < N * nb; ++b) std::memcpy(&bytes[b * bb], &scales[b % 8], 2);
    const WeightMatrix w{f, N, K, bytes.data()};
    const kern::AlignedPtr<uint8_t> simd = Pack(w, nullptr);
    kern::AlignedPtr<uint8_t> twin;
    {
      IsaGuard g(Isa::kScalar);
      twin = Pack(w, nullptr);
    }
    ASSERT_EQ(0, std::memcmp(simd.get(), twin.get(), Bf16PanelBytes(N, K))) << WeightFormatName(f);
  }
}

TEST(MatMulPanelsTest, ProductsFromPanelsAreBitwiseThePerCallPacking) {
  ThreadPool pool(2);
  MatMulOptions opt;
  opt.bf16_dot = true;
  for (WeightFormat f : kPackedFormats) {
    for (int64_t K : KsFor(f)) {
      const int64_t N = 200;
      const TestWeights t = MakeWeights(f, N, K, 23);
      const kern::AlignedPtr<uint8_t> panels = Pack(t.w, &pool);
      WeightMatrix packed = t.w;
      packed.panels = panels.get();
      for (int64_t M : {9, 50, 131, 400}) {  // 400: several of the GEMM's 48-row blocks per task
        const std::vector<float> x = RandomVec(M * K, 29), bias = RandomVec(N, 31);
        std::vector<float> y(M * N), yp(M * N), y1(M * N);
        MatMul(x.data(), M, t.w, bias.data(), y.data(), &pool, opt);
        MatMul(x.data(), M, packed, bias.data(), yp.data(), &pool, opt);
        MatMul(x.data(), M, packed, bias.data(), y1.data(), nullptr, opt);
        ASSERT_EQ(0, std::memcmp(y.data(), yp.data(), 4 * M * N)) << WeightFormatName(f) << " M=" << M << " K=" << K;
        ASSERT_EQ(0, std::memcmp(yp.data(), y1.data(), 4 * M * N)) << WeightFormatName(f) << " M=" << M << " K=" << K;
      }
    }
  }
}

TEST(MatMulPanelsTest, PanelsOnlyMatrixMultipliesAtAnyRowCountOnEveryIsa) {
  ThreadPool pool(2);
  for (WeightFormat f : kPackedFormats) {
    const int64_t N = 70, K = IsQuant(f) ? 96 : 77;
    const TestWeights t = MakeWeights(f, N, K, 37);
    const kern::AlignedPtr<uint8_t> panels = Pack(t.w, &pool);
    WeightMatrix only = t.w;
    only.panels = panels.get();
    only.data = nullptr;
    for (int64_t M : {1, 4, 13}) {
      const std::vector<float> x = RandomVec(M * K, 41), bias = RandomVec(N, 43);
      std::vector<float> ref(M * N);
      MatMulRef(x.data(), M, t.w, bias.data(), ref.data());
      const std::vector<double> scale = AbsProductSums(x, M, t, bias.data());
      std::vector<std::vector<float>> outs;
      for (Isa isa : {ActiveIsa(), Isa::kAvx2, Isa::kScalar}) {
        IsaGuard g(isa);
        std::vector<float> y(M * N);
        MatMul(x.data(), M, only, bias.data(), y.data(), &pool, MatMulOptions{});  // exact requested: still bf16
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_LE(std::fabs(double(y[i]) - ref[i]), (2.0 / 256 + 1e-5) * std::max(scale[i], 1e-30))
              << WeightFormatName(f) << " M=" << M << " isa=" << IsaName(isa) << " i=" << i;
        outs.push_back(y);
      }
      // Same chains on every ISA: bitwise equal.
      for (size_t i = 1; i < outs.size(); ++i) ASSERT_EQ(outs[0], outs[i]) << WeightFormatName(f) << " M=" << M;
    }
  }
}

}  // namespace
}  // namespace idefics
