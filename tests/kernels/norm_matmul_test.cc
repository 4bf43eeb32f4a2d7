// RmsNormMatMulMany: RMSNorm fused into the conversion of the activations (int8 / bf16 GEMM) or applied in
// blocks of rows (float32 path) gives the bits of RmsNorm into a buffer followed by MatMulMany, for every
// format, option and ISA, across the 512-row blocking and thread counts. Mirrors Idefics2PerceiverLayer's
// context norm + k/v projections.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"

namespace idefics {
namespace {

using test::IsaGuard;
using test::MakeWeights;
using test::RandomVec;
using test::TestWeights;

TEST(RmsNormMatMulManyTest, BitwiseNormThenMatMulMany) {
  ThreadPool pool1(1), pool3(3);
  const int64_t K = 96;
  const std::vector<float> norm_w = RandomVec(K, 61);
  const float eps = 1e-5f;
  std::vector<Isa> isas = test::TestIsas();
  if (ActiveIsa() != Isa::kScalar) isas.push_back(Isa::kScalar);  // and the scalar twins
  for (Isa isa : isas) {
    IsaGuard guard(isa);
    SCOPED_TRACE(IsaName(isa));
    for (WeightFormat f :
         {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kQ8_0, WeightFormat::kQ4_0}) {
      const TestWeights a = MakeWeights(f, 70, K, 62), b = MakeWeights(f, 33, K, 63);
      for (int64_t M : {1, 5, 40, 1025, 2100}) {  // GEMV, GEMM, more rows than one block (512 / 2048 rows)
        const std::vector<float> x = RandomVec(M * K, 64, 3.f);
        std::vector<float> xn(M * K);
        RmsNorm(x.data(), M, K, norm_w.data(), eps, xn.data(), &pool3);
        for (int mode = 0; mode < 3; ++mode) {  // exact, bf16 dot products, int8 dot products
          MatMulOptions opt;
          opt.bf16_dot = mode == 1;
          opt.int8_dot = mode == 2;
          std::vector<float> ra(M * 70), rb(M * 33);
          MatMulMany(xn.data(), M, {&a.w, &b.w}, {ra.data(), rb.data()}, &pool3, opt);
          for (ThreadPool* pool : {&pool1, &pool3}) {
            std::vector<float> ya(M * 70, -1.f), yb(M * 33, -1.f);
            RmsNormMatMulMany(x.data(), M, norm_w.data(), eps, {&a.w, &b.w}, {ya.data(), yb.data()}, pool,
                              opt);
            EXPECT_EQ(0, std::memcmp(ya.data(), ra.data(), 4 * ya.size()))
                << WeightFormatName(f) << " M=" << M << " mode=" << mode << " threads=" << pool->size();
            EXPECT_EQ(0, std::memcmp(yb.data(), rb.data(), 4 * yb.size()))
                << WeightFormatName(f) << " M=" << M << " mode=" << mode << " threads=" << pool->size();
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace idefics
