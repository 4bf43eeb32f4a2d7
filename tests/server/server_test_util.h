// Helpers for the server tests: an in-process server on an ephemeral loopback port, a JSON/SSE client,
// image data URIs from the golden images.
#pragma once

#include <httplib.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "server/http_server.h"
#include "server/image_source.h"
#include "support/golden.h"

namespace idefics::server::test {

using nlohmann::json;

inline ServerOptions TestOptions() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.log_requests = false;
  o.max_tokens_cap = 256;
  return o;
}

// Starts a server with `backend` installed (or none: /health says loading).
inline std::unique_ptr<InferenceServer> StartServer(ServerOptions options, std::unique_ptr<Backend> backend) {
  auto server = std::make_unique<InferenceServer>(std::move(options));
  auto port = server->Start();
  EXPECT_TRUE(port.ok()) << port.status().ToString();
  if (backend) server->SetBackend(std::move(backend));
  return server;
}

struct Reply {
  int status = 0;  // 0 = no HTTP response
  std::string body;
  json Json() const { return json::parse(body, nullptr, false); }
};

inline httplib::Headers AuthHeaders(const std::string& key) {
  return key.empty() ? httplib::Headers{} : httplib::Headers{{"Authorization", "Bearer " + key}};
}

inline Reply Get(int port, const std::string& path, const std::string& key = "") {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60, 0);
  cli.set_tcp_nodelay(true);
  auto r = cli.Get(path.c_str(), AuthHeaders(key));
  if (!r) return {};
  return {r->status, r->body};
}

inline Reply Post(int port, const std::string& path, const std::string& body, const std::string& key = "",
                  const std::string& content_type = "application/json") {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60, 0);
  cli.set_tcp_nodelay(true);
  auto r = cli.Post(path.c_str(), AuthHeaders(key), body, content_type.c_str());
  if (!r) return {0, "no response: " + httplib::to_string(r.error())};
  return {r->status, r->body};
}

struct StreamReply {
  int status = 0;
  std::string content;      // concatenated deltas
  std::string role;         // from the first chunk
  std::string finish;       // finish_reason of the final chunk
  json usage;               // from an include_usage chunk
  json error;               // an error event
  int content_chunks = 0;
  bool saw_done = false;
  std::string raw;
};

// Parses complete "data: ..." events out of buf (SSE), updating r; keeps an incomplete tail in buf.
inline void ParseSse(std::string* buf, StreamReply* r) {
  size_t end;
  while ((end = buf->find("\n\n")) != std::string::npos) {
    std::string event = buf->substr(0, end);
    buf->erase(0, end + 2);
    if (event.rfind("data: ", 0) != 0) continue;  // comments (keep-alives)
    std::string data = event.substr(6);
    if (data == "[DONE]") {
      r->saw_done = true;
      continue;
    }
    json j = json::parse(data, nullptr, false);
    if (j.is_discarded()) continue;
    if (j.contains("error")) r->error = j["error"];
    if (j.contains("usage") && !j["usage"].is_null()) r->usage = j["usage"];
    if (!j.contains("choices") || j["choices"].empty()) continue;
    const json& c = j["choices"][0];
    if (c["delta"].contains("role")) r->role = c["delta"]["role"];
    if (c["delta"].contains("content") && c["delta"]["content"].is_string()) {
      std::string piece = c["delta"]["content"];
      if (!piece.empty()) ++r->content_chunks;
      r->content += piece;
    }
    if (c["finish_reason"].is_string()) r->finish = c["finish_reason"];
  }
}

// POSTs a streaming request. stop_after_chunks > 0: disconnects after that many content chunks.
inline StreamReply PostStream(int port, json body, const std::string& key = "", int stop_after_chunks = 0) {
  body["stream"] = true;
  StreamReply r;
  std::string buf;
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60, 0);
  cli.set_tcp_nodelay(true);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.headers = AuthHeaders(key);
  req.set_header("Content-Type", "application/json");
  req.body = body.dump();
  req.response_handler = [&](const httplib::Response& res) {
    r.status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    r.raw.append(data, len);
    buf.append(data, len);
    ParseSse(&buf, &r);
    return !(stop_after_chunks > 0 && r.content_chunks >= stop_after_chunks);
  };
  auto res = cli.send(req);
  if (!res) r.raw += " no response: " + httplib::to_string(res.error());
  if (res && r.status == 0) r.status = res->status;
  if (res && res->status != 200) r.raw = res->body;
  return r;
}

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline std::string GoldenImagePath(const std::string& name) { return idefics::test::GoldenDir() + "/images/" + name; }

inline std::string ImageDataUri(const std::string& name) {
  const std::string bytes = ReadFileBytes(GoldenImagePath(name));
  const bool png = name.size() > 4 && name.substr(name.size() - 4) == ".png";
  return std::string("data:image/") + (png ? "png" : "jpeg") + ";base64," + EncodeBase64(bytes);
}

inline json UserMessage(const std::string& text, const std::vector<std::string>& image_uris = {}) {
  json content = json::array();
  for (const auto& uri : image_uris) content.push_back({{"type", "image_url"}, {"image_url", {{"url", uri}}}});
  content.push_back({{"type", "text"}, {"text", text}});
  return {{"role", "user"}, {"content", content}};
}

inline json ChatBody(const std::string& text, const std::vector<std::string>& image_uris = {},
                     int max_tokens = 24) {
  return {{"model", "x"}, {"messages", json::array({UserMessage(text, image_uris)})}, {"temperature", 0},
          {"max_tokens", max_tokens}};
}

// Reads a counter / gauge value from /metrics ("" labels: the unlabeled series).
inline double MetricValue(int port, const std::string& series) {
  Reply r = Get(port, "/metrics");
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

}  // namespace idefics::server::test
