// The Idefics2 processor's text expansion (<image> -> fake/image token runs) against transformers'
// Idefics2Processor input_ids, and its error on a placeholder / image count mismatch.
#include "tokenizer/processor_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"

namespace idefics::tokenizer {
namespace {

using nlohmann::json;

void CheckProcessorCases(const std::string& cases_path, const std::string& fixed_model_dir) {
  auto text = ReadTextFile(cases_path);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const json cases = json::parse(*text, nullptr, false);
  ASSERT_TRUE(cases.contains("processor_text"));
  int checked = 0;
  for (const auto& c : cases["processor_text"]) {
    const std::string dir =
        fixed_model_dir.empty() ? test::TinyModelDir(c["model"].get<std::string>()) : fixed_model_dir;
    auto tok = Tokenizer::Load(dir);
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    auto config = LoadProcessorTextConfig(dir);
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    EXPECT_EQ(config->image_seq_len, c["image_seq_len"].get<int>());
    config->do_image_splitting = c["do_image_splitting"].get<bool>();
    const std::string prompt = c["text"].get<std::string>();
    auto ids = ProcessText(**tok, prompt, CountImageTokens(prompt), *config);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    EXPECT_EQ(*ids, c["input_ids"][0].get<std::vector<int32_t>>()) << prompt;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(ProcessorText, TinyModelGolden) {
  CheckProcessorCases(test::GoldenDir() + "/tokenizer_cases.json", "");
}

TEST(ProcessorText, MistralGolden) {
  const std::string dir = test::MistralTokenizerDir();
  if (dir.empty())
    GTEST_SKIP() << "../shared/golden/mistral-tokenizer not found (set IDEFICS_MISTRAL_TOKENIZER_DIR)";
  CheckProcessorCases(dir + "/tokenizer_cases.json", dir);
}

TEST(ProcessorText, ExpansionShapes) {
  const std::string F = "<fake_token_around_image>", I = "<image>";
  auto one = ExpandImageTokens("x<image>y", 1, 2, false);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, "x" + F + I + I + F + "y");
  // Adjacent images share the middle fake token; splitting gives F (I I F) x 5.
  auto two = ExpandImageTokens("<image><image>", 2, 1, false);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, F + I + F + I + F);
  auto split = ExpandImageTokens("<image>", 1, 2, true);
  ASSERT_TRUE(split.ok());
  std::string expected = F;
  for (int i = 0; i < 5; ++i) expected += I + I + F;
  EXPECT_EQ(*split, expected);
  auto none = ExpandImageTokens("no images", 0, 64, true);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, "no images");
}

TEST(ProcessorText, CountMismatchIsAnError) {
  auto more = ExpandImageTokens("<image> and <image>", 1, 8, false);
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(more.status().message().find("2"), std::string::npos) << more.status().message();
  EXPECT_NE(more.status().message().find("1 image"), std::string::npos) << more.status().message();
  auto fewer = ExpandImageTokens("only text", 2, 8, false);
  ASSERT_FALSE(fewer.ok());
  EXPECT_NE(fewer.status().message().find("0 <image>"), std::string::npos) << fewer.status().message();
  EXPECT_FALSE(ExpandImageTokens("<image>", 1, 0, false).ok());
}

TEST(ProcessorText, ConfigErrorsNameTheFile) {
  auto c = LoadProcessorTextConfig(test::MakeTempDir("processor_missing"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("processor_config.json"), std::string::npos);
}

}  // namespace
}  // namespace idefics::tokenizer
