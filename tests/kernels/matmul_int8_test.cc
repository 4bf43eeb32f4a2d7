// Tests of the int8 GEMM (MatMulOptions::int8_dot) for Q8_0/Q4_0 weights at large M: the AVX-512 VNNI kernel
// and its activation quantizer bitwise against their scalar twins on odd shapes (k-block and panel tails),
// the product within the activation-quantization bound of MatMulRef, bitwise thread-count invariance, and
// MatMulMany sharing one quantization of x. Mirrors nn.Linear.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"

namespace idefics {
namespace {

using test::AbsProductSums;
using test::ActQuantBound;
using test::IsaGuard;
using test::MakeWeights;
using test::RandomVec;
using test::TestWeights;

constexpr WeightFormat kQuantFormats[] = {WeightFormat::kQ8_0, WeightFormat::kQ4_0};

#if defined(IDEFICS_HAVE_SIMD)
// Activations with every special case a 32-block can hold: all zeros, NaN, infinities, tiny values.
std::vector<float> AwkwardActs(int64_t M, int64_t K) {
  std::vector<float> x = RandomVec(M * K, 77);
  if (K >= 128 && M >= 2) {
    for (int i = 0; i < 32; ++i) x[i] = 0.f;
    x[33] = std::numeric_limits<float>::quiet_NaN();
    x[K + 70] = std::numeric_limits<float>::infinity();
    for (int i = 96; i < 128; ++i) x[K + i] = 1e-30f * static_cast<float>(i - 100);
  }
  return x;
}

TEST(MatMulInt8Test, SimdActivationQuantizerIsBitwiseItsScalarTwin) {
  if (ActiveIsa() != Isa::kAvx512) GTEST_SKIP() << "no AVX-512";
  for (int64_t K : {32, 160, 4096}) {
    const int64_t M = 5, nb = K / 32;
    const std::vector<float> x = AwkwardActs(M, K);
    std::vector<uint8_t> qs(M * K), qv(M * K);
    std::vector<float> ss(M * nb), sv(M * nb);
    kern::scalar::QuantizeActsU8(x.data(), 0, M, K, qs.data(), ss.data());
    kern::avx512::QuantizeActsU8(x.data(), 0, M, K, qv.data(), sv.data());
    EXPECT_EQ(qs, qv) << "K=" << K;
    EXPECT_EQ(0, std::memcmp(ss.data(), sv.data(), 4 * ss.size())) << "K=" << K;
  }
}

TEST(MatMulInt8Test, SimdGemmIsBitwiseItsScalarTwin) {
  if (ActiveIsa() != Isa::kAvx512) GTEST_SKIP() << "no AVX-512";
  for (WeightFormat f : kQuantFormats) {
    // 512 is the kernel's k block: 2080 and 4128 leave a one-block tail. 19 rows end on a 1-row tile; 200
    // rows span three row blocks of the kernel (96 rows), the last a partial one.
    for (auto [M, K] :
         {std::pair<int64_t, int64_t>{19, 32}, {19, 96}, {19, 2048}, {19, 2080}, {19, 4128}, {200, 1056}}) {
      const int64_t N = 130;
      auto pack = kern::AllocAligned<float>(kern::avx512::GemmI8PackFloats(K));
      const TestWeights t = MakeWeights(f, N, K, 31);
      const std::vector<float> x = AwkwardActs(M, K), bias = RandomVec(N, 32);
      std::vector<uint8_t> xq(M * K);
      std::vector<float> xs(M * (K / 32));
      kern::scalar::QuantizeActsU8(x.data(), 0, M, K, xq.data(), xs.data());
      for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
        std::vector<float> ys(M * N, -1.f), yv(M * N, -1.f);
        kern::scalar::GemmI8(xq.data(), xs.data(), K, 0, M, t.w, b, ys.data(), 0, N);
        kern::avx512::GemmI8(xq.data(), xs.data(), K, 0, 7, t.w, b, yv.data(), 0, 64, pack.get());
        kern::avx512::GemmI8(xq.data(), xs.data(), K, 7, M, t.w, b, yv.data(), 0, 64, pack.get());
        kern::avx512::GemmI8(xq.data(), xs.data(), K, 0, M, t.w, b, yv.data(), 64, N, pack.get());
        ASSERT_EQ(0, std::memcmp(ys.data(), yv.data(), 4 * ys.size()))
            << WeightFormatName(f) << " M=" << M << " K=" << K << (b ? " bias" : "");
      }
    }
  }
}

#endif  // IDEFICS_HAVE_SIMD

// Every dispatch (AVX-512: VNNI kernel; AVX2: the float32 GEMM it falls back to; scalar: the twin) stays
// within the activation quantization bound of the exact product.
TEST(MatMulInt8Test, ProductWithinTheActivationQuantizationBound) {
  std::vector<Isa> isas = {Isa::kScalar};
  if (ActiveIsa() >= Isa::kAvx2) isas.push_back(Isa::kAvx2);
  if (ActiveIsa() == Isa::kAvx512) isas.push_back(Isa::kAvx512);
  ThreadPool pool(2);
  MatMulOptions opt;
  opt.int8_dot = true;
  for (Isa isa : isas) {
    IsaGuard guard(isa);
    SCOPED_TRACE(IsaName(isa));
    for (WeightFormat f : kQuantFormats) {
      for (int64_t K : {96, 576}) {
        for (int64_t M : {GemvMaxRows(f) + 1, int64_t{50}}) {
          const int64_t N = 67;
          const TestWeights t = MakeWeights(f, N, K, 41);
          const std::vector<float> x = RandomVec(M * K, 42), bias = RandomVec(N, 43);
          std::vector<float> y(M * N), ref(M * N);
          MatMul(x.data(), M, t.w, bias.data(), y.data(), &pool, opt);
          MatMulRef(x.data(), M, t.w, bias.data(), ref.data());
          const std::vector<double> scale = AbsProductSums(x, M, t, bias.data());
          const std::vector<double> bound = ActQuantBound(x, M, t);
          for (size_t i = 0; i < y.size(); ++i)
            ASSERT_LE(std::fabs(double(y[i]) - ref[i]), bound[i] + 4e-5 * scale[i] + 1e-30)
                << WeightFormatName(f) << " M=" << M << " K=" << K << " index " << i;
        }
      }
    }
  }
}

// Q4_0 leaves its 4-rows-per-pass GEMV for the int8 GEMM after 8 rows where that GEMM runs (measured
// crossover ~12); without int8_dot, or below AVX-512, the float GEMM only pays off after 32.
TEST(MatMulInt8Test, Q4GemvThresholdFollowsTheInt8Gemm) {
  MatMulOptions int8;
  int8.int8_dot = true;
  EXPECT_EQ(GemvMaxRows(WeightFormat::kQ4_0, MatMulOptions{}), 32);
  EXPECT_EQ(GemvMaxRows(WeightFormat::kQ4_0, int8), ActiveIsa() == Isa::kAvx512 ? 8 : 32);
  EXPECT_EQ(GemvMaxRows(WeightFormat::kQ8_0, int8), 8);
  // Either side of the switch stays within the activation-quantization bound (both quantize x alike).
  ThreadPool pool(2);
  const int64_t K = 256, N = 70;
  const TestWeights t = MakeWeights(WeightFormat::kQ4_0, N, K, 61);
  for (int64_t M : {8, 9, 20}) {
    const std::vector<float> x = RandomVec(M * K, 62);
    std::vector<float> y(M * N), ref(M * N);
    MatMul(x.data(), M, t.w, nullptr, y.data(), &pool, int8);
    MatMulRef(x.data(), M, t.w, nullptr, ref.data());
    const std::vector<double> scale = AbsProductSums(x, M, t, nullptr), bound = ActQuantBound(x, M, t);
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_LE(std::fabs(double(y[i]) - ref[i]), bound[i] + 4e-5 * scale[i] + 1e-30) << "M=" << M;
  }
}

TEST(MatMulInt8Test, BitwiseIndependentOfThreadCountAndSharedByMany) {
  ThreadPool p1(1), p2(2), p3(3);
  MatMulOptions opt;
  opt.int8_dot = true;
  opt.bf16_dot = true;  // int8 takes precedence for the quantized formats
  // M = 1030 (> 512): the wide column tiles of a large-M int8 product (rows split instead).
  for (const auto& [f, K, M] :
       std::vector<std::tuple<WeightFormat, int64_t, int64_t>>{{WeightFormat::kQ8_0, 2080, 50},
                                                               {WeightFormat::kQ4_0, 2080, 50},
                                                               {WeightFormat::kQ8_0, 96, 1030},
                                                               {WeightFormat::kQ4_0, 96, 1030}}) {
    const TestWeights a = MakeWeights(f, 300, K, 3), b = MakeWeights(f, 70, K, 4);
    const std::vector<float> x = RandomVec(M * K, 11);
    std::vector<float> y0(M * 300), y1(M * 300), y2(M * 300), y3(M * 300), yb(M * 70), ya(M * 300),
        yb1(M * 70);
    MatMul(x.data(), M, a.w, nullptr, y0.data(), nullptr, opt);
    MatMul(x.data(), M, a.w, nullptr, y1.data(), &p1, opt);
    MatMul(x.data(), M, a.w, nullptr, y2.data(), &p2, opt);
    MatMul(x.data(), M, a.w, nullptr, y3.data(), &p3, opt);
    EXPECT_EQ(0, std::memcmp(y0.data(), y1.data(), 4 * y0.size())) << WeightFormatName(f);
    EXPECT_EQ(0, std::memcmp(y0.data(), y2.data(), 4 * y0.size())) << WeightFormatName(f);
    EXPECT_EQ(0, std::memcmp(y0.data(), y3.data(), 4 * y0.size())) << WeightFormatName(f);
    MatMul(x.data(), M, b.w, nullptr, yb.data(), &p2, opt);
    MatMulMany(x.data(), M, {&a.w, &b.w}, {ya.data(), yb1.data()}, &p3, opt);
    EXPECT_EQ(0, std::memcmp(ya.data(), y0.data(), 4 * ya.size())) << WeightFormatName(f);
    EXPECT_EQ(0, std::memcmp(yb1.data(), yb.data(), 4 * yb.size())) << WeightFormatName(f);
  }
}

}  // namespace
}  // namespace idefics
