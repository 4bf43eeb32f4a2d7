// Tests of MatMul: every SIMD kernel (AVX2, AVX-512) against its scalar twin on odd shapes, every path
// against MatMulRef, bitwise thread-count invariance, and the int8 activation error bound. Mirrors nn.Linear.
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/kernel_test_util.h"
#include "kernels/matmul_kernels.h"
#include "kernels/ops.h"

namespace idefics {
namespace {

using test::AbsProductSums;
using test::ActQuantBound;
using test::IsaGuard;
using test::MakeWeights;
using test::RandomVec;
using test::TestIsas;
using test::TestWeights;

// Float sums in another order: relative to sum |x·w|; K <= 600 here, so K·2^-24 < 4e-5 is a hard bound and
// the typical error is ~sqrt(K)·2^-24.
constexpr double kReorderTol = 4e-5;
// bf16 dot products: activations rounded to bf16 (unit roundoff 2^-8 relative) and, for non-bf16 weights in
// the GEMM, the weights too (another 2^-8).
constexpr double kBf16DotTol = 2.0 / 256 + kReorderTol;

constexpr WeightFormat kAllFormats[] = {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kF16,
                                        WeightFormat::kQ8_0, WeightFormat::kQ4_0};

bool IsQuant(WeightFormat f) {
  return f == WeightFormat::kQ8_0 || f == WeightFormat::kQ4_0;
}

std::vector<int64_t> KsFor(WeightFormat f) {
  if (IsQuant(f)) return {32, 96, 288, 576};  // odd and even block counts
  return {1, 3, 17, 31, 64, 100, 257, 576};
}

// Max over outputs of |a - b| / scale (scale from AbsProductSums, floored to avoid 0/0).
double MaxRelErr(const std::vector<float>& a, const std::vector<float>& b, const std::vector<double>& scale,
                 std::string* where = nullptr) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(double(a[i]) - b[i]) / std::max(scale[i], 1e-30);
    if (!(e <= worst)) {
      worst = e;
      if (where)
        *where = "index " + std::to_string(i) + ": " + std::to_string(a[i]) + " vs " + std::to_string(b[i]);
    }
  }
  return worst;
}

[[maybe_unused]] bool HaveAvx512() {
  return ActiveIsa() == Isa::kAvx512;
}

bool HaveAvx2() {
  return ActiveIsa() >= Isa::kAvx2;
}

TEST(MatMulTest, AgreesWithReferenceForEveryFormatAndShape) {
  for (Isa isa : TestIsas()) {
    IsaGuard guard(isa);
    SCOPED_TRACE(IsaName(isa));
    ThreadPool pool(2);
    const int64_t Ms[] = {1, 2, 3, 4, 5, 7, 9, 13, 33, 40};
    const int64_t Ns[] = {1, 17, 64, 65, 130};
    for (WeightFormat f : kAllFormats) {
      for (int64_t K : KsFor(f)) {
        for (int64_t N : Ns) {
          const TestWeights t = MakeWeights(f, N, K, static_cast<uint32_t>(K * 1000 + N));
          const std::vector<float> bias = RandomVec(N, 7);
          for (int64_t M : Ms) {
            const std::vector<float> x = RandomVec(M * K, static_cast<uint32_t>(M + 31 * K));
            std::vector<float> y(M * N), ref(M * N);
            MatMul(x.data(), M, t.w, bias.data(), y.data(), &pool);
            MatMulRef(x.data(), M, t.w, bias.data(), ref.data());
            const std::vector<double> scale = AbsProductSums(x, M, t, bias.data());
            std::string where;
            const double err = MaxRelErr(y, ref, scale, &where);
            if (IsQuant(f) && M <= GemvMaxRows(f)) {
              // int8 activations: check against the explicit bound instead.
              const std::vector<double> bound = ActQuantBound(x, M, t);
              for (size_t i = 0; i < y.size(); ++i)
                ASSERT_LE(std::fabs(double(y[i]) - ref[i]), bound[i] + kReorderTol * scale[i])
                    << WeightFormatName(f) << " M=" << M << " N=" << N << " K=" << K << " i=" << i;
            } else {
              EXPECT_LE(err, kReorderTol)
                  << WeightFormatName(f) << " M=" << M << " N=" << N << " K=" << K << " " << where;
            }
          }
        }
      }
    }
  }
}

