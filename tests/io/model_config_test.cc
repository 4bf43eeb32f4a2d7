// Config parsing: golden folders, transformers defaults, clear errors.
#include "io/model_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "support/golden.h"
#include "support/real_config.h"

namespace idefics {
namespace {

TEST(ModelConfig, LoadsTinyA) {
  auto m = ModelFolder::Load(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->config.text.vocab_size, 4003);
  EXPECT_EQ(m->config.text.hidden_size, 32);
  EXPECT_EQ(m->config.text.head_dim, 8);
  EXPECT_EQ(m->config.vision.num_patches_per_side(), 70);
  EXPECT_EQ(m->config.perceiver.resampler_n_latents, 8);
  EXPECT_EQ(m->config.perceiver.hidden_size, 32);
  EXPECT_DOUBLE_EQ(m->config.perceiver.rms_norm_eps, 1e-5);
  EXPECT_EQ(m->config.image_token_id, 4001);
  EXPECT_EQ(m->processor.image_seq_len, 8);
  EXPECT_FALSE(m->processor.chat_template.empty());
  EXPECT_EQ(m->preprocessor.longest_edge, 980);
}

TEST(ModelConfig, LoadsTinyBWithSlidingWindow) {
  auto m = ModelFolder::Load(test::TinyModelDir("idefics2-tiny-b"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->config.text.sliding_window.has_value());
  EXPECT_EQ(*m->config.text.sliding_window, 24);
  EXPECT_DOUBLE_EQ(m->config.text.rope_theta, 5e5);
}

TEST(ModelConfig, RealIdefics2ConfigDefaults) {
  // The idefics2-8b config.json (spec §1.2): perceiver_config holds only model_type.
  auto c = Idefics2Config::Parse(test::kIdefics2_8bConfigJson, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->text.hidden_size, 4096);
  EXPECT_EQ(c->text.num_key_value_heads, 8);
  EXPECT_EQ(c->text.head_dim, 128);
  EXPECT_EQ(c->text.intermediate_size, 14336);
  EXPECT_EQ(c->perceiver.resampler_n_latents, 64);
  EXPECT_EQ(c->perceiver.resampler_depth, 3);
  EXPECT_EQ(c->perceiver.num_key_value_heads, 4);
  EXPECT_DOUBLE_EQ(c->perceiver.rms_norm_eps, 1e-6);
  EXPECT_EQ(c->vision.head_dim(), 72);
}

TEST(ModelConfig, ErrorsNameTheField) {
  auto c = Idefics2Config::Parse(R"({"vision_config":{"hidden_size":"big"}})", "cfg.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("hidden_size"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("cfg.json"), std::string::npos);
  auto d = Idefics2Config::Parse("{", "cfg.json");
  ASSERT_FALSE(d.ok());
  auto m = ModelFolder::Load("/nonexistent/folder");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
}

TEST(ModelConfig, NormEpsilonsAndRopeThetaMustBeUsable) {
  // Each would make every activation NaN; the error names the field instead.
  const std::string base = test::kIdefics2_8bConfigJson;
  for (const auto& [field, bad] : std::vector<std::pair<std::string, std::string>>{
           {"rope_theta", "0"}, {"rope_theta", "-5"}, {"rms_norm_eps", "-1"}}) {
    nlohmann::json j = nlohmann::json::parse(base);
    j["text_config"][field] = nlohmann::json::parse(bad);
    auto c = Idefics2Config::Parse(j.dump(), "cfg.json");
    ASSERT_FALSE(c.ok()) << field << "=" << bad;
    EXPECT_NE(c.status().message().find("text_config." + field), std::string::npos) << c.status().message();
  }
  nlohmann::json j = nlohmann::json::parse(base);
  j["vision_config"]["layer_norm_eps"] = -1e-6;
  EXPECT_FALSE(Idefics2Config::Parse(j.dump(), "cfg.json").ok());
}

}  // namespace
}  // namespace idefics
