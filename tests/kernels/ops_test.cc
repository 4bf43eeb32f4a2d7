// Tests of the ops.h vector kernels: each SIMD version (AVX2, AVX-512) against its scalar twin on lengths
// with odd tails, and the transcendental ones against double-precision truth. Mirrors torch's float32 CPU
// ops.
#include "kernels/ops.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/kernel_test_util.h"
#include "kernels/ops_kernels.h"

namespace idefics {
namespace {

// Sums in another order (Dot, norms), relative to the sum of magnitudes.
constexpr double kSumTol = 2e-6;
// Elementwise float results: a few ulp.
constexpr double kUlpTol = 4e-7;
// Vector exp / sigmoid-based activations vs double-precision truth (relative).
constexpr double kExpTol = 3e-7;
constexpr double kActTol = 1e-6;
// Softmax: exp differs by an ulp and the normalizing sum runs in another order (~sqrt(n)·2^-24 relative).
constexpr double kSoftmaxTol = 1e-5;
// GELU vs the float formula with std::tanh: that formula loses up to ~1 ulp of (1 + tanh) absolutely.
constexpr double kGeluVsTanhFormulaAbs = 2e-7;

const int64_t kLengths[] = {0, 1, 7, 15, 16, 17, 33, 64, 100, 1000, 4099};

// One SIMD family's ops (the same signatures as the scalar twins).
struct OpsFamily {
  const char* name;
  float (*dot)(const float*, const float*, int64_t);
  void (*axpy)(float, const float*, float*, int64_t);
  void (*add)(const float*, const float*, float*, int64_t);
  void (*mul)(const float*, const float*, float*, int64_t);
  void (*scale)(float*, float, int64_t);
  void (*rms_norm)(const float*, const float*, int64_t, float, float*);
  void (*layer_norm)(const float*, const float*, const float*, int64_t, float, float*);
  void (*softmax)(float*, int64_t);
  void (*exp)(const float*, float*, int64_t);
  void (*silu)(const float*, float*, int64_t);
  void (*silu_mul)(const float*, const float*, float*, int64_t);
  void (*gelu)(const float*, float*, int64_t);
  void (*to_bf16)(const float*, uint16_t*, int64_t);
  void (*from_bf16)(const uint16_t*, float*, int64_t);
};

#define IDEFICS_OPS_FAMILY(ns)                                                                 \
  OpsFamily {                                                                                  \
#ns, &kern::ns::Dot, &kern::ns::Axpy, &kern::ns::Add, &kern::ns::Mul, &kern::ns::Scale,    \
        &kern::ns::RmsNorm, &kern::ns::LayerNorm, &kern::ns::SoftmaxInPlace, &kern::ns::Exp,   \
        &kern::ns::Silu, &kern::ns::SiluMul, &kern::ns::GeluTanh, &kern::ns::ConvertF32ToBf16, \
        &kern::ns::ConvertBf16ToF32                                                            \
  }

// The SIMD families this CPU runs (as capped by IDEFICS_ISA): AVX2 from kAvx2, AVX-512 from kAvx512.
std::vector<OpsFamily> SimdFamilies() {
  std::vector<OpsFamily> v;
#if defined(IDEFICS_HAVE_SIMD)
  if (ActiveIsa() >= Isa::kAvx2) v.push_back(IDEFICS_OPS_FAMILY(avx2));
  if (ActiveIsa() >= Isa::kAvx512) v.push_back(IDEFICS_OPS_FAMILY(avx512));
#endif
  return v;
}

#define SKIP_WITHOUT_SIMD() \
  if (SimdFamilies().empty()) GTEST_SKIP() << "no AVX2+FMA+F16C on this CPU (or IDEFICS_ISA caps it)"

double RelDiff(double a, double b, double scale) {
  return std::fabs(a - b) / std::max(scale, 1e-30);
}

namespace ref = kern::scalar;

TEST(OpsTest, DotAxpyAddMulScaleMatchTwins) {
  SKIP_WITHOUT_SIMD();
  for (const OpsFamily& simd : SimdFamilies()) {
    SCOPED_TRACE(simd.name);
    for (int64_t n : kLengths) {
      const std::vector<float> a = test::RandomVec(n, 1), b = test::RandomVec(n, 2);
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(a[i]) * b[i]);
      EXPECT_LE(RelDiff(simd.dot(a.data(), b.data(), n), ref::Dot(a.data(), b.data(), n), mag), kSumTol) << n;
      std::vector<float> y1 = b, y2 = b;
      simd.axpy(0.37f, a.data(), y1.data(), n);
      ref::Axpy(0.37f, a.data(), y2.data(), n);
      // The SIMD build may contract alpha·x + y into one FMA (one rounding fewer).
      for (int64_t i = 0; i < n; ++i)
        ASSERT_LE(std::fabs(y1[i] - y2[i]), kUlpTol * (std::fabs(y2[i]) + 0.37 * std::fabs(a[i])));
      simd.add(a.data(), b.data(), y1.data(), n);
      ref::Add(a.data(), b.data(), y2.data(), n);
      EXPECT_EQ(y1, y2) << n;
      simd.mul(a.data(), b.data(), y1.data(), n);
      ref::Mul(a.data(), b.data(), y2.data(), n);
      EXPECT_EQ(y1, y2) << n;
      simd.scale(y1.data(), -3.f, n);
      ref::Scale(y2.data(), -3.f, n);
      EXPECT_EQ(y1, y2) << n;
    }
  }
}

TEST(OpsTest, NormsMatchTwins) {
  SKIP_WITHOUT_SIMD();
  for (const OpsFamily& simd : SimdFamilies()) {
    SCOPED_TRACE(simd.name);
    for (int64_t n : kLengths) {
      if (n == 0) continue;
      const std::vector<float> x = test::RandomVec(n, 3, 2.f), w = test::RandomVec(n, 4),
                               b = test::RandomVec(n, 5);
      std::vector<float> y1(n), y2(n);
      for (const float* wp : {w.data(), static_cast<const float*>(nullptr)}) {
        simd.rms_norm(x.data(), wp, n, 1e-5f, y1.data());
        ref::RmsNorm(x.data(), wp, n, 1e-5f, y2.data());
        for (int64_t i = 0; i < n; ++i) ASSERT_LE(RelDiff(y1[i], y2[i], std::fabs(y2[i])), kSumTol) << n;
        simd.layer_norm(x.data(), wp, wp ? b.data() : nullptr, n, 1e-6f, y1.data());
        ref::LayerNorm(x.data(), wp, wp ? b.data() : nullptr, n, 1e-6f, y2.data());
        // (x - mean) cancels; the error is relative to the input scale.
        for (int64_t i = 0; i < n; ++i)
          ASSERT_LE(std::fabs(y1[i] - y2[i]), kSumTol * 10 * (1 + std::fabs(y2[i]))) << n;
      }
      // In place.
      std::vector<float> z = x;
      simd.rms_norm(z.data(), w.data(), n, 1e-5f, z.data());
      ref::RmsNorm(x.data(), w.data(), n, 1e-5f, y2.data());
      for (int64_t i = 0; i < n; ++i) ASSERT_LE(RelDiff(z[i], y2[i], std::fabs(y2[i])), kSumTol);
    }
  }
}

// Softmax, exp and the activations of every SIMD family against the scalar twins (odd lengths, in place),
// and the bf16 conversions bitwise (including NaN, infinities, denormals and ties).
TEST(OpsTest, ElementwiseMatchTwins) {
  SKIP_WITHOUT_SIMD();
  for (const OpsFamily& simd : SimdFamilies()) {
    SCOPED_TRACE(simd.name);
    for (int64_t n : kLengths) {
      std::vector<float> x = test::RandomVec(n, 21, 4.f), up = test::RandomVec(n, 22);
      std::vector<float> y1(n), y2(n);
      simd.exp(x.data(), y1.data(), n);
      ref::Exp(x.data(), y2.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_LE(RelDiff(y1[i], y2[i], y2[i]), kExpTol) << n;
      simd.silu(x.data(), y1.data(), n);
      ref::Silu(x.data(), y2.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_LE(RelDiff(y1[i], y2[i], std::fabs(y2[i])), 2 * kActTol) << n;
      simd.gelu(x.data(), y1.data(), n);
      ref::GeluTanh(x.data(), y2.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        // exp(-2u) turns the rounding of u into a relative error ~|2u|·2^-24 in the negative tail.
        const double u = 0.7978845608028654 * (x[i] + 0.044715 * x[i] * x[i] * x[i]);
        ASSERT_LE(std::fabs(y1[i] - y2[i]), 2 * kActTol * (1 + std::fabs(u)) * std::fabs(y2[i]) + 1e-35) << n;
      }
      std::vector<float> g = x;
      simd.silu_mul(g.data(), up.data(), g.data(), n);  // in place
      ref::SiluMul(x.data(), up.data(), y2.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_LE(RelDiff(g[i], y2[i], std::fabs(y2[i])), 2 * kActTol) << n;
      if (n > 0) {
        std::vector<float> a = x, b = x;
        if (n > 2) a[n - 1] = b[n - 1] = -std::numeric_limits<float>::infinity();
        simd.softmax(a.data(), n);
        ref::SoftmaxInPlace(b.data(), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_LE(std::fabs(a[i] - b[i]), kSoftmaxTol * b[i] + 1e-12) << n;
      }
      const float inf = std::numeric_limits<float>::infinity();
      const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                                inf,
                                -inf,
                                1e-40f,
                                -3e-39f,
                                1.00390625f,  // exactly halfway between two bf16 values: ties to even
                                1.01171875f,
                                3.4e38f,
                                0.f,
                                -0.f};
      for (int64_t i = 0; i < n && i < 10; ++i) x[(i * 7919) % n] = specials[i];
      std::vector<uint16_t> h1(n, 1), h2(n, 2);
      simd.to_bf16(x.data(), h1.data(), n);
      ref::ConvertF32ToBf16(x.data(), h2.data(), n);
      EXPECT_EQ(h1, h2) << n;
      simd.from_bf16(h2.data(), y1.data(), n);
      ref::ConvertBf16ToF32(h2.data(), y2.data(), n);
      if (n > 0) {
        EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), sizeof(float) * n)) << n;  // NaN bits too
      }
    }
  }
}

TEST(OpsTest, RmsNormFormula) {
  const std::vector<float> x = {1.f, -2.f, 3.f, 0.5f}, w = {1.f, 2.f, 0.5f, -1.f};
  std::vector<float> y(4);
  RmsNorm(x.data(), w.data(), 4, 1e-5f, y.data());
  const double ms = (1 + 4 + 9 + 0.25) / 4.0, r = 1 / std::sqrt(ms + 1e-5);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], w[i] * x[i] * r, 1e-6);
}