TEST(MatMulTest, Bf16DotOptionWithinItsTolerance) {
  for (Isa isa : TestIsas()) {
    IsaGuard guard(isa);
    SCOPED_TRACE(IsaName(isa));
    ThreadPool pool(2);
    MatMulOptions opt;
    opt.bf16_dot = true;
    for (WeightFormat f : kAllFormats) {
      for (int64_t K : KsFor(f)) {
        for (int64_t M : {1, 3, 4, 5, 11}) {
          const int64_t N = 67;
          const TestWeights t = MakeWeights(f, N, K, 99);
          const std::vector<float> x = RandomVec(M * K, 5), bias = RandomVec(N, 6);
          std::vector<float> y(M * N), ref(M * N);
          MatMul(x.data(), M, t.w, bias.data(), y.data(), &pool, opt);
          MatMulRef(x.data(), M, t.w, bias.data(), ref.data());
          const std::vector<double> scale = AbsProductSums(x, M, t, bias.data());
          if (IsQuant(f) && M <= GemvMaxRows(f)) continue;  // int8 path, covered above
          EXPECT_LE(MaxRelErr(y, ref, scale), kBf16DotTol) << WeightFormatName(f) << " M=" << M << " K=" << K;
        }
      }
    }
  }
}

TEST(MatMulTest, BitwiseIndependentOfThreadCount) {
  for (Isa isa : TestIsas()) {
    IsaGuard guard(isa);
    SCOPED_TRACE(IsaName(isa));
    ThreadPool p1(1), p2(2), p3(3);
    for (WeightFormat f : kAllFormats) {
      for (bool bf16 : {false, true}) {
        MatMulOptions opt;
        opt.bf16_dot = bf16;
        const int64_t K = IsQuant(f) ? 160 : 150;
        // N = 1100: more GEMV chunks than tasks (the decreasing chunk sizes of ForGemvRows).
        for (const auto& [N, M] :
             std::vector<std::pair<int64_t, int64_t>>{{300, 1}, {300, 4}, {300, 9}, {300, 50}, {1100, 1}}) {
          const TestWeights t = MakeWeights(f, N, K, 3);
          const std::vector<float> x = RandomVec(M * K, 11);
          std::vector<float> y1(M * N), y2(M * N), y3(M * N), y0(M * N);
          MatMul(x.data(), M, t.w, nullptr, y0.data(), nullptr, opt);
          MatMul(x.data(), M, t.w, nullptr, y1.data(), &p1, opt);
          MatMul(x.data(), M, t.w, nullptr, y2.data(), &p2, opt);
          MatMul(x.data(), M, t.w, nullptr, y3.data(), &p3, opt);
          EXPECT_EQ(0, std::memcmp(y0.data(), y1.data(), 4 * M * N)) << WeightFormatName(f) << " M=" << M;
          EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), 4 * M * N)) << WeightFormatName(f) << " M=" << M;
          EXPECT_EQ(0, std::memcmp(y1.data(), y3.data(), 4 * M * N)) << WeightFormatName(f) << " M=" << M;
        }
      }
    }
  }
}

