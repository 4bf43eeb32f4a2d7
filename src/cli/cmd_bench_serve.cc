// idefics bench-serve: load a running `idefics serve` (loopback only) with N concurrent streaming chat requests
// at several concurrency levels; prints aggregate tokens/s and time to first token as a table and as JSON.
#include <CLI/CLI.hpp>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/parse_flags.h"
#include "server/image_source.h"

namespace idefics::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Sample {
  bool ok = false;
  double ttft_s = 0;   // request sent -> first content delta
  double total_s = 0;  // request sent -> [DONE]
  int64_t tokens = 0;  // usage.completion_tokens
};

struct LevelResult {
  int concurrency = 0;
  int requests = 0, failed = 0;
  double wall_s = 0, tokens_per_s = 0, ttft_mean = 0, ttft_p50 = 0, ttft_p90 = 0, stream_tokens_per_s = 0;
  int64_t tokens = 0;
};

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

Sample OneRequest(const std::string& host, int port, const std::string& key, const std::string& body) {
  Sample s;
  httplib::Client cli(host, port);
  cli.set_read_timeout(600, 0);
  cli.set_tcp_nodelay(true);  // the request goes out in two writes (headers, body): no Nagle delay
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  if (!key.empty()) req.set_header("Authorization", "Bearer " + key);
  req.set_header("Content-Type", "application/json");
  req.body = body;
  const auto t0 = Clock::now();
  std::string buf;
  bool done = false;
  int status = 0;
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    return r.status == 200;
  };
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buf.append(data, len);
    size_t end;
    while ((end = buf.find("\n\n")) != std::string::npos) {
      const std::string ev = buf.substr(0, end);
      buf.erase(0, end + 2);
      if (ev.rfind("data: ", 0) != 0) continue;
      if (ev == "data: [DONE]") {
        done = true;
        continue;
      }
      json j = json::parse(ev.substr(6), nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("usage") && j["usage"].is_object()) s.tokens = j["usage"].value("completion_tokens", 0);
      if (j.contains("choices") && !j["choices"].empty() && s.ttft_s == 0) {
        const json& d = j["choices"][0]["delta"];
        if (d.contains("content") && d["content"].is_string() && !d["content"].get<std::string>().empty())
          s.ttft_s = std::chrono::duration<double>(Clock::now() - t0).count();
      }
    }
    return true;
  };
  auto res = cli.send(req);
  s.total_s = std::chrono::duration<double>(Clock::now() - t0).count();
  s.ok = res && status == 200 && done && s.tokens > 0;
  return s;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

LevelResult RunLevel(const std::string& host, int port, const std::string& key, int concurrency, int n,
                     const std::function<std::string(int)>& body_for) {
  std::vector<Sample> samples(static_cast<size_t>(n));
  std::atomic<int> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < concurrency; ++w) {
    workers.emplace_back([&] {
      for (int i; (i = next++) < n;) samples[static_cast<size_t>(i)] = OneRequest(host, port, key, body_for(i));
    });
  }
  for (auto& t : workers) t.join();
  LevelResult r;
  r.concurrency = concurrency;
  r.requests = n;
  r.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> ttft;
  double stream_rate_sum = 0;
  for (const Sample& s : samples) {
    if (!s.ok) {
      ++r.failed;
      continue;
    }
    r.tokens += s.tokens;
    ttft.push_back(s.ttft_s);
    if (s.tokens > 1 && s.total_s > s.ttft_s) stream_rate_sum += static_cast<double>(s.tokens - 1) / (s.total_s - s.ttft_s);
  }
  const double ok = static_cast<double>(ttft.size());
  r.tokens_per_s = r.wall_s > 0 ? static_cast<double>(r.tokens) / r.wall_s : 0;
  for (double t : ttft) r.ttft_mean += t / ok;
  r.ttft_p50 = Percentile(ttft, 0.5);
  r.ttft_p90 = Percentile(ttft, 0.9);
  r.stream_tokens_per_s = ok > 0 ? stream_rate_sum / ok : 0;
  return r;
}

}  // namespace

