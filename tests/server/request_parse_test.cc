// ParseChatRequest: OpenAI chat request bodies → ChatRequest, and the field named by each error.
#include "server/request_parse.h"

#include <gtest/gtest.h>

namespace idefics::server {
namespace {

ChatRequest Ok(const std::string& body) {
  auto r = ParseChatRequest(body, ParseLimits{});
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << e->ToJson();
    return {};
  }
  return std::get<ChatRequest>(r);
}

ApiError Err(const std::string& body, ParseLimits limits = {}) {
  auto r = ParseChatRequest(body, limits);
  if (!std::holds_alternative<ApiError>(r)) {
    ADD_FAILURE() << "accepted: " << body;
    return {};
  }
  return std::get<ApiError>(r);
}

TEST(RequestParseTest, StringAndPartsContent) {
  ChatRequest r = Ok(R"({"model": "m", "messages": [
      {"role": "system", "content": "be brief"},
      {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                   {"type": "text", "text": "what?"}]}]})");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].parts[0].text, "be brief");
  ASSERT_EQ(r.messages[1].parts.size(), 2u);
  EXPECT_TRUE(r.messages[1].parts[0].is_image);
  EXPECT_EQ(r.messages[1].parts[1].text, "what?");
  ASSERT_EQ(r.image_urls.size(), 1u);
  EXPECT_EQ(r.image_urls[0], "data:image/png;base64,AAAA");
  EXPECT_EQ(r.image_params[0], "messages[1].content[0].image_url.url");
  EXPECT_EQ(r.model, "m");
}

TEST(RequestParseTest, DefaultsFollowOpenAI) {
  ChatRequest r = Ok(R"({"messages": [{"role": "user", "content": "hi"}]})");
  EXPECT_FALSE(r.sampling.greedy);  // temperature 1 by default
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.seed_given);
}

TEST(RequestParseTest, SamplingFields) {
  ChatRequest r = Ok(R"({"messages": [{"role": "user", "content": "hi"}], "temperature": 0, "top_p": 0.5,
      "top_k": 40, "min_p": 0.1, "repeat_penalty": 1.2, "seed": 7, "max_tokens": 9, "stop": "END",
      "stream": true, "stream_options": {"include_usage": true}, "do_image_splitting": true, "n": 1,
      "presence_penalty": 0.5, "frequency_penalty": -1, "user": "u", "temperature_unknown_extra": 3})");
  EXPECT_TRUE(r.sampling.greedy);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, -1.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(r.sampling.repetition_penalty, 1.2f);
  EXPECT_EQ(r.sampling.seed, 7u);
  EXPECT_TRUE(r.seed_given);
  EXPECT_EQ(*r.max_tokens, 9);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(*r.do_image_splitting);
}

TEST(RequestParseTest, MaxCompletionTokensWins) {
  ChatRequest r = Ok(R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5,
      "max_completion_tokens": 6, "temperature": null, "stop": ["a", "b"]})");
  EXPECT_EQ(*r.max_tokens, 6);
  EXPECT_FALSE(r.sampling.greedy);
  EXPECT_EQ(r.stop.size(), 2u);
}

TEST(RequestParseTest, DeveloperRoleIsSystem) {
  EXPECT_EQ(Ok(R"({"messages": [{"role": "developer", "content": "x"}, {"role": "user", "content": "y"}]})")
                .messages[0].role,
            "system");
}

TEST(RequestParseTest, ErrorsNameTheField) {
  EXPECT_EQ(Err(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]})").param,
            "messages[0].content[0].text");
  EXPECT_EQ(Err(R"({"messages": [{"role": "bot", "content": "x"}]})").param, "messages[0].role");
  EXPECT_EQ(Err(R"({"messages": [{"role": "user", "content": "x"}], "n": 3})").param, "n");
  EXPECT_EQ(Err(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})").param, "max_tokens");
  EXPECT_EQ(Err(R"({"messages": [{"role": "user", "content": "x"}], "temperature": "1"})").param, "temperature");
  EXPECT_EQ(Err("nope").code, "invalid_json");
  EXPECT_EQ(Err("{}").param, "messages");
}

TEST(RequestParseTest, LimitsApply) {
  ParseLimits limits;
  limits.max_images = 1;
  limits.max_tokens_cap = 100;
  const std::string two = R"({"messages": [{"role": "user", "content": [
      {"type": "image_url", "image_url": {"url": "a"}}, {"type": "image_url", "image_url": {"url": "b"}}]}]})";
  ApiError e = Err(two, limits);
  EXPECT_EQ(e.http_status, 422);
  EXPECT_EQ(e.code, "too_many_images");
  EXPECT_EQ(Err(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 101})", limits).http_status, 400);
}

TEST(RequestParseTest, ErrorJsonShape) {
  ApiError e = BadRequest("bad \xff thing", "field");
  const std::string j = e.ToJson();
  EXPECT_NE(j.find("\"error\""), std::string::npos);
  EXPECT_NE(j.find("\"param\":\"field\""), std::string::npos);
  EXPECT_NE(j.find("\"code\":null"), std::string::npos);
}

}  // namespace
}  // namespace idefics::server