TEST(MatMulTest, ScalarDispatchMatchesSimdDispatch) {
  if (!HaveAvx2()) GTEST_SKIP() << "no AVX2+FMA+F16C on this CPU (or IDEFICS_ISA caps it)";
  for (Isa isa : TestIsas()) {
    SCOPED_TRACE(IsaName(isa));
    for (WeightFormat f : kAllFormats) {
      const int64_t K = IsQuant(f) ? 96 : 77, N = 70;
      const TestWeights t = MakeWeights(f, N, K, 21);
      for (int64_t M : {1, 2, 8}) {
        const std::vector<float> x = RandomVec(M * K, 4), bias = RandomVec(N, 8);
        std::vector<float> ys(M * N), yv(M * N);
        {
          IsaGuard g(Isa::kScalar);
          ASSERT_EQ(ActiveIsa(), Isa::kScalar);
          MatMul(x.data(), M, t.w, bias.data(), ys.data(), nullptr);
        }
        {
          IsaGuard g(isa);
          MatMul(x.data(), M, t.w, bias.data(), yv.data(), nullptr);
        }
        EXPECT_LE(MaxRelErr(yv, ys, AbsProductSums(x, M, t, bias.data())), kReorderTol)
            << WeightFormatName(f) << " M=" << M;
      }
    }
  }
}

#if defined(IDEFICS_HAVE_SIMD)
TEST(MatMulKernelTest, GemmF32IsBitwiseItsScalarTwin) {
  if (!HaveAvx512()) GTEST_SKIP() << "no AVX-512";
  std::vector<float> pack(kern::avx512::GemmPackFloats());
  auto aligned = kern::AllocAligned<float>(kern::avx512::GemmPackFloats());
  for (WeightFormat f : kAllFormats) {
    for (int64_t K : KsFor(f)) {
      const int64_t M = 23, N = 133;
      const TestWeights t = MakeWeights(f, N, K, 5);
      const std::vector<float> x = RandomVec(M * K, 6), bias = RandomVec(N, 7);
      std::vector<float> ys(M * N), yv(M * N);
      // Odd sub-ranges: rows [2, 23), cols [5, 133).
      kern::scalar::GemmF32(x.data(), K, 2, M, t.w, bias.data(), ys.data(), 5, N);
      kern::avx512::GemmF32(x.data(), K, 2, M, t.w, bias.data(), yv.data(), 5, N, aligned.get());
      for (int64_t m = 2; m < M; ++m)
        for (int64_t n = 5; n < N; ++n)
          ASSERT_EQ(ys[m * N + n], yv[m * N + n])
              << WeightFormatName(f) << " K=" << K << " m=" << m << " n=" << n;
    }
  }
}

TEST(MatMulKernelTest, GemmBf16MatchesScalarTwin) {
  if (!HaveAvx512()) GTEST_SKIP() << "no AVX-512";
  auto aligned = kern::AllocAligned<float>(kern::avx512::GemmPackFloats());
  for (WeightFormat f : kAllFormats) {
    for (int64_t K : KsFor(f)) {
      const int64_t M = 19, N = 70, Kp = (K + 1) / 2 * 2;
      const TestWeights t = MakeWeights(f, N, K, 8);
      const std::vector<float> x = RandomVec(M * K, 9);
      std::vector<uint16_t> xb(M * Kp, 0);
      for (int64_t m = 0; m < M; ++m) ConvertF32ToBf16(x.data() + m * K, xb.data() + m * Kp, K);
      std::vector<float> ys(M * N), yv(M * N);
      kern::scalar::GemmBf16(xb.data(), K, 0, M, t.w, nullptr, ys.data(), 0, N);
      kern::avx512::GemmBf16(xb.data(), K, 0, M, t.w, nullptr, yv.data(), 0, N, aligned.get());
      EXPECT_LE(MaxRelErr(yv, ys, AbsProductSums(x, M, t, nullptr)), kReorderTol)
          << WeightFormatName(f) << " K=" << K;
    }
  }
}