TEST(OpsTest, SoftmaxMatchesTwinAndSumsToOne) {
  for (int64_t n : kLengths) {
    if (n == 0) continue;
    std::vector<float> x = test::RandomVec(n, 6, 5.f);
    if (n > 1) x[0] = -std::numeric_limits<float>::infinity();
    std::vector<float> a = x, b = x;
    SoftmaxInPlace(a.data(), n);
    ref::SoftmaxInPlace(b.data(), n);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) {
      s += a[i];
      ASSERT_LE(std::fabs(a[i] - b[i]), kSoftmaxTol * b[i] + 1e-12) << n << " " << i;
    }
    if (n > 1) {
      EXPECT_EQ(a[0], 0.f);
    }
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
}

TEST(OpsTest, ExpAgainstDoubleTruth) {
  std::vector<std::pair<const char*, void (*)(const float*, float*, int64_t)>> exps = {{"dispatched", &Exp}};
  for (const OpsFamily& f : SimdFamilies()) exps.emplace_back(f.name, f.exp);
  for (const auto& [name, exp_fn] : exps) {
    SCOPED_TRACE(name);
    std::vector<float> x;
    for (float v = -103.f; v < 88.7f; v += 0.0173f) x.push_back(v);
    std::vector<float> y(x.size());
    exp_fn(x.data(), y.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const double t = std::exp(double(x[i]));
      if (t < std::numeric_limits<float>::min()) {
        ASSERT_LE(std::fabs(y[i] - t), 2 * std::numeric_limits<float>::denorm_min()) << x[i];
      } else {
        ASSERT_LE(RelDiff(y[i], t, t), kExpTol) << x[i];
      }
    }
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> sp = {0.f, -inf, inf, 100.f, -200.f, std::numeric_limits<float>::quiet_NaN()};
    std::vector<float> ys(sp.size());
    exp_fn(sp.data(), ys.data(), static_cast<int64_t>(sp.size()));
    EXPECT_EQ(ys[0], 1.f);
    EXPECT_EQ(ys[1], 0.f);
    EXPECT_EQ(ys[2], inf);
    EXPECT_EQ(ys[3], inf);
    EXPECT_EQ(ys[4], 0.f);
    EXPECT_TRUE(std::isnan(ys[5]));
  }
}

