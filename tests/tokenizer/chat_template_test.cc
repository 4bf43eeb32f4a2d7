// Chat template rendering against transformers' apply_chat_template goldens, template loading from model
// folders, and the rendered prompt's ids.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"

namespace idefics::tokenizer {
namespace {

using nlohmann::json;

json Cases(const std::string& path) {
  auto text = ReadTextFile(path);
  if (!text.ok()) return json();
  return json::parse(*text, nullptr, false);
}

void CheckChatCases(const std::string& model_dir, const std::string& cases_path) {
  auto tmpl = ChatTemplate::FromModelDir(model_dir);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
  auto tok = Tokenizer::Load(model_dir);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const json cases = Cases(cases_path);
  ASSERT_TRUE(cases.contains("chat_template"));
  for (const auto& c : cases["chat_template"]) {
    auto rendered =
        tmpl->Render(c["messages"], c["add_generation_prompt"].get<bool>(), SpecialTokenVariables(**tok));
    ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
    EXPECT_EQ(*rendered, c["rendered"].get<std::string>());
    std::vector<int32_t> expected = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ((*tok)->Encode(*rendered, true), expected) << *rendered;
  }
}

TEST(ChatTemplate, TinyModelGolden) {
  for (const char* model : {"idefics2-tiny-a", "idefics2-tiny-b"}) {
    CheckChatCases(test::TinyModelDir(model), test::GoldenDir() + "/tokenizer_cases.json");
  }
}

TEST(ChatTemplate, MistralGolden) {
  const std::string dir = test::MistralTokenizerDir();
  if (dir.empty())
    GTEST_SKIP() << "../shared/golden/mistral-tokenizer not found (set IDEFICS_MISTRAL_TOKENIZER_DIR)";
  CheckChatCases(dir, dir + "/tokenizer_cases.json");
}

TEST(ChatTemplate, SpecExamples) {
  auto tmpl = ChatTemplate::FromModelDir(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
  const json one = json::parse(R"([{"role": "user", "content": [{"type": "image"},
      {"type": "text", "text": "What do we see in this image?"}]}])");
  auto r = tmpl->Render(one, true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "User:<image>What do we see in this image?<end_of_utterance>\nAssistant:");
  // Items that are not text/image are skipped; a system role is capitalized.
  const json sys = json::parse(R"([{"role": "system", "content": [{"type": "text", "text": "Be brief."},
      {"type": "video"}]}])");
  r = tmpl->Render(sys, false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "System: Be brief.<end_of_utterance>\n");
}

TEST(ChatTemplate, SpecialTokenVariables) {
  auto tok = Tokenizer::Load(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const json vars = SpecialTokenVariables(**tok);
  auto r = RenderChatTemplate(
      "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}|{{ additional_special_tokens | join(',') }}",
      json::parse(R"([{"role": "user", "content": "hi"}])"), false, vars);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "<s>hi</s>|<fake_token_around_image>,<image>,<end_of_utterance>");
}

TEST(ChatTemplate, LoadErrors) {
  const std::string dir = test::MakeTempDir("chat_template_missing");
  auto src = LoadChatTemplateSource(dir);
  ASSERT_FALSE(src.ok());
  EXPECT_EQ(src.status().code(), StatusCode::kNotFound);
  EXPECT_NE(src.status().message().find("chat_template.json"), std::string::npos);

  auto bad = RenderChatTemplate("{{ messages[0]['content'] }}", json::object(), false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("array"), std::string::npos);
}

}  // namespace
}  // namespace idefics::tokenizer