TEST(MatMulKernelTest, PreparedActivationsAreTheScalarIntegers) {
  if (!HaveAvx512()) GTEST_SKIP() << "no AVX-512";
  const int64_t M = 2, K = 32 * 5;
  std::vector<float> x = RandomVec(M * K, 77, 3.f);
  x[40] = std::numeric_limits<float>::quiet_NaN();  // a NaN only zeroes its own value
  for (int i = 64; i < 96; ++i) x[i] = 0.f;         // an all-zero block
  for (WeightFormat f : {WeightFormat::kQ8_0, WeightFormat::kQ4_0}) {
    kern::avx512::QuantActs acts;
    kern::avx512::PrepareQuantActs(x.data(), M, K, f, &acts);
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t b = 0; b < K / 32; ++b) {
        int8_t q[32];
        const float d = kern::QuantizeActBlock(x.data() + m * K + b * 32, q);
        const bool q4 = f == WeightFormat::kQ4_0;
        const int64_t per = q4 ? 4 : 2, j = b % per;  // block j of its record
        const uint8_t* pa = acts.data.get() + (m * acts.records + b / per) * acts.record_bytes;
        const auto* pq = reinterpret_cast<const int8_t*>(pa);
        // Q4_0: 16 lane scales in the record; Q8_0: the record's two scales after all M × records records.
        const auto* ps = reinterpret_cast<const float*>(pa + 128);
        const auto* pair_scales = reinterpret_cast<const float*>(acts.data.get() + M * acts.records * acts.record_bytes);
        const auto* pc = reinterpret_cast<const int32_t*>(pa + (q4 ? 192 : 64));
        if (!q4) {
          EXPECT_EQ(pair_scales[(m * acts.records + b / per) * 2 + j], d);
        }
        for (int i = 0; i < 32; ++i) {
          // Q8_0: [blk0 0..31, blk1 0..31]; Q4_0: lo[64] = elements 0..15 of blk0..3, hi[64] =
          // elements 16..31.
          const int64_t pos = q4 ? 64 * (i / 16) + 16 * j + i % 16 : 32 * j + i;
          ASSERT_EQ(pq[pos], q[i]) << WeightFormatName(f) << " m=" << m << " b=" << b << " i=" << i;
          if (q4) {
            EXPECT_EQ(ps[(pos % 64) / 4], d);
          }
        }
        for (int l = 0; l < 16; ++l) {
          int32_t s4 = pq[4 * l] + pq[4 * l + 1] + pq[4 * l + 2] + pq[4 * l + 3];
          if (q4) s4 += pq[64 + 4 * l] + pq[64 + 4 * l + 1] + pq[64 + 4 * l + 2] + pq[64 + 4 * l + 3];
          EXPECT_EQ(pc[l], (q4 ? -8 : -128) * s4);
        }
      }
    }
  }
}

TEST(MatMulKernelTest, GemvKernelsMatchScalarTwins) {
  if (!HaveAvx512()) GTEST_SKIP() << "no AVX-512";
  for (WeightFormat f : kAllFormats) {
    for (int64_t K : KsFor(f)) {
      for (int64_t M = 1; M <= 6; ++M) {
        const int64_t N = 37;
        const TestWeights t = MakeWeights(f, N, K, 10);
        const std::vector<float> x = RandomVec(M * K, 12), bias = RandomVec(N, 13);
        const std::vector<double> scale = AbsProductSums(x, M, t, bias.data());
        std::vector<float> ys(M * N, -1.f), yv(M * N, -1.f);
        if (IsQuant(f)) {
          kern::avx512::QuantActs acts;
          kern::avx512::PrepareQuantActs(x.data(), M, K, f, &acts);
          kern::scalar::GemvQuant(x.data(), M, t.w, bias.data(), ys.data(), 3, N);
          kern::avx512::GemvQuant(acts, t.w, bias.data(), yv.data(), 3, N);
        } else {
          kern::scalar::GemvFloat(x.data(), M, t.w, bias.data(), ys.data(), 3, N);
          kern::avx512::GemvFloat(x.data(), M, t.w, bias.data(), yv.data(), 3, N);
        }
        EXPECT_LE(MaxRelErr(yv, ys, scale), kReorderTol) << WeightFormatName(f) << " K=" << K << " M=" << M;
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < 3; ++n) EXPECT_EQ(yv[m * N + n], -1.f) << "wrote outside its row range";
        if (f == WeightFormat::kBF16) {
          std::vector<uint16_t> xb(M * K);
          ConvertF32ToBf16(x.data(), xb.data(), M * K);
          kern::scalar::GemvBf16Dot(xb.data(), M, t.w, bias.data(), ys.data(), 0, N);
          kern::avx512::GemvBf16Dot(xb.data(), M, t.w, bias.data(), yv.data(), 0, N);
          EXPECT_LE(MaxRelErr(yv, ys, scale), kReorderTol) << "bf16 dot K=" << K << " M=" << M;
        }
      }
    }
  }
}

