// Tests of the Q8_0/Q4_0 quantizers (round-trip bounds, layouts) and the bulk bf16 conversion (SIMD vs twin).
// Mirrors no reference class (block formats described in kernels/matmul.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/ops_kernels.h"
#include "tensor/dtype.h"

namespace idefics {
namespace {

// Float rounding slack on top of the exact bounds (x·(1/d) is itself rounded).
constexpr double kBoundSlack = 1e-5;

float BlockScale(const uint8_t* block) {
  uint16_t h;
  std::memcpy(&h, block, 2);
  return F16ToF32(h);
}

TEST(QuantizeTest, Q8_0RoundTripWithinHalfAStep) {
  for (float scale : {1e-3f, 1.f, 300.f}) {
    const int64_t K = 32 * 37;
    std::vector<float> x = test::RandomVec(K, 17, scale);
    x[5] = 0.f;
    std::vector<uint8_t> q(WeightRowBytes(WeightFormat::kQ8_0, K));
    QuantizeRowQ8_0(x.data(), K, q.data());
    const WeightMatrix w{WeightFormat::kQ8_0, 1, K, q.data()};
    std::vector<float> back(K);
    DequantizeRow(w, 0, back.data());
    for (int64_t b = 0; b < K / 32; ++b) {
      const float d = BlockScale(q.data() + 34 * b);
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
      // f16 rounding of the scale (absolute 2^-24 spacing once it is subnormal).
      EXPECT_NEAR(d, amax / 127, std::max(amax / 127 * 1e-3, 6e-8));
      for (int i = 0; i < 32; ++i)
        ASSERT_LE(std::fabs(x[b * 32 + i] - back[b * 32 + i]), d * (0.5 + kBoundSlack)) << "block " << b;
    }
  }
}

TEST(QuantizeTest, Q4_0RoundTripWithinOneStep) {
  const int64_t K = 32 * 41;
  const std::vector<float> x = test::RandomVec(K, 19, 2.f);
  std::vector<uint8_t> q(WeightRowBytes(WeightFormat::kQ4_0, K));
  QuantizeRowQ4_0(x.data(), K, q.data());
  const WeightMatrix w{WeightFormat::kQ4_0, 1, K, q.data()};
  std::vector<float> back(K);
  DequantizeRow(w, 0, back.data());
  double sum_sq = 0, sum_d2 = 0;
  for (int64_t b = 0; b < K / 32; ++b) {
    const float d = std::fabs(BlockScale(q.data() + 18 * b));
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    EXPECT_NEAR(d, amax / 8, amax / 8 * 1e-3);
    for (int i = 0; i < 32; ++i) {
      const double e = std::fabs(x[b * 32 + i] - back[b * 32 + i]);
      ASSERT_LE(e, d * (1 + kBoundSlack)) << "block " << b;
      sum_sq += e * e;
      sum_d2 += double(d) * d;
    }
  }
  // Typical error is that of uniform rounding, d/sqrt(12); allow some clamping at the +7 end.
  EXPECT_LT(std::sqrt(sum_sq / sum_d2), 0.4);
}

TEST(QuantizeTest, Q4_0LayoutLowNibbleFirstHalf) {
  uint8_t block[18];
  const uint16_t one = F32ToF16(1.f);
  std::memcpy(block, &one, 2);
  for (int i = 0; i < 16; ++i) block[2 + i] = static_cast<uint8_t>(i | ((15 - i) << 4));
  const WeightMatrix w{WeightFormat::kQ4_0, 1, 32, block};
  float out[32];
  DequantizeRow(w, 0, out);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(out[i], i - 8);
    EXPECT_EQ(out[i + 16], 15 - i - 8);
  }
  // Requantizing those values reproduces the nibbles (the -8 end is the extreme).
  uint8_t again[18];
  QuantizeRowQ4_0(out, 32, again);
  float out2[32];
  DequantizeRow(WeightMatrix{WeightFormat::kQ4_0, 1, 32, again}, 0, out2);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(out2[i], out[i]) << i;
}

TEST(QuantizeTest, ZeroAndNonFiniteBlocksDoNotCrash) {
  std::vector<float> x(64, 0.f);
  std::vector<uint8_t> q8(WeightRowBytes(WeightFormat::kQ8_0, 64)),
      q4(WeightRowBytes(WeightFormat::kQ4_0, 64));
  QuantizeRowQ8_0(x.data(), 64, q8.data());
  QuantizeRowQ4_0(x.data(), 64, q4.data());
  std::vector<float> back(64, 1.f);
  DequantizeRow(WeightMatrix{WeightFormat::kQ8_0, 1, 64, q8.data()}, 0, back.data());
  for (float v : back) EXPECT_EQ(v, 0.f);
  DequantizeRow(WeightMatrix{WeightFormat::kQ4_0, 1, 64, q4.data()}, 0, back.data());
  for (float v : back) EXPECT_EQ(v, 0.f);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[40] = std::numeric_limits<float>::infinity();
  QuantizeRowQ8_0(x.data(), 64, q8.data());
  QuantizeRowQ4_0(x.data(), 64, q4.data());
}

TEST(QuantizeTest, DequantizeSegmentMatchesRow) {
  for (WeightFormat f : {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kF16, WeightFormat::kQ8_0,
                         WeightFormat::kQ4_0}) {
    const test::TestWeights t = test::MakeWeights(f, 3, 128, 4);
    std::vector<float> seg(64);
    DequantizeRowSegment(t.w, 2, 32, 64, seg.data());
    for (int i = 0; i < 64; ++i) EXPECT_EQ(seg[i], t.dense[2 * 128 + 32 + i]) << WeightFormatName(f);
  }
}

std::vector<float> SpecialFloats() {
  std::vector<float> v = test::RandomVec(1000, 23, 10.f);
  const float specials[] = {0.f,
                            -0.f,
                            1.f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min() * 12345,
                            std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::min()};
  for (float s : specials) v.push_back(s);
  // Exact halfway cases: round to even both ways, and the carry into the exponent.
  for (uint32_t bits : {0x3f808000u, 0x3f818000u, 0x3fff8000u, 0x7f7f8000u, 0x3f80ffffu}) {
    float f;
    std::memcpy(&f, &bits, 4);
    v.push_back(f);
  }
  return v;
}

TEST(ConvertTest, F32ToBf16SimdIsBitwiseScalar) {
  const std::vector<float> v = SpecialFloats();
  for (int64_t n : {0, 1, 15, 16, 17, static_cast<int>(v.size())}) {
    std::vector<uint16_t> a(n + 1, 0xdead), b(n + 1, 0xdead);
    kern::scalar::ConvertF32ToBf16(v.data(), a.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(a[i], F32ToBf16(v[i]));
#if defined(IDEFICS_HAVE_SIMD)
    if (ActiveIsa() == Isa::kAvx512) {
      kern::avx512::ConvertF32ToBf16(v.data(), b.data(), n);
      for (int64_t i = 0; i <= n; ++i) ASSERT_EQ(a[i], b[i]) << "i=" << i << " n=" << n;
      std::vector<float> fa(n + 1, 7.f), fb(n + 1, 7.f);
      kern::scalar::ConvertBf16ToF32(a.data(), fa.data(), n);
      kern::avx512::ConvertBf16ToF32(a.data(), fb.data(), n);
      ASSERT_EQ(0, std::memcmp(fa.data(), fb.data(), 4 * (n + 1)));
    }
#endif
  }
}

}  // namespace
}  // namespace idefics