// The AVX2 exp applies 2^n as two exact powers instead of vscalefps: the same values as the AVX-512 one,
// including gradual underflow, overflow and NaN.
TEST(OpsTest, Avx2ExpIsBitwiseTheAvx512Exp) {
  const std::vector<OpsFamily> fams = SimdFamilies();
  if (fams.size() < 2) GTEST_SKIP() << "needs both AVX2 and AVX-512 (or IDEFICS_ISA caps it)";
  std::vector<float> x;
  for (float v = -110.f; v < 92.f; v += 0.00731f) x.push_back(v);
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  x.push_back(std::numeric_limits<float>::infinity());
  x.push_back(-std::numeric_limits<float>::infinity());
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> a(n), b(n);
  fams[0].exp(x.data(), a.data(), n);
  fams[1].exp(x.data(), b.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t ua, ub;
    std::memcpy(&ua, &a[i], 4);
    std::memcpy(&ub, &b[i], 4);
    ASSERT_EQ(ua, ub) << "x=" << x[i] << " " << a[i] << " vs " << b[i];
  }
}

TEST(OpsTest, ActivationsAgainstDoubleTruthAndTwins) {
  std::vector<float> x;
  for (float v = -20.f; v < 20.f; v += 0.0037f) x.push_back(v);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> silu(n), gelu(n), silu_ref(n), gelu_ref(n), up = test::RandomVec(n, 8), sm(n), sm_ref(n);
  Silu(x.data(), silu.data(), n);
  GeluTanh(x.data(), gelu.data(), n);
  SiluMul(x.data(), up.data(), sm.data(), n);
  ref::Silu(x.data(), silu_ref.data(), n);
  ref::GeluTanh(x.data(), gelu_ref.data(), n);
  ref::SiluMul(x.data(), up.data(), sm_ref.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    const double ts = v / (1 + std::exp(-v));
    // 0.5·v·(1 + tanh(u)) written as v / (1 + exp(-2u)) so double precision does not cancel for v << 0.
    const double tg = v / (1 + std::exp(-2 * std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    ASSERT_LE(RelDiff(silu[i], ts, std::fabs(ts)), kActTol) << v;
    ASSERT_LE(RelDiff(silu_ref[i], ts, std::fabs(ts)), kActTol) << v;
    ASSERT_LE(RelDiff(sm[i], ts * up[i], std::fabs(ts * up[i])), kActTol + kUlpTol) << v;
    ASSERT_LE(RelDiff(sm_ref[i], ts * up[i], std::fabs(ts * up[i])), kActTol + kUlpTol) << v;
    // The float rounding of u = √(2/π)(x + 0.044715x³) becomes a relative error ~|2u|·2^-24 after exp(-2u),
    // which matters only in the far negative tail (values < 1e-20); below ~1e-35 compare absolutely.
    const double ug = std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v);
    const double gtol = kActTol * (1 + std::fabs(ug)) * std::fabs(tg) + 1e-35;
    ASSERT_LE(std::fabs(gelu[i] - tg), gtol) << v;
    ASSERT_LE(std::fabs(gelu_ref[i] - tg), gtol) << v;
    // And against the float formula transformers evaluates (0.5·x·(1 + tanhf(u))).
    const float u = 0.7978845608028654f * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
    const float tf = 0.5f * x[i] * (1.f + std::tanh(u));
    ASSERT_LE(std::fabs(gelu[i] - tf), kActTol * std::fabs(tf) + kGeluVsTanhFormulaAbs * std::fabs(x[i]))
        << v;
  }
}

}  // namespace
}  // namespace idefics

