// Synthetic folders load like real ones and match the weight registry.
#include "io/synth.h"

#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "io/weight_registry.h"
#include "support/golden.h"

namespace idefics {
namespace {

TEST(Synth, TinyFolderRoundTrips) {
  const std::string dir = test::MakeTempDir("synth");
  SynthOptions o;
  o.preset = "tiny";
  o.dtype = DType::kBF16;
  ASSERT_TRUE(WriteSynthFolder(dir, o).ok());
  auto m = ModelFolder::Load(dir);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto store = TensorStore::OpenFolder(dir);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(CheckWeights(**store, DeclareIdefics2Weights(m->config)).ok());
}

TEST(Synth, RealDimensionsConfigWithFewerLayers) {
  SynthOptions o;
  o.text_layers = 2;
  auto text = SynthConfigJson(o);
  ASSERT_TRUE(text.ok());
  auto c = Idefics2Config::Parse(*text, "synth");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->text.num_hidden_layers, 2);
  EXPECT_EQ(c->vision.hidden_size, 1152);
  EXPECT_EQ(DeclareIdefics2Weights(*c).size(), 763u - 30 * 9);
}

}  // namespace
}  // namespace idefics
