// 200+ malformed or hostile requests: each gets the right 4xx with an OpenAI-shaped error body, and the
// server keeps serving afterwards.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "fake_backend.h"
#include "server_test_util.h"

namespace idefics::server::test {
namespace {

struct Case {
  std::string name;
  std::string body;
  int status;
};

std::string WithContent(const json& content) {
  return json{{"messages", json::array({{{"role", "user"}, {"content", content}}})}}.dump();
}

std::string WithImage(const std::string& url) {
  return WithContent(json::array({{{"type", "image_url"}, {"image_url", {{"url", url}}}},
                                  {{"type", "text"}, {"text", "what?"}}}));
}

std::string WithField(const std::string& key, const json& value) {
  json j = ChatBody("hi");
  j[key] = value;
  return j.dump();
}

std::vector<Case> Cases() {
  const std::string png = ReadFileBytes(GoldenImagePath("rgb_300x200.png"));
  const std::string small = ReadFileBytes(GoldenImagePath("tiny_17x9.png"));
  std::vector<Case> c = {
      {"empty body", "", 400},
      {"broken json", "{\"messages\": [", 400},
      {"array body", "[]", 400},
      {"null body", "null", 400},
      {"number body", "42", 400},
      {"string body", "\"hello\"", 400},
      {"NaN literal", "{\"messages\": NaN}", 400},
      {"invalid utf-8", "{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}]}", 400},
      {"missing messages", "{}", 400},
      {"messages string", R"({"messages": "hi"})", 400},
      {"messages empty", R"({"messages": []})", 400},
      {"message number", R"({"messages": [1]})", 400},
      {"missing role", R"({"messages": [{"content": "hi"}]})", 400},
      {"role number", R"({"messages": [{"role": 5, "content": "hi"}]})", 400},
      {"unknown role", R"({"messages": [{"role": "wizard", "content": "hi"}]})", 400},
      {"tool role", R"({"messages": [{"role": "tool", "content": "hi"}]})", 400},
      {"missing content", R"({"messages": [{"role": "user"}]})", 400},
      {"null content", R"({"messages": [{"role": "user", "content": null}]})", 400},
      {"content number", WithContent(7), 400},
      {"content object", WithContent({{"type", "text"}}), 400},
      {"part number", WithContent(json::array({5})), 400},
      {"part without type", WithContent(json::array({{{"text", "x"}}})), 400},
      {"video part", WithContent(json::array({{{"type", "video"}}})), 400},
      {"text part without text", WithContent(json::array({{{"type", "text"}}})), 400},
      {"text part number", WithContent(json::array({{{"type", "text"}, {"text", 5}}})), 400},
      {"image part without url", WithContent(json::array({{{"type", "image_url"}}})), 400},
      {"image url number", WithContent(json::array({{{"type", "image_url"}, {"image_url", {{"url", 5}}}}})), 400},
      {"bad base64", WithImage("data:image/png;base64,!!!!"), 400},
      {"base64 lone char", WithImage("data:image/png;base64,QUJDR"), 400},
      {"base64 bad padding", WithImage("data:image/png;base64,QQ=Q"), 400},
      {"not an image", WithImage("data:image/png;base64," + EncodeBase64("hello world, no image here")), 400},
      {"text media type", WithImage("data:text/plain;base64,aGVsbG8="), 400},
      {"not base64 data uri", WithImage("data:image/png,rawbytes"), 400},
      {"empty data uri", WithImage("data:image/png;base64,"), 400},
      {"truncated png", WithImage("data:image/png;base64," + EncodeBase64(small.substr(0, small.size() / 2))), 400},
      {"png header only", WithImage("data:image/png;base64," + EncodeBase64(small.substr(0, 8))), 400},
      {"remote url", WithImage("http://example.com/cat.png"), 400},
      {"local file disabled", WithImage("/etc/passwd"), 400},
      {"file traversal", WithImage("file:///../../etc/passwd"), 400},
      {"file url bad escape", WithImage("file:///tmp/%zz"), 400},
      {"image over pixel limit", WithImage("data:image/png;base64," + EncodeBase64(png)), 413},
      {"too many images", WithContent(json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:,"}}}},
                                                   {{"type", "image_url"}, {"image_url", {{"url", "data:,"}}}},
                                                   {{"type", "image_url"}, {"image_url", {{"url", "data:,"}}}}})),
       422},
      {"last message assistant", R"({"messages": [{"role": "assistant", "content": "hi"}]})", 400},
      {"n=2", WithField("n", 2), 400},
      {"n string", WithField("n", "1"), 400},
      {"max_tokens negative", WithField("max_tokens", -5), 400},
      {"max_tokens zero", WithField("max_tokens", 0), 400},
      {"max_tokens huge", WithField("max_tokens", 1000000000000ll), 400},
      {"max_tokens string", WithField("max_tokens", "10"), 400},
      {"max_tokens float", WithField("max_tokens", 1.5), 400},
      {"max_completion_tokens huge", WithField("max_completion_tokens", 1u << 31), 400},
      {"temperature string", WithField("temperature", "hot"), 400},
      {"temperature too high", WithField("temperature", 5), 400},
      {"temperature negative", WithField("temperature", -1), 400},
      {"top_p zero", WithField("top_p", 0), 400},
      {"top_p above one", WithField("top_p", 2), 400},
      {"top_k negative", WithField("top_k", -1), 400},
      {"min_p above one", WithField("min_p", 2), 400},
      {"repeat_penalty zero", WithField("repeat_penalty", 0), 400},
      {"stop number", WithField("stop", 5), 400},
      {"stop numbers", WithField("stop", json::array({1, 2})), 400},
      {"stop empty string", WithField("stop", ""), 400},
      {"stop too many", WithField("stop", json(std::vector<std::string>(100, "x"))), 400},
      {"stream string", WithField("stream", "yes"), 400},
      {"stream_options string", WithField("stream_options", "x"), 400},
      {"seed string", WithField("seed", "abc"), 400},
      {"logprobs", WithField("logprobs", true), 400},
      {"tools", WithField("tools", json::array({{{"type", "function"}}})), 400},
      {"response_format json", WithField("response_format", {{"type", "json_object"}}), 400},
      {"do_image_splitting string", WithField("do_image_splitting", "yes"), 400},
      {"model number", WithField("model", 5), 400},
      {"deep nesting", std::string(20000, '[') + std::string(20000, ']'), 400},
  };
  return c;
}

