// The weight registry: the real idefics2-8b inventory (763 tensors, 8,402,768,112 parameters) and one-pass
// reporting of everything wrong with a checkpoint.
#include "io/weight_registry.h"

#include <gtest/gtest.h>

#include "support/golden.h"
#include "support/real_config.h"

namespace idefics {
namespace {

TEST(WeightRegistry, RealIdefics2Inventory) {
  auto c = Idefics2Config::Parse(test::kIdefics2_8bConfigJson, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto specs = DeclareIdefics2Weights(*c);
  EXPECT_EQ(specs.size(), 763u);
  EXPECT_EQ(CountParameters(specs), 8402768112LL);
  EXPECT_EQ(CountParameters(specs) * 4, 33611072448LL);  // total_size of the F32 index
}

TEST(WeightRegistry, TinyModelsMatchTheirCheckpoints) {
  for (const char* name : {"idefics2-tiny-a", "idefics2-tiny-b"}) {
    auto c = Idefics2Config::Load(test::TinyModelDir(name));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto store = TensorStore::OpenFolder(test::TinyModelDir(name));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto specs = DeclareIdefics2Weights(*c);
    EXPECT_TRUE(CheckWeights(**store, specs).ok()) << CheckWeights(**store, specs).ToString();
  }
}

TEST(WeightRegistry, ReportsEverythingAtOnce) {
  auto c = Idefics2Config::Load(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(c.ok());
  auto store = TensorStore::OpenFolder(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(store.ok());
  auto specs = DeclareIdefics2Weights(*c);
  specs.erase(specs.begin());          // the patch embedding becomes "unexpected"
  specs[0].shape = {7};                // mis-shaped
  specs.push_back({"extra.weight", {3}, false});  // missing
  Status st = CheckWeights(**store, specs);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("missing tensors (1)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("extra.weight"), std::string::npos);
  EXPECT_NE(st.message().find("mis-shaped tensors (1)"), std::string::npos);
  EXPECT_NE(st.message().find("unexpected tensors (1)"), std::string::npos);
  EXPECT_NE(st.message().find("patch_embedding.weight"), std::string::npos);
}

}  // namespace
}  // namespace idefics
