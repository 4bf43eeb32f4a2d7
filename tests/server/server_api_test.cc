// The HTTP API against the fake backend: endpoints, OpenAI response shapes, streaming = non-streaming,
// the image-feature cache, API key, CORS, stop strings, local-file confinement.
#include <gtest/gtest.h>

#include <filesystem>

#include "fake_backend.h"
#include "server_test_util.h"

namespace idefics::server::test {
namespace {

TEST(ServerApiTest, HealthIsLoadingUntilTheModelIsLoaded) {
  auto server = StartServer(TestOptions(), nullptr);
  const int port = server->port();
  Reply h = Get(port, "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.Json()["status"], "loading");
  // Requests during loading get 503 too.
  EXPECT_EQ(Post(port, "/v1/chat/completions", ChatBody("hi").dump()).status, 503);
  server->LoadInBackground([]() -> StatusOr<std::unique_ptr<Backend>> {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return std::unique_ptr<Backend>(std::make_unique<FakeBackend>());
  });
  for (int i = 0; i < 200 && Get(port, "/health").status != 200; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(Get(port, "/health").status, 200);
  EXPECT_EQ(Post(port, "/v1/chat/completions", ChatBody("hi").dump()).status, 200);
}

TEST(ServerApiTest, HealthReportsALoadFailure) {
  auto server = StartServer(TestOptions(), nullptr);
  server->LoadInBackground([]() -> StatusOr<std::unique_ptr<Backend>> { return NotFound("no such model"); });
  Reply h;
  for (int i = 0; i < 200 && (h = Get(server->port(), "/health")).status == 503; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(h.status, 500);
  EXPECT_EQ(h.Json()["status"], "error");
}

TEST(ServerApiTest, ModelsAndPage) {
  auto server = StartServer(TestOptions(), std::make_unique<FakeBackend>());
  json models = Get(server->port(), "/v1/models").Json();
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "fake-idefics2");
  Reply page = Get(server->port(), "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<html"), std::string::npos);
  Reply missing = Get(server->port(), "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Json()["error"]["code"], "not_found");
}

TEST(ServerApiTest, NonStreamingResponseShape) {
  auto server = StartServer(TestOptions(), std::make_unique<FakeBackend>());
  Reply r = Post(server->port(), "/v1/chat/completions", ChatBody("Describe", {ImageDataUri("rgb_300x200.png")}).dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.Json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_TRUE(j["created"].is_number_integer());
  EXPECT_EQ(j["model"], "fake-idefics2");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  const std::string finish = j["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "stop" || finish == "length") << finish;
  const json& u = j["usage"];
  EXPECT_GT(u["prompt_tokens"].get<int>(), 4);
  EXPECT_GT(u["completion_tokens"].get<int>(), 0);
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
}

TEST(ServerApiTest, StreamingEqualsNonStreaming) {
  auto server = StartServer(TestOptions(), std::make_unique<FakeBackend>());
  const int port = server->port();
  for (const char* prompt : {"What is this?", "Count to ten", "x"}) {
    json body = ChatBody(prompt, {ImageDataUri("photo_320x240.jpg")}, 40);
    Reply plain = Post(port, "/v1/chat/completions", body.dump());
    ASSERT_EQ(plain.status, 200);
    body["stream_options"] = {{"include_usage", true}};
    StreamReply s = PostStream(port, body);
    ASSERT_EQ(s.status, 200) << s.raw;
    EXPECT_EQ(s.role, "assistant");
    EXPECT_TRUE(s.saw_done);
    EXPECT_EQ(s.content, plain.Json()["choices"][0]["message"]["content"]);
    EXPECT_EQ(s.finish, plain.Json()["choices"][0]["finish_reason"]);
    EXPECT_EQ(s.usage, plain.Json()["usage"]);
  }
}

TEST(ServerApiTest, MaxTokensEndsWithLength) {
  auto server = StartServer(TestOptions(), std::make_unique<FakeBackend>());
  json body = ChatBody("go", {}, 7);
  body["ignore_eos"] = true;
  json j = Post(server->port(), "/v1/chat/completions", body.dump()).Json();
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 7);
}

TEST(ServerApiTest, StopStringCutsTheAnswer) {
  auto server = StartServer(TestOptions(), std::make_unique<FakeBackend>());
  json body = ChatBody("stop test", {}, 60);
  body["ignore_eos"] = true;
  const std::string full = Post(server->port(), "/v1/chat/completions", body.dump()).Json()["choices"][0]["message"]["content"];
  ASSERT_GE(full.size(), 12u);
  const std::string stop = full.substr(8, 3);
  body["stop"] = json::array({stop, "never-there"});
  json j = Post(server->port(), "/v1/chat/completions", body.dump()).Json();
  EXPECT_EQ(j["choices"][0]["message"]["content"], full.substr(0, full.find(stop)));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  StreamReply s = PostStream(server->port(), body);
  EXPECT_EQ(s.content, full.substr(0, full.find(stop)));
}

TEST(ServerApiTest, SeededSamplingIsReproducible) {
  auto server = StartServer(TestOptions(), std::make_unique<FakeBackend>());
  json body = ChatBody("sample", {}, 30);
  body["temperature"] = 1.5;
  body["seed"] = 1234;
  body["ignore_eos"] = true;
  const json a = Post(server->port(), "/v1/chat/completions", body.dump()).Json();
  const json b = Post(server->port(), "/v1/chat/completions", body.dump()).Json();
  EXPECT_EQ(a["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"]);
}

TEST(ServerApiTest, ImageFeatureCacheHitsOnARepeatedImage) {
  auto backend = std::make_unique<FakeBackend>();
  FakeBackend* fake = backend.get();
  auto server = StartServer(TestOptions(), std::move(backend));
  const int port = server->port();
  const std::string img = ImageDataUri("rgb_420x300.png");
  json first = Post(port, "/v1/chat/completions", ChatBody("What is it?", {img}).dump()).Json();
  EXPECT_EQ(fake->encode_calls.load(), 1);
  // A follow-up question about the same image skips the vision encoder.
  json follow = {{"messages", json::array({UserMessage("What is it?", {img}),
                                            {{"role", "assistant"}, {"content", first["choices"][0]["message"]["content"]}},
                                            UserMessage("And the colours?")})},
                 {"temperature", 0}, {"max_tokens", 10}};
  EXPECT_EQ(Post(port, "/v1/chat/completions", follow.dump()).status, 200);
  EXPECT_EQ(fake->encode_calls.load(), 1);
  EXPECT_EQ(MetricValue(port, "idefics_image_cache_hits_total"), 1);
  EXPECT_EQ(MetricValue(port, "idefics_image_cache_misses_total"), 1);
  // Same answer from cached features as from fresh ones.
  json again = Post(port, "/v1/chat/completions", ChatBody("What is it?", {img}).dump()).Json();
  EXPECT_EQ(again["choices"][0]["message"]["content"], first["choices"][0]["message"]["content"]);
  // The splitting flag is part of the key.
  json split = ChatBody("What is it?", {img});
  split["do_image_splitting"] = true;
  EXPECT_EQ(Post(port, "/v1/chat/completions", split.dump()).status, 200);
  EXPECT_EQ(fake->encode_calls.load(), 2);
}

TEST(ServerApiTest, MetricsExposeCounters) {
  auto server = StartServer(TestOptions(), std::make_unique<FakeBackend>());
  Post(server->port(), "/v1/chat/completions", ChatBody("hello").dump());
  Post(server->port(), "/v1/chat/completions", "{bad json");
  const std::string m = Get(server->port(), "/metrics").body;
  for (const char* name : {"idefics_requests_total{path=\"/v1/chat/completions\",status=\"200\"} 1",
                           "idefics_requests_total{path=\"/v1/chat/completions\",status=\"400\"} 1",
                           "idefics_generated_tokens_total", "idefics_prompt_tokens_total", "idefics_queue_depth",
                           "idefics_active_sequences", "idefics_time_to_first_token_seconds_count 1",
                           "idefics_decode_tokens_per_second", "idefics_image_cache_hits_total"})
    EXPECT_NE(m.find(name), std::string::npos) << name << "\n" << m;
}

TEST(ServerApiTest, ApiKeyIsRequiredOnV1) {
  ServerOptions o = TestOptions();
  o.api_key = "sekret";
  auto server = StartServer(o, std::make_unique<FakeBackend>());
  Reply no = Post(server->port(), "/v1/chat/completions", ChatBody("hi").dump());
  EXPECT_EQ(no.status, 401);
  EXPECT_EQ(no.Json()["error"]["type"], "authentication_error");
  EXPECT_EQ(Post(server->port(), "/v1/chat/completions", ChatBody("hi").dump(), "wrong").status, 401);
  EXPECT_EQ(Get(server->port(), "/v1/models").status, 401);
  EXPECT_EQ(Post(server->port(), "/v1/chat/completions", ChatBody("hi").dump(), "sekret").status, 200);
  EXPECT_EQ(PostStream(server->port(), ChatBody("hi"), "sekret").status, 200);
  EXPECT_EQ(Get(server->port(), "/health").status, 200);  // probes need no key
}

TEST(ServerApiTest, CorsHeaders) {
  ServerOptions o = TestOptions();
  o.cors_origin = "https://example.test";
  auto server = StartServer(o, std::make_unique<FakeBackend>());
  httplib::Client cli("127.0.0.1", server->port());
  auto pre = cli.Options("/v1/chat/completions");
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), "https://example.test");
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Headers").find("Authorization"), std::string::npos);
  auto get = cli.Get("/v1/models");
  EXPECT_EQ(get->get_header_value("Access-Control-Allow-Origin"), "https://example.test");
}

TEST(ServerApiTest, LocalFilesAreConfinedToTheAllowedFolder) {
  namespace fs = std::filesystem;
  const std::string root = idefics::test::MakeTempDir("server_local_files");
  const std::string allowed = root + "/allowed";
  fs::create_directories(allowed + "/sub");
  fs::copy_file(GoldenImagePath("rgb_300x200.png"), allowed + "/sub/a.png");
  fs::copy_file(GoldenImagePath("rgb_300x200.png"), root + "/outside.png");
  fs::create_symlink(root + "/outside.png", allowed + "/link.png");
  ServerOptions o = TestOptions();
  o.allow_local_dir = allowed;
  auto server = StartServer(o, std::make_unique<FakeBackend>());
  auto status_for = [&](const std::string& url) {
    return Post(server->port(), "/v1/chat/completions", ChatBody("hi", {url}).dump()).status;
  };
  EXPECT_EQ(status_for("file://" + allowed + "/sub/a.png"), 200);
  EXPECT_EQ(status_for(allowed + "/sub/a.png"), 200);
  EXPECT_EQ(status_for("sub/a.png"), 200);                           // relative to the folder
  EXPECT_EQ(status_for("file://" + allowed + "/sub/../../outside.png"), 400);
  EXPECT_EQ(status_for("../outside.png"), 400);
  EXPECT_EQ(status_for(allowed + "/link.png"), 400);                 // symlink escape
  EXPECT_EQ(status_for("file://" + allowed + "/sub/%2e%2e/%2e%2e/outside.png"), 400);
  EXPECT_EQ(status_for("/etc/passwd"), 400);
  EXPECT_EQ(status_for(allowed + "/sub"), 400);                      // a folder
  EXPECT_EQ(status_for(allowed + "/missing.png"), 400);
  // Without --allow-local-files every path is refused.
  auto closed = StartServer(TestOptions(), std::make_unique<FakeBackend>());
  EXPECT_EQ(Post(closed->port(), "/v1/chat/completions", ChatBody("hi", {allowed + "/sub/a.png"}).dump()).status, 400);
}

TEST(ServerApiTest, PromptOverTheContextIs422) {
  FakeOptions fo;
  fo.context = 64;
  auto server = StartServer(TestOptions(), std::make_unique<FakeBackend>(fo));
  Reply r = Post(server->port(), "/v1/chat/completions", ChatBody(std::string(100, 'a')).dump());
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.Json()["error"]["code"], "context_length_exceeded");
  // A prompt that fits gets its completion clamped to the context left.
  json body = ChatBody("short", {}, 200);
  body["ignore_eos"] = true;
  json j = Post(server->port(), "/v1/chat/completions", body.dump()).Json();
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["total_tokens"], 64);
}

}  // namespace
}  // namespace idefics::server::test
