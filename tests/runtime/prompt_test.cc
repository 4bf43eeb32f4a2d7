// Prompt building against the goldens: chat template + <image> expansion + BOS give the processor's input_ids
// for every single-sample model case of both tiny models; raw mode; placeholder/image count errors.
#include "runtime/prompt.h"

#include <gtest/gtest.h>

#include "io/model_config.h"
#include "runtime/runtime_test_util.h"
#include "support/golden.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace idefics {
namespace {

using test::ToI64;

class PromptGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PromptGoldenTest, ChatTemplateExpansionAndIdsMatchProcessor) {
  const std::string model = GetParam();
  auto folder = ModelFolder::Load(test::TinyModelDir(model));
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  auto tok = tokenizer::Tokenizer::Load(test::TinyModelDir(model));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  auto tmpl = tokenizer::ChatTemplate::FromModelDir(test::TinyModelDir(model));
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
  const auto cases = test::LoadModelCases(model);
  ASSERT_GE(cases.size(), 4u);
  for (const test::ModelCase& c : cases) {
    SCOPED_TRACE(model + "/" + c.name);
    auto text = RenderPrompt(c.request, &*tmpl);
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    const bool split = *c.request.split;
    auto ids_or = TokenizePrompt(**tok, text->text, folder->processor.image_seq_len, split);
    ASSERT_TRUE(ids_or.ok()) << ids_or.status().ToString();
    const std::vector<int32_t>& ids = *ids_or;
    EXPECT_EQ(ToI64(ids), c.input_ids);
    auto images = LoadImages(text->images, folder->preprocessor, split);
    ASSERT_TRUE(images.ok()) << images.status().ToString();
    const int64_t image_tokens =
        std::count(ids.begin(), ids.end(), static_cast<int32_t>(folder->config.image_token_id));
    EXPECT_EQ(static_cast<int64_t>(images->size()) * folder->processor.image_seq_len, image_tokens);
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, PromptGoldenTest,
                         ::testing::Values("idefics2-tiny-a", "idefics2-tiny-b"));

TEST(PromptTest, RawPromptUsedAsGiven) {
  auto folder = ModelFolder::Load(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(folder.ok());
  auto tok = tokenizer::Tokenizer::Load(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(tok.ok());
  // The golden case's rendered prompt, given raw, gives the same ids as the chat request.
  const test::ModelCase c = test::FindCase("idefics2-tiny-a", "one_image");
  GenerationRequest raw;
  raw.raw_prompt = "User:<image>What is shown in this image?<end_of_utterance>\nAssistant:";
  raw.raw_images.push_back(ContentPart::ImagePath(test::GoldenDir() + "/images/photo_320x240.jpg"));
  auto text = RenderPrompt(raw, nullptr);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(text->text, *raw.raw_prompt);
  auto ids = TokenizePrompt(**tok, text->text, folder->processor.image_seq_len, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ToI64(*ids), c.input_ids);
}

TEST(PromptTest, PlaceholderCountMustEqualImages) {
  GenerationRequest raw;
  raw.raw_prompt = "<image><image>two?";
  raw.raw_images.push_back(ContentPart::ImagePath("a.png"));
  auto text = RenderPrompt(raw, nullptr);
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("2 <image> placeholder(s) but 1 image(s)"), std::string::npos)
      << text.status().message();
  // A text message that itself contains "<image>" is an extra placeholder too.
  auto tmpl = tokenizer::ChatTemplate::FromModelDir(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(tmpl.ok());
  GenerationRequest chat;
  chat.messages.push_back({"user", {ContentPart::Text("look: <image>")}});
  EXPECT_FALSE(RenderPrompt(chat, &*tmpl).ok());
  GenerationRequest empty;
  EXPECT_FALSE(RenderPrompt(empty, &*tmpl).ok());
  // Chat mode without a template in the folder.
  EXPECT_FALSE(RenderPrompt(chat, nullptr).ok());
}

TEST(PromptTest, SystemMessageAndGenerationPrompt) {
  auto tmpl = tokenizer::ChatTemplate::FromModelDir(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(tmpl.ok());
  GenerationRequest chat;
  chat.messages.push_back({"system", {ContentPart::Text("Be brief.")}});
  chat.messages.push_back({"user", {ContentPart::ImagePath("x.png"), ContentPart::Text("Hi")}});
  auto text = RenderPrompt(chat, &*tmpl);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(text->text, "System: Be brief.<end_of_utterance>\nUser:<image>Hi<end_of_utterance>\nAssistant:");
  chat.add_generation_prompt = false;
  text = RenderPrompt(chat, &*tmpl);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->text, "System: Be brief.<end_of_utterance>\nUser:<image>Hi<end_of_utterance>\n");
}

TEST(PromptTest, UnreadableImageIsNamed) {
  auto folder = ModelFolder::Load(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(folder.ok());
  ContentPart missing = ContentPart::ImagePath("/nonexistent/cat.png");
  ContentPart garbage = ContentPart::ImageBytes("this is not an image");
  auto a = LoadImages({&missing}, folder->preprocessor, false);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("/nonexistent/cat.png"), std::string::npos) << a.status().message();
  auto b = LoadImages({&missing, &garbage}, folder->preprocessor, false);
  ASSERT_FALSE(b.ok());
  auto c = LoadImages({&garbage}, folder->preprocessor, false);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("image #1"), std::string::npos) << c.status().message();
}

}  // namespace
}  // namespace idefics