namespace idefics {
namespace {

// Each ISA's WeightedRows against its own Axpy, one key at a time: bitwise, for row counts around the
// 4-row register blocks, widths around the 64-column slices, strides past the data.
template <typename WeightedFn, typename AxpyFn>
void ExpectWeightedRowsIsItsAxpyLoop(WeightedFn weighted, AxpyFn axpy, const char* name) {
  for (int64_t rows : {1, 3, 4, 6}) {
    for (int64_t d : {8, 17, 64, 128, 130}) {
      for (int64_t n : {0, 1, 5, 33, 64, 97}) {
        const int64_t p_stride = n + 3, v_stride = d + 5, out_stride = d + 2;
        const std::vector<float> p = test::RandomVec(rows * p_stride, 40),
                                 v = test::RandomVec(n * v_stride + 1, 41);
        std::vector<float> got(rows * out_stride, -7.f), want(rows * out_stride, -7.f);
        weighted(p.data(), p_stride, rows, v.data(), v_stride, n, d, got.data(), out_stride);
        for (int64_t r = 0; r < rows; ++r) {
          float* o = want.data() + r * out_stride;
          std::fill(o, o + d, 0.f);
          for (int64_t j = 0; j < n; ++j) axpy(p[r * p_stride + j], v.data() + j * v_stride, o, d);
        }
        ASSERT_EQ(0, std::memcmp(got.data(), want.data(), sizeof(float) * got.size()))
            << name << " rows=" << rows << " d=" << d << " n=" << n;
      }
    }
  }
}

TEST(OpsTest, WeightedRowsIsBitwiseAxpyPerKeyOnEveryIsa) {
  ExpectWeightedRowsIsItsAxpyLoop(kern::scalar::WeightedRows, kern::scalar::Axpy, "scalar");
#if defined(IDEFICS_HAVE_SIMD)
  if (ActiveIsa() >= Isa::kAvx2)
    ExpectWeightedRowsIsItsAxpyLoop(kern::avx2::WeightedRows, kern::avx2::Axpy, "avx2");
  if (ActiveIsa() >= Isa::kAvx512)
    ExpectWeightedRowsIsItsAxpyLoop(kern::avx512::WeightedRows, kern::avx512::Axpy, "avx512");
#endif
}

}  // namespace
}  // namespace idefics