TEST(MatMulAvx2KernelTest, GemmF32IsBitwiseItsScalarTwin) {
  if (!HaveAvx2()) GTEST_SKIP() << "no AVX2+FMA+F16C on this CPU (or IDEFICS_ISA caps it)";
  auto aligned = kern::AllocAligned<float>(kern::avx2::GemmPackFloats());
  for (WeightFormat f : kAllFormats) {
    for (int64_t K : KsFor(f)) {
      for (const auto& [M, N] : {std::pair<int64_t, int64_t>{23, 133}, {7, 300}, {50, 17}}) {
        const TestWeights t = MakeWeights(f, N, K, 5);
        const std::vector<float> x = RandomVec(M * K, 6), bias = RandomVec(N, 7);
        std::vector<float> ys(M * N, -1.f), yv(M * N, -1.f);
        // Odd sub-ranges: rows [2, M), cols [5, N).
        kern::scalar::GemmF32(x.data(), K, 2, M, t.w, bias.data(), ys.data(), 5, N);
        kern::avx2::GemmF32(x.data(), K, 2, M, t.w, bias.data(), yv.data(), 5, N, aligned.get());
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n)
            ASSERT_EQ(ys[m * N + n], yv[m * N + n])
                << WeightFormatName(f) << " M=" << M << " N=" << N << " K=" << K << " m=" << m << " n=" << n;
      }
    }
  }
}

TEST(MatMulAvx2KernelTest, PreparedActivationsAreTheScalarIntegers) {
  if (!HaveAvx2()) GTEST_SKIP() << "no AVX2+FMA+F16C on this CPU (or IDEFICS_ISA caps it)";
  const int64_t M = 2, K = 32 * 5;
  std::vector<float> x = RandomVec(M * K, 77, 3.f);
  x[40] = std::numeric_limits<float>::quiet_NaN();  // a NaN only zeroes its own value
  for (int i = 64; i < 96; ++i) x[i] = 0.f;         // an all-zero block
  kern::avx2::QuantActs acts;
  kern::avx2::PrepareQuantActs(x.data(), M, K, WeightFormat::kQ4_0, &acts);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t b = 0; b < K / 32; ++b) {
      int8_t q[32];
      const float d = kern::QuantizeActBlock(x.data() + m * K + b * 32, q);
      EXPECT_EQ(acts.d[m * (K / 32) + b], d);
      for (int i = 0; i < 32; ++i) ASSERT_EQ(acts.q[m * K + b * 32 + i], q[i]) << "m=" << m << " b=" << b;
      for (int l = 0; l < 8; ++l)
        EXPECT_EQ(acts.corr[(m * (K / 32) + b) * 8 + l],
                  -8 * (q[4 * l] + q[4 * l + 1] + q[4 * l + 2] + q[4 * l + 3]));
    }
  }
}

