// Tests of CPU feature detection and the ISA override hook. Mirrors no reference class.
#include "kernels/cpu_features.h"

#include <gtest/gtest.h>

namespace idefics {
namespace {

TEST(CpuFeaturesTest, ConsistentLevels) {
  const CpuFeatures& f = DetectCpuFeatures();
  if (f.avx512f) {
    EXPECT_TRUE(f.os_avx512);
  }
  if (f.avx512bw || f.avx512vl || f.avx512_bf16 || f.avx512_vnni) {
    EXPECT_TRUE(f.avx512f);
  }
  if (ActiveIsa() == Isa::kAvx512) {
    EXPECT_TRUE(f.avx512_bf16 && f.avx512_vnni && f.fma && f.f16c);
  }
  EXPECT_FALSE(DescribeCpu().empty());
}

TEST(CpuFeaturesTest, OverrideCapsAndRestores) {
  const Isa before = ActiveIsa();
  const Isa prev = SetActiveIsaForTesting(Isa::kScalar);
  EXPECT_EQ(prev, before);
  EXPECT_EQ(ActiveIsa(), Isa::kScalar);
  SetActiveIsaForTesting(Isa::kAvx512);  // clamped to what the hardware has
  EXPECT_LE(static_cast<int>(ActiveIsa()), static_cast<int>(Isa::kAvx512));
  SetActiveIsaForTesting(before);
  EXPECT_EQ(ActiveIsa(), before);
  EXPECT_STREQ(IsaName(Isa::kScalar), "scalar");
}

}  // namespace
}  // namespace idefics
