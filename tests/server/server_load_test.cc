// Many clients at once against the fake backend: continuous batching gives every client its own correct
// answer, a disconnect frees its slot, a full queue answers 429, shutdown with requests in flight is clean.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "fake_backend.h"
#include "server_test_util.h"

namespace idefics::server::test {
namespace {

json Question(int i) {
  json body = ChatBody("question number " + std::to_string(i) + "?", {}, 12 + (i % 5) * 6);
  if (i % 3 == 0) {
    json part = {{"type", "image_url"},
                 {"image_url", {{"url", ImageDataUri(i % 2 ? "rgb_300x200.png" : "photo_320x240.jpg")}}}};
    json& content = body["messages"][0]["content"];
    content.insert(content.begin(), part);
  }
  return body;
}

TEST(ServerLoadTest, SixteenConcurrentClientsGetTheirOwnAnswers) {
  FakeOptions fo;
  fo.step_delay = std::chrono::microseconds(2000);  // so that requests overlap
  auto backend = std::make_unique<FakeBackend>(fo);
  FakeBackend* fake = backend.get();
  ServerOptions o = TestOptions();
  o.parallel = 8;
  auto server = StartServer(o, std::move(backend));
  const int port = server->port();
  constexpr int kClients = 16;
  // Reference answers, one request at a time.
  std::vector<std::string> expected(kClients);
  for (int i = 0; i < kClients; ++i) {
    Reply r = Post(port, "/v1/chat/completions", Question(i).dump());
    ASSERT_EQ(r.status, 200) << r.body;
    expected[i] = r.Json()["choices"][0]["message"]["content"];
  }
  fake->max_batch = 0;
  std::vector<std::string> got(kClients);
  std::vector<int> status(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      if (i % 2) {
        StreamReply s = PostStream(port, Question(i));
        status[i] = s.saw_done ? s.status : -1;
        got[i] = s.content;
      } else {
        Reply r = Post(port, "/v1/chat/completions", Question(i).dump());
        status[i] = r.status;
        if (r.status == 200) got[i] = r.Json()["choices"][0]["message"]["content"];
      }
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(status[i], 200) << "client " << i;
    EXPECT_EQ(got[i], expected[i]) << "client " << i;
  }
  EXPECT_GT(fake->max_batch.load(), 1) << "sequences were never decoded together";
  EXPECT_LE(fake->max_batch.load(), 8);
}

TEST(ServerLoadTest, DisconnectMidStreamFreesTheSlot) {
  FakeOptions fo;
  fo.step_delay = std::chrono::microseconds(3000);
  ServerOptions o = TestOptions();
  o.parallel = 1;
  o.max_tokens_cap = 100000;
  FakeOptions big = fo;
  big.context = 200000;
  auto server = StartServer(o, std::make_unique<FakeBackend>(big));
  const int port = server->port();
  json endless = ChatBody("talk forever", {}, 100000);
  endless["ignore_eos"] = true;
  // 100000 tokens at 3 ms would take 5 minutes: only a working cancel lets the next request through.
  StreamReply cut = PostStream(port, endless, "", /*stop_after_chunks=*/3);
  EXPECT_EQ(cut.status, 200);
  EXPECT_GE(cut.content_chunks, 3);
  const auto t0 = std::chrono::steady_clock::now();
  Reply next = Post(port, "/v1/chat/completions", ChatBody("next", {}, 5).dump());
  EXPECT_EQ(next.status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  for (int i = 0; i < 100 && MetricValue(port, "idefics_active_sequences") != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(MetricValue(port, "idefics_active_sequences"), 0);
  EXPECT_GE(MetricValue(port, "idefics_completions_cancelled_total"), 1);
}

TEST(ServerLoadTest, FullQueueAnswers429) {
  FakeOptions fo;
  fo.step_delay = std::chrono::microseconds(5000);
  ServerOptions o = TestOptions();
  o.parallel = 1;
  o.queue = 1;
  auto server = StartServer(o, std::make_unique<FakeBackend>(fo));
  const int port = server->port();
  json slow = ChatBody("slow", {}, 120);  // >= 600 ms: all four arrive while the first runs
  slow["ignore_eos"] = true;
  std::vector<int> status(4);
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * i));  // arrive one after another
      Reply r = Post(port, "/v1/chat/completions", slow.dump());
      status[i] = r.status;
      if (r.status == 429) {
        EXPECT_EQ(r.Json()["error"]["code"], "queue_full");
      }
    });
  }
  for (auto& t : clients) t.join();
  // One runs, one waits in the queue, the other two are refused.
  EXPECT_EQ(std::count(status.begin(), status.end(), 200), 2) << status[0] << status[1] << status[2] << status[3];
  EXPECT_EQ(std::count(status.begin(), status.end(), 429), 2) << status[0] << status[1] << status[2] << status[3];
  EXPECT_EQ(Post(port, "/v1/chat/completions", ChatBody("after").dump()).status, 200);
}

TEST(ServerLoadTest, TimeoutEndsARequest) {
  FakeOptions fo;
  fo.step_delay = std::chrono::microseconds(5000);
  ServerOptions o = TestOptions();
  o.timeout_s = 0.3;
  auto server = StartServer(o, std::make_unique<FakeBackend>(fo));
  json slow = ChatBody("slow", {}, 200);
  slow["ignore_eos"] = true;
  Reply r = Post(server->port(), "/v1/chat/completions", slow.dump());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Json()["error"]["code"], "cancelled");
}

TEST(ServerLoadTest, StopWithRequestsInFlightReturnsPromptly) {
  FakeOptions fo;
  fo.step_delay = std::chrono::microseconds(5000);
  ServerOptions o = TestOptions();
  o.max_tokens_cap = 5000;
  auto server = StartServer(o, std::make_unique<FakeBackend>(fo));
  const int port = server->port();
  json slow = ChatBody("slow", {}, 5000);
  slow["ignore_eos"] = true;
  std::vector<std::thread> clients;
  for (int i = 0; i < 3; ++i) clients.emplace_back([&, i] {
    if (i % 2) PostStream(port, slow);
    else Post(port, "/v1/chat/completions", slow.dump());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto t0 = std::chrono::steady_clock::now();
  server->Stop();
  for (auto& t : clients) t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

}  // namespace
}  // namespace idefics::server::test