// Weights at the int8 extremes: Q8_0 bytes of -128 (never written by QuantizeRowQ8_0, but valid in a file)
// and +127 against activations of ±127 must not saturate the int16 pair sums.
TEST(MatMulAvx2KernelTest, QuantGemvExtremesMatchScalarTwin) {
  if (!HaveAvx2()) GTEST_SKIP() << "no AVX2+FMA+F16C on this CPU (or IDEFICS_ISA caps it)";
  const int64_t N = 5, K = 96;
  for (WeightFormat f : {WeightFormat::kQ8_0, WeightFormat::kQ4_0}) {
    TestWeights t = MakeWeights(f, N, K, 41);
    for (int64_t n = 0; n < N; ++n) {
      uint8_t* row = t.bytes.data() + n * t.w.row_bytes();
      const int64_t bytes = f == WeightFormat::kQ8_0 ? 32 : 16, stride = f == WeightFormat::kQ8_0 ? 34 : 18;
      for (int64_t b = 0; b < K / 32; ++b)
        for (int64_t i = 0; i < bytes; ++i)
          row[b * stride + 2 + i] =
              f == WeightFormat::kQ8_0 ? ((i + n) % 2 ? 0x80 : 0x7f) : ((i + n) % 2 ? 0x00 : 0xff);
    }
    std::vector<float> x(2 * K);
    for (int64_t i = 0; i < 2 * K; ++i) x[i] = (i % 3 == 0 ? -1.f : 1.f) * (i % 5 == 0 ? 0.5f : 1.f);
    for (int64_t M : {1, 2}) {
      kern::avx2::QuantActs acts;
      kern::avx2::PrepareQuantActs(x.data(), M, K, f, &acts);
      std::vector<float> ys(M * N), yv(M * N);
      kern::scalar::GemvQuant(x.data(), M, t.w, nullptr, ys.data(), 0, N);
      kern::avx2::GemvQuant(acts, t.w, nullptr, yv.data(), 0, N);
      for (int64_t i = 0; i < M * N; ++i)
        EXPECT_NEAR(yv[i], ys[i], 1e-5 * (1 + std::fabs(ys[i]))) << WeightFormatName(f);
    }
  }
}

TEST(MatMulAvx2KernelTest, GemvKernelsMatchScalarTwins) {
  if (!HaveAvx2()) GTEST_SKIP() << "no AVX2+FMA+F16C on this CPU (or IDEFICS_ISA caps it)";
  for (WeightFormat f : kAllFormats) {
    for (int64_t K : KsFor(f)) {
      for (int64_t M = 1; M <= 6; ++M) {
        const int64_t N = 37;
        const TestWeights t = MakeWeights(f, N, K, 10);
        const std::vector<float> x = RandomVec(M * K, 12), bias = RandomVec(N, 13);
        const std::vector<double> scale = AbsProductSums(x, M, t, bias.data());
        std::vector<float> ys(M * N, -1.f), yv(M * N, -1.f);
        if (IsQuant(f)) {
          kern::avx2::QuantActs acts;
          kern::avx2::PrepareQuantActs(x.data(), M, K, f, &acts);
          kern::scalar::GemvQuant(x.data(), M, t.w, bias.data(), ys.data(), 3, N);
          kern::avx2::GemvQuant(acts, t.w, bias.data(), yv.data(), 3, N);
        } else {
          kern::scalar::GemvFloat(x.data(), M, t.w, bias.data(), ys.data(), 3, N);
          kern::avx2::GemvFloat(x.data(), M, t.w, bias.data(), yv.data(), 3, N);
        }
        EXPECT_LE(MaxRelErr(yv, ys, scale), kReorderTol) << WeightFormatName(f) << " K=" << K << " M=" << M;
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < 3; ++n) EXPECT_EQ(yv[m * N + n], -1.f) << "wrote outside its row range";
      }
    }
  }
}
#endif