int RunBenchServe(int argc, char** argv) {
  CLI::App app("Measure a running idefics server's throughput at several concurrency levels", "idefics bench-serve");
  std::string url = "http://127.0.0.1:8080", image, concurrency_list = "1,4,16", key, json_out;
  std::string prompt = "Describe this image in detail.";
  int requests = 0, max_tokens = 64;
  app.add_option("--url", url, "server address (loopback only)")->capture_default_str();
  app.add_option("--image", image, "an image sent with every request (data URI)")->check(CLI::ExistingFile);
  app.add_option("--concurrency", concurrency_list, "comma-separated client counts")->capture_default_str();
  app.add_option("--requests", requests, "requests per level (default: 2 x concurrency, at least 8)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--max-tokens", max_tokens, "tokens generated per request (EOS ignored)")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--prompt", prompt, "the question")->capture_default_str();
  app.add_option("--api-key", key, "bearer key of the server");
  app.add_option("--json", json_out, "also write the JSON results to this file");
  if (std::optional<int> rc = ParseFlags(app, argc, argv)) return *rc;
  // http://HOST:PORT
  std::string rest = url.rfind("http://", 0) == 0 ? url.substr(7) : url;
  rest = rest.substr(0, rest.find('/'));
  const size_t colon = rest.rfind(':');
  const std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  const int port = colon == std::string::npos ? 80 : std::atoi(rest.c_str() + colon + 1);
  if (!IsLoopback(host) || port <= 0) {
    std::fprintf(stderr, "idefics bench-serve: --url must be http://127.0.0.1:PORT or localhost (got '%s')\n",
                 url.c_str());
    return 1;
  }
  std::vector<int> levels;
  std::stringstream ss(concurrency_list);
  for (std::string item; std::getline(ss, item, ',');) {
    const int c = std::atoi(item.c_str());
    if (c < 1 || c > 1024) {
      std::fprintf(stderr, "idefics bench-serve: bad concurrency '%s'\n", item.c_str());
      return 1;
    }
    levels.push_back(c);
  }
  std::string image_uri;
  if (!image.empty()) {
    std::ifstream in(image, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    image_uri = "data:image/" + std::string(image.size() > 4 && image.substr(image.size() - 4) == ".png" ? "png" : "jpeg") +
                ";base64," + server::EncodeBase64(bytes);
  }
  auto body_for = [&](int i) {
    json content = json::array();
    if (!image_uri.empty()) content.push_back({{"type", "image_url"}, {"image_url", {{"url", image_uri}}}});
    content.push_back({{"type", "text"}, {"text", prompt + " (" + std::to_string(i) + ")"}});
    return json{{"messages", json::array({{{"role", "user"}, {"content", content}}})},
                {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true}, {"stream", true},
                {"stream_options", {{"include_usage", true}}}}
        .dump();
  };
  // Warm-up: loads the image into the feature cache and checks the server answers.
  if (!OneRequest(host, port, key, body_for(-1)).ok) {
    std::fprintf(stderr, "idefics bench-serve: the server at %s did not answer a streaming request\n", url.c_str());
    return 1;
  }
  std::printf("%-12s %9s %7s %10s %12s %10s %10s %10s %14s\n", "concurrency", "requests", "failed", "tokens",
              "tokens/s", "ttft mean", "ttft p50", "ttft p90", "stream tok/s");
  json out = json::array();
  for (int c : levels) {
    const int n = requests > 0 ? requests : std::max(8, 2 * c);
    LevelResult r = RunLevel(host, port, key, c, n, body_for);
    std::printf("%-12d %9d %7d %10lld %12.1f %9.3fs %9.3fs %9.3fs %14.1f\n", c, r.requests, r.failed,
                static_cast<long long>(r.tokens), r.tokens_per_s, r.ttft_mean, r.ttft_p50, r.ttft_p90,
                r.stream_tokens_per_s);
    std::fflush(stdout);
    out.push_back({{"concurrency", c}, {"requests", r.requests}, {"failed", r.failed}, {"tokens", r.tokens},
                   {"wall_s", r.wall_s}, {"tokens_per_s", r.tokens_per_s}, {"ttft_mean_s", r.ttft_mean},
                   {"ttft_p50_s", r.ttft_p50}, {"ttft_p90_s", r.ttft_p90},
                   {"stream_tokens_per_s", r.stream_tokens_per_s}});
  }
  json doc = {{"url", url}, {"max_tokens", max_tokens}, {"image", image}, {"levels", out}};
  std::printf("%s\n", doc.dump().c_str());
  if (!json_out.empty()) std::ofstream(json_out) << doc.dump(2) << "\n";
  return 0;
}

}  // namespace idefics::cli