TEST(ServerHostileTest, MalformedRequestsGetTheRight4xxAndTheServerKeepsServing) {
  ServerOptions o = TestOptions();
  o.max_images = 2;
  o.max_image_pixels = 50000;  // rgb_300x200.png has 60000
  o.max_body_bytes = 1 << 20;
  auto server = StartServer(o, std::make_unique<FakeBackend>());
  const int port = server->port();
  int sent = 0;
  auto check = [&](const std::string& what, const Reply& r, int expected) {
    ++sent;
    EXPECT_EQ(r.status, expected) << what << ": " << r.body;
    json j = r.Json();
    ASSERT_FALSE(j.is_discarded()) << what << ": " << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string()) << what;
    EXPECT_TRUE(j["error"]["type"].is_string()) << what;
    EXPECT_TRUE(j["error"].contains("param") && j["error"].contains("code")) << what;
  };
  for (const Case& c : Cases()) {
    check(c.name, Post(port, "/v1/chat/completions", c.body), c.status);
    // The same with stream=true (errors come before any event), with unknown extra fields, with an unrelated
    // bearer token (no key configured) and as text/plain.
    json j = json::parse(c.body, nullptr, false);
    if (j.is_object() && !j.contains("stream")) {
      j["stream"] = true;
      check(c.name + " (stream)", Post(port, "/v1/chat/completions", j.dump()), c.status);
      j.erase("stream");
      j["user"] = "mallory";
      check(c.name + " (extra field)", Post(port, "/v1/chat/completions", j.dump()), c.status);
    } else {
      check(c.name + " (again)", Post(port, "/v1/chat/completions", c.body), c.status);
      check(c.name + " (again 2)", Post(port, "/v1/chat/completions", c.body), c.status);
    }
    check(c.name + " (token)", Post(port, "/v1/chat/completions", c.body, "whatever"), c.status);
    check(c.name + " (text/plain)", Post(port, "/v1/chat/completions", c.body, "", "text/plain"), c.status);
  }
  // Over --max-body-mb: 413 before the body is read.
  check("huge body", Post(port, "/v1/chat/completions", WithImage("data:image/png;base64," + std::string(2 << 20, 'A'))),
        413);
  check("unknown path", Post(port, "/v1/completions", ChatBody("hi").dump()), 404);
  check("wrong method", Get(port, "/v1/chat/completions"), 405);
  EXPECT_GE(sent, 200);

  // Raw bytes that are not HTTP at all.
  for (const std::string& raw : {std::string("GARBAGE\r\n\r\n"), std::string("POST /v1/chat/completions HTTP/1.1\r\n") +
                                    "Content-Length: -5\r\n\r\n", std::string(70000, 'A') + "\r\n\r\n"}) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ssize_t ignored = send(fd, raw.data(), raw.size(), MSG_NOSIGNAL);
    (void)ignored;
    shutdown(fd, SHUT_WR);
    char buf[4096];
    std::string reply;
    for (int i = 0; i < 100; ++i) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    if (!reply.empty()) {
      EXPECT_EQ(reply.rfind("HTTP/1.1 4", 0), 0u) << reply.substr(0, 80);
    }
  }

  // Still serving.
  EXPECT_EQ(Get(port, "/health").status, 200);
  Reply ok = Post(port, "/v1/chat/completions", ChatBody("still there?", {ImageDataUri("tiny_17x9.png")}).dump());
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(PostStream(port, ChatBody("and streaming?")).status, 200);
}

}  // namespace
}  // namespace idefics::server::test