// MatMulMany (one dispatch over several matrices) gives the bits of separate MatMul calls, for every ISA.
TEST(MatMulTest, ManyMatchesSeparateCallsBitwise) {
  ThreadPool pool(3);
  for (Isa isa : TestIsas()) {
    IsaGuard guard(isa);
    SCOPED_TRACE(IsaName(isa));
    for (WeightFormat f : kAllFormats) {
      const int64_t K = IsQuant(f) ? 96 : 77;
      const TestWeights a = MakeWeights(f, 37, K, 51), b = MakeWeights(f, 20, K, 52);
      for (int64_t M : {1, 3, 9, 40}) {
        for (bool bf16 : {false, true}) {  // bf16: large M shares one bf16 conversion of x
          MatMulOptions opt;
          opt.bf16_dot = bf16;
          const std::vector<float> x = RandomVec(M * K, 53);
          std::vector<float> ya(M * 37), yb(M * 20), ra(M * 37), rb(M * 20);
          MatMulMany(x.data(), M, {&a.w, &b.w}, {ya.data(), yb.data()}, &pool, opt);
          MatMul(x.data(), M, a.w, nullptr, ra.data(), &pool, opt);
          MatMul(x.data(), M, b.w, nullptr, rb.data(), &pool, opt);
          EXPECT_EQ(0, std::memcmp(ya.data(), ra.data(), 4 * ya.size())) << WeightFormatName(f) << " M=" << M;
          EXPECT_EQ(0, std::memcmp(yb.data(), rb.data(), 4 * yb.size())) << WeightFormatName(f) << " M=" << M;
        }
      }
    }
  }
}

TEST(MatMulTest, ZeroKGivesBias) {
  const std::vector<float> bias = {1.f, 2.f, 3.f};
  WeightMatrix w{WeightFormat::kF32, 3, 0, bias.data()};
  std::vector<float> y(6, -7.f);
  const float x = 0.f;
  MatMul(&x, 2, w, bias.data(), y.data(), nullptr);
  EXPECT_EQ(y, (std::vector<float>{1.f, 2.f, 3.f, 1.f, 2.f, 3.f}));
}

}  // namespace
}  // namespace idefics

namespace idefics {
namespace {

TEST(GemvStatsTest, CountsTheCallingThreadsPooledGemvsByShape) {
  ThreadPool pool(2);
  const TestWeights a = MakeWeights(WeightFormat::kBF16, 40, 64, 1),
                    b = MakeWeights(WeightFormat::kBF16, 24, 64, 2);
  const std::vector<float> x = RandomVec(64, 3);
  std::vector<float> ya(40), yb(24);
  GemvStats stats;
  EXPECT_EQ(SetGemvStats(&stats), nullptr);
  MatMul(x.data(), 1, a.w, nullptr, ya.data(), &pool, MatMulOptions{});
  MatMul(x.data(), 1, a.w, nullptr, ya.data(), &pool, MatMulOptions{});
  MatMul(x.data(), 1, a.w, nullptr, ya.data(), nullptr, MatMulOptions{});  // no pool: not counted
  MatMulMany(x.data(), 1, {&a.w, &b.w}, {ya.data(), yb.data()}, &pool, MatMulOptions{});
  const std::vector<float> xs = RandomVec(64 * 64, 4);
  std::vector<float> ys(64 * 40);
  MatMul(xs.data(), 64, a.w, nullptr, ys.data(), &pool, MatMulOptions{});  // GEMM: not a GEMV
  EXPECT_EQ(SetGemvStats(nullptr), &stats);
  MatMul(x.data(), 1, a.w, nullptr, ya.data(), &pool, MatMulOptions{});  // uninstalled
  ASSERT_EQ(stats.shapes.size(), 2u);
  EXPECT_EQ(stats.shapes[0].rows, 40);
  EXPECT_EQ(stats.shapes[0].cols, 64);
  EXPECT_EQ(stats.shapes[0].matrices, 1);
  EXPECT_EQ(stats.shapes[0].calls, 2);
  EXPECT_DOUBLE_EQ(stats.shapes[0].bytes, 2.0 * 40 * 64 * 2);
  EXPECT_GE(stats.shapes[0].seconds, 0.0);
  EXPECT_EQ(stats.shapes[1].rows, 64);
  EXPECT_EQ(stats.shapes[1].matrices, 2);
  EXPECT_EQ(stats.shapes[1].calls, 1);
  EXPECT_DOUBLE_EQ(stats.shapes[1].bytes, 64.0 * 64 * 2);
}

}  // namespace
}  // namespace idefics
