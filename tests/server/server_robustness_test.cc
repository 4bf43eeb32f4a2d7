// Findings of a robustness sweep of `idefics serve`, each pinned by a test: Stop() right after Start(),
// slot/queue accounting, a non-streaming client that leaves, slow (slowloris) clients, auth scheme case,
// 405 for a known path with the wrong method, the CLI's port range and exit after a load failure.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "fake_backend.h"
#include "server_test_util.h"

namespace idefics::server::test {
namespace {

// Runs `body` in a thread and fails when it has not returned after `limit` (the thread is then left behind,
// so a hang fails the test instead of stalling the whole binary).
void RunWithin(std::chrono::seconds limit, std::function<void()> body) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread([done, body = std::move(body)] {
    body();
    done->set_value();
  }).detach();
  ASSERT_EQ(finished.wait_for(limit), std::future_status::ready)
      << "did not return within " << limit.count() << " s";
}

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendAll(int fd, const std::string& data) {
  ssize_t ignored = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
  (void)ignored;
}

json Endless(int max_tokens) {
  json body = ChatBody("talk for a while", {}, max_tokens);
  body["ignore_eos"] = true;
  return body;
}

TEST(ServerLifecycleTest, StopRightAfterStartNeverHangs) {
  // Stop() used to reach httplib's stop() before the listen thread had marked the server running; stop() then
  // did nothing and join() waited on accept() forever.
  RunWithin(std::chrono::seconds(60), [] {
    for (int i = 0; i < 50; ++i) {
      InferenceServer server(TestOptions());
      ASSERT_TRUE(server.Start().ok());
      server.Stop();
    }
  });
}

TEST(ServerLifecycleTest, StopAfterAnImmediateLoadFailureNeverHangs) {
  RunWithin(std::chrono::seconds(60), [] {
    for (int i = 0; i < 20; ++i) {
      InferenceServer server(TestOptions());
      ASSERT_TRUE(server.Start().ok());
      server.LoadInBackground([]() -> StatusOr<std::unique_ptr<Backend>> { return NotFound("no model"); });
      server.Stop();
    }
  });
}

TEST(ServerLifecycleTest, ServeExitsWithOneAfterALoadFailure) {
  for (int i = 0; i < 5; ++i) {
    std::string out;
    const int rc = idefics::test::RunCommand(
        "timeout -s KILL 60 " + idefics::test::CliPath() + " serve --model /nonexistent-model --port 0 2>&1",
        &out);
    EXPECT_EQ(rc, 1) << out;
    EXPECT_NE(out.find("cannot load the model"), std::string::npos) << out;
  }
}

TEST(ServerLifecycleTest, ServeRefusesPortsOutsideTheTcpRange) {
  for (const char* port : {"99999", "65536", "-1"}) {
    std::string out;
    const int rc = idefics::test::RunCommand("timeout -s KILL 60 " + idefics::test::CliPath() +
                                                 " serve --model /nonexistent-model --port " + port + " 2>&1",
                                             &out);
    EXPECT_NE(rc, 0) << port << ": " << out;
    EXPECT_NE(out.find("--port"), std::string::npos) << port << ": " << out;
    EXPECT_EQ(out.find("listening"), std::string::npos) << port << ": " << out;
  }
}

TEST(ServerSchedulerQueueTest, NoQueueStillServesOneRequestPerSlot) {
  ServerOptions o = TestOptions();
  o.parallel = 1;
  o.queue = 0;
  auto server = StartServer(o, std::make_unique<FakeBackend>());
  for (int i = 0; i < 5; ++i) {  // one after another: each finds the slot free
    Reply r = Post(server->port(), "/v1/chat/completions", ChatBody("hi " + std::to_string(i)).dump());
    EXPECT_EQ(r.status, 200) << r.body;
  }
}

TEST(ServerSchedulerQueueTest, EverySlotIsUsedBeforeTheQueueCounts) {
  FakeOptions fo;
  fo.step_delay = std::chrono::microseconds(5000);
  ServerOptions o = TestOptions();
  o.parallel = 4;
  o.queue = 0;
  o.max_tokens_cap = 1000;
  auto server = StartServer(o, std::make_unique<FakeBackend>(fo));
  const int port = server->port();
  std::vector<int> status(4);
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i)
    clients.emplace_back(
        [&, i] { status[i] = Post(port, "/v1/chat/completions", Endless(400).dump()).status; });
  // 400 steps of 5 ms: the four are still running when the fifth arrives.
  for (int i = 0; i < 500 && MetricValue(port, "idefics_active_sequences") < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  Reply fifth = Post(port, "/v1/chat/completions", ChatBody("one too many").dump());
  EXPECT_EQ(fifth.status, 429) << fifth.body;
  EXPECT_EQ(fifth.Json()["error"]["code"], "queue_full");
  for (auto& t : clients) t.join();
  EXPECT_EQ(std::count(status.begin(), status.end(), 200), 4)
      << status[0] << status[1] << status[2] << status[3];
}

TEST(ServerDisconnectTest, NonStreamingClientThatLeavesFreesTheSlot) {
  FakeOptions fo;
  fo.step_delay = std::chrono::microseconds(3000);
  fo.context = 200000;
  ServerOptions o = TestOptions();
  o.parallel = 1;
  o.max_tokens_cap = 100000;
  auto server = StartServer(o, std::make_unique<FakeBackend>(fo));
  const int port = server->port();
  // 100000 tokens at 3 ms would take 5 minutes: only a noticed disconnect lets the next request through.
  const std::string body = Endless(100000).dump();
  int fd = ConnectLoopback(port);
  ASSERT_GE(fd, 0);
  SendAll(fd,
          "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
          "Content-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body);
  for (int i = 0; i < 500 && MetricValue(port, "idefics_active_sequences") < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  close(fd);
  const auto t0 = std::chrono::steady_clock::now();
  Reply next = Post(port, "/v1/chat/completions", ChatBody("next", {}, 5).dump());
  EXPECT_EQ(next.status, 200) << next.body;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  EXPECT_GE(MetricValue(port, "idefics_completions_cancelled_total"), 1);
}

TEST(ServerDisconnectTest, SlowClientsAreCutOffAfterTheReadTimeout) {
  ServerOptions o = TestOptions();
  o.http_threads = 3;
  o.read_timeout_s = 0.5;
  auto server = StartServer(o, std::make_unique<FakeBackend>());
  const int port = server->port();
  // As many half-sent requests as there are HTTP threads. Each is answered 400 after the read timeout, then
  // httplib keeps the connection for its 5 s keep-alive wait: ~5.5 s in all, where the old 30 s read timeout
  // held them for over 30 s.
  std::vector<int> slow;
  for (int i = 0; i < 3; ++i) {
    int fd = ConnectLoopback(port);
    ASSERT_GE(fd, 0);
    SendAll(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    slow.push_back(fd);
  }
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(Get(port, "/health").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  for (int fd : slow) close(fd);
}

TEST(ServerAuthTest, BearerSchemeIsCaseInsensitive) {
  ServerOptions o = TestOptions();
  o.api_key = "sekret";
  auto server = StartServer(o, std::make_unique<FakeBackend>());
  httplib::Client cli("127.0.0.1", server->port());
  auto status = [&](const std::string& value) {
    auto r = cli.Get("/v1/models", {{"Authorization", value}});
    return r ? r->status : 0;
  };
  EXPECT_EQ(status("Bearer sekret"), 200);
  EXPECT_EQ(status("bearer sekret"), 200);
  EXPECT_EQ(status("BEARER sekret"), 200);
  EXPECT_EQ(status("Bearer  sekret"), 200);
  EXPECT_EQ(status("Basic sekret"), 401);
  EXPECT_EQ(status("Bearersekret"), 401);
  EXPECT_EQ(status("bearer Sekret"), 401);  // the key itself is exact
  EXPECT_EQ(status("Bearer "), 401);
  EXPECT_EQ(status("sekret"), 401);
}

TEST(ServerApiMethodTest, KnownPathWithTheWrongMethodIs405) {
  auto server = StartServer(TestOptions(), std::make_unique<FakeBackend>());
  httplib::Client cli("127.0.0.1", server->port());
  auto get = cli.Get("/v1/chat/completions");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(get->get_header_value("Allow"), "POST");
  json j = json::parse(get->body, nullptr, false);
  EXPECT_EQ(j["error"]["code"], "method_not_allowed");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  auto post = cli.Post("/health", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
  auto del = cli.Delete("/v1/models");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);
  EXPECT_EQ(cli.Get("/nope")->status, 404);  // unknown paths stay 404
  EXPECT_EQ(cli.Get("/health")->status, 200);
}

}  // namespace
}  // namespace idefics::server::test
