// The server with the real engine on the tiny golden model (tests/data/golden/models/idefics2-tiny-a): greedy
// answers through the API, streamed or not, alone or 16 at once, equal Engine::Generate's for the same inputs.
#include <gtest/gtest.h>

#include <thread>

#include "idefics/engine.h"
#include "server/engine_backend.h"
#include "server_test_util.h"

namespace idefics::server::test {
namespace {

struct ModelCase {
  std::string question;
  std::vector<std::string> images;  // golden image names
  int max_tokens;
  bool split = false;
};

std::vector<ModelCase> Cases() {
  return {{"What do we see in this image?", {"rgb_300x200.png"}, 20},
          {"Describe both.", {"photo_320x240.jpg", "gray_200x150.png"}, 16},
          {"Hello there, no image.", {}, 24},
          {"Tall one?", {"tall_400x1003.png"}, 12},
          {"Split it.", {"rgba_300x200.png"}, 10, true}};
}

EngineOptions TinyOptions() {
  EngineOptions o;
  o.model_dir = idefics::test::TinyModelDir("idefics2-tiny-a");
  o.threads = 1;
  return o;
}

struct Expected {
  std::string text;
  std::string finish;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

Expected RunEngine(Engine& engine, const ModelCase& c) {
  GenerationRequest req;
  Message m{"user", {}};
  for (const auto& name : c.images) m.content.push_back(ContentPart::ImageBytes(ReadFileBytes(GoldenImagePath(name))));
  m.content.push_back(ContentPart::Text(c.question));
  req.messages.push_back(m);
  req.max_tokens = c.max_tokens;
  req.split = c.split;
  auto result = engine.Generate(req);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (!result.ok()) return {};
  return {result->text, FinishReasonName(result->finish_reason), static_cast<int64_t>(result->prompt_ids.size()),
          static_cast<int64_t>(result->generated_ids.size())};
}

json Body(const ModelCase& c) {
  std::vector<std::string> uris;
  for (const auto& name : c.images) uris.push_back(ImageDataUri(name));
  json body = ChatBody(c.question, uris, c.max_tokens);
  body["do_image_splitting"] = c.split;
  return body;
}

class ServerModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto engine = Engine::Load(TinyOptions());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    for (const ModelCase& c : Cases()) expected_.push_back(RunEngine(**engine, c));
  }
  static std::vector<Expected> expected_;
};
std::vector<Expected> ServerModelTest::expected_;

std::unique_ptr<InferenceServer> StartTinyServer(int parallel) {
  ServerOptions o = TestOptions();
  o.parallel = parallel;
  auto server = StartServer(o, nullptr);
  auto backend = LoadEngineBackend(TinyOptions());
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  if (backend.ok()) server->SetBackend(std::move(backend).value());
  return server;
}

TEST_F(ServerModelTest, GreedyAnswersEqualTheEngine) {
  auto server = StartTinyServer(4);
  const auto cases = Cases();
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].question);
    Reply r = Post(server->port(), "/v1/chat/completions", Body(cases[i]).dump());
    ASSERT_EQ(r.status, 200) << r.body;
    json j = r.Json();
    EXPECT_EQ(j["choices"][0]["message"]["content"], expected_[i].text);
    EXPECT_EQ(j["choices"][0]["finish_reason"], expected_[i].finish);
    EXPECT_EQ(j["usage"]["prompt_tokens"], expected_[i].prompt_tokens);
    EXPECT_EQ(j["usage"]["completion_tokens"], expected_[i].completion_tokens);
    StreamReply s = PostStream(server->port(), Body(cases[i]));
    EXPECT_TRUE(s.saw_done);
    EXPECT_EQ(s.content, expected_[i].text);
    EXPECT_EQ(s.finish, expected_[i].finish);
  }
  // The second round hit the image-feature cache for every image and still matched.
  EXPECT_GE(MetricValue(server->port(), "idefics_image_cache_hits_total"), 5);
}

TEST_F(ServerModelTest, SixteenConcurrentClientsMatchTheEngine) {
  auto server = StartTinyServer(8);
  const auto cases = Cases();
  constexpr int kClients = 16;
  std::vector<std::string> got(kClients), finish(kClients), raw(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      const ModelCase& c = cases[i % cases.size()];
      if (i % 2) {
        StreamReply s = PostStream(server->port(), Body(c));
        got[i] = s.content;
        finish[i] = s.finish;
        raw[i] = std::to_string(s.status) + " " + s.raw.substr(0, 300);
      } else {
        Reply r = Post(server->port(), "/v1/chat/completions", Body(c).dump());
        raw[i] = std::to_string(r.status) + " " + r.body.substr(0, 300);
        json j = r.Json();
        if (!j.is_discarded() && j.contains("choices")) {
          got[i] = j["choices"][0]["message"]["content"];
          finish[i] = j["choices"][0]["finish_reason"];
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(got[i], expected_[i % cases.size()].text) << "client " << i << ": " << raw[i];
    EXPECT_EQ(finish[i], expected_[i % cases.size()].finish) << "client " << i;
  }
}

}  // namespace
}  // namespace idefics::server::test
