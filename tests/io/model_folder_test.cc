// A broken model folder gets a clear error naming the file: missing shard, missing config, fields left out.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/weight_registry.h"
#include "support/golden.h"

namespace idefics {
namespace {

namespace fs = std::filesystem;

std::string CopyTinyA(const std::string& tag) {
  const std::string dir = test::MakeTempDir(tag);
  for (const auto& e : fs::directory_iterator(test::TinyModelDir("idefics2-tiny-a"))) {
    fs::copy_file(e.path(), fs::path(dir) / e.path().filename());
    fs::permissions(fs::path(dir) / e.path().filename(), fs::perms::owner_write, fs::perm_options::add);
  }
  return dir;
}

TEST(ModelFolder, MissingShardIsNamed) {
  const std::string dir = CopyTinyA("noshard");
  fs::remove(fs::path(dir) / "model-00002-of-00003.safetensors");
  auto s = TensorStore::OpenFolder(dir);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("model-00002-of-00003.safetensors"), std::string::npos)
      << s.status().message();
}

TEST(ModelFolder, MissingConfigIsNamed) {
  const std::string dir = CopyTinyA("nocfg");
  fs::remove(fs::path(dir) / "config.json");
  auto m = ModelFolder::Load(dir);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("config.json"), std::string::npos) << m.status().message();
}

TEST(ModelFolder, MissingConfigFieldsFallBackToDefaultsAndTheCheckSaysSo) {
  // Without text_config the defaults (hidden 4096, 32 layers ...) do not fit the tiny checkpoint: the weight
  // check lists every mismatch in one message instead of failing later.
  const std::string dir = CopyTinyA("fields");
  std::ofstream(fs::path(dir) / "config.json") << R"({"model_type":"idefics2","image_token_id":4001,
    "vision_config":{"hidden_size":32,"intermediate_size":72,"num_hidden_layers":2,"num_attention_heads":2,
    "image_size":980,"patch_size":14},"perceiver_config":{"resampler_n_latents":8,"resampler_depth":2,
    "resampler_n_heads":4,"resampler_head_dim":12,"num_key_value_heads":2},
    "text_config":{"vocab_size":4003,"hidden_size":32,"intermediate_size":80,"num_attention_heads":4,
    "num_key_value_heads":2,"model_type":"mistral"}})";
  auto c = Idefics2Config::Load(dir);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->text.num_hidden_layers, 32);  // MistralConfig default
  auto store = TensorStore::OpenFolder(dir);
  ASSERT_TRUE(store.ok());
  Status st = CheckWeights(**store, DeclareIdefics2Weights(*c));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("missing tensors (270)"), std::string::npos) << st.message();
}

TEST(ModelFolder, CorruptIndexIsNamed) {
  const std::string dir = CopyTinyA("badindex");
  std::ofstream(fs::path(dir) / "model.safetensors.index.json") << R"({"weight_map": {"a": "../../etc/passwd"}})";
  auto s = TensorStore::OpenFolder(dir);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("model.safetensors.index.json"), std::string::npos);
}

TEST(InspectCli, PrintsCountsAndChecks) {
  std::string out;
  const std::string cmd = test::CliPath() + " inspect --json --model " + test::TinyModelDir("idefics2-tiny-a");
  ASSERT_EQ(test::RunCommand(cmd, &out), 0) << out;
  EXPECT_NE(out.find("\"tensors\":83"), std::string::npos) << out;
  EXPECT_NE(out.find("\"parameters\":513648"), std::string::npos) << out;
  EXPECT_NE(out.find("\"check\":\"ok\""), std::string::npos) << out;
  EXPECT_NE(test::RunCommand(test::CliPath() + " inspect --model /nonexistent 2>&1", &out), 0);
  EXPECT_NE(out.find("/nonexistent"), std::string::npos) << out;
}

}  // namespace
}  // namespace idefics
