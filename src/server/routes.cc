// The HTTP routes and hooks of `idefics serve` (see routes.h).
// Mirrors OpenAI's REST conventions (Bearer keys, error objects) and Prometheus' /metrics.
#include "server/routes.h"

#include <httplib.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string_view>

#include "server/chat_handler.h"
#include "server/openai_format.h"
#include "server/web_page.h"

namespace idefics::server {
namespace {

const char* DefaultMessage(int status) {
  switch (status) {
    case 400: return "malformed HTTP request";
    case 401: return "invalid or missing API key";
    case 404: return "unknown path";
    case 405: return "method not allowed";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 431: return "request headers too large";
    default: return status >= 500 ? "internal server error" : "request failed";
  }
}

bool Authorized(const ServerState& state, const httplib::Request& req) {
  const std::string& expected = state.options.api_key;
  if (expected.empty()) return true;
  // "Bearer KEY": the scheme is case-insensitive (RFC 7235 section 2.1); one or more spaces follow it.
  constexpr std::string_view kScheme = "bearer";
  const std::string header = req.get_header_value("Authorization");
  if (header.size() <= kScheme.size() || header[kScheme.size()] != ' ') return false;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
  const size_t start = header.find_first_not_of(' ', kScheme.size());
  const std::string got = start == std::string::npos ? std::string() : header.substr(start);
  // Constant-time comparison: the key must not leak through response timing.
  unsigned diff = got.size() ^ expected.size();
  for (size_t i = 0; i < got.size(); ++i) diff |= static_cast<unsigned char>(got[i]) ^
                                                  static_cast<unsigned char>(expected[i % expected.size()]);
  return diff == 0;
}

// Answers 405 with an Allow header for a known path asked with another method (httplib would say 404).
void RegisterMethodNotAllowed(httplib::Server& svr, const std::string& path, const std::string& allow) {
  auto handler = [path, allow](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Allow", allow);
    SendError(res, {405, "method not allowed: " + req.method + " " + path + " (allowed: " + allow + ")",
                    "invalid_request_error", "", "method_not_allowed"});
  };
  if (allow.find("GET") == std::string::npos) svr.Get(path, handler);
  if (allow.find("POST") == std::string::npos) svr.Post(path, handler);
  svr.Put(path, handler);
  svr.Patch(path, handler);
  svr.Delete(path, handler);
}

void LogLine(const httplib::Request& req, const httplib::Response& res) {
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string& note = ThreadLogNote();
  std::fprintf(stderr, "%s %s %s %s %d%s\n", stamp, req.remote_addr.c_str(), req.method.c_str(), req.path.c_str(),
               res.status, note.c_str());
  note.clear();
}

}  // namespace

void SendError(httplib::Response& res, const ApiError& error) {
  res.status = error.http_status;
  res.set_content(error.ToJson(), "application/json");
}

void RegisterRoutes(httplib::Server& svr, ServerState& state) {
  const ServerOptions& opt = state.options;
  if (!opt.cors_origin.empty()) {
    svr.set_default_headers({{"Access-Control-Allow-Origin", opt.cors_origin}, {"Vary", "Origin"}});
  }

  svr.set_pre_routing_handler([&state](const httplib::Request& req, httplib::Response& res) {
    ThreadLogNote().clear();
    if (req.method == "OPTIONS") {  // CORS preflight
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.path.rfind("/v1/", 0) == 0 && !Authorized(state, req)) {
      res.set_header("WWW-Authenticate", "Bearer");
      SendError(res, {401, "invalid or missing API key (send 'Authorization: Bearer KEY')", "authentication_error",
                      "", "invalid_api_key"});
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Fills in OpenAI-shaped bodies for errors httplib produces itself (404, 413 over --max-body-mb, 400...).
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = DefaultMessage(res.status);
    if (res.status == 404) message += ": " + req.method + " " + req.path;
    ApiError e{res.status, message, res.status >= 500 ? "server_error" : "invalid_request_error", "", ""};
    if (res.status == 404) e.code = "not_found";
    if (res.status == 413) e.code = "request_too_large";
    SendError(res, e);
  });

  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    SendError(res, ServerError("internal error while handling the request"));
  });

  // Counted before the response is written (the logger runs after it), so a client that reads /metrics right
  // after its previous reply always sees that request counted.
  svr.set_post_routing_handler([&state](const httplib::Request& req, httplib::Response& res) {
    state.metrics.CountRequest(req.path, res.status);
  });

  svr.set_logger([&state](const httplib::Request& req, const httplib::Response& res) {
    if (state.options.log_requests) LogLine(req, res);
    else ThreadLogNote().clear();
  });

  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(IndexHtml().data(), IndexHtml().size(), "text/html; charset=utf-8");
  });

  svr.Get("/health", [&state](const httplib::Request&, httplib::Response& res) {
    if (state.backend()) {
      res.set_content(R"({"status":"ok"})", "application/json");
      return;
    }
    std::lock_guard<std::mutex> lock(state.load_mu);
    nlohmann::json j = {{"status", state.load_error.empty() ? "loading" : "error"}};
    if (!state.load_error.empty()) j["error"] = state.load_error;
    res.status = state.load_error.empty() ? 503 : 500;
    res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
  });

  svr.Get("/metrics", [&state](const httplib::Request&, httplib::Response& res) {
    const auto s = state.cache.stats();
    res.set_content(state.metrics.Render({s.hits, s.misses, s.evictions, s.entries, s.bytes, s.capacity_bytes}),
                    "text/plain; version=0.0.4");
  });

  svr.Get("/v1/models", [&state](const httplib::Request&, httplib::Response& res) {
    Backend* backend = state.backend();
    res.set_content(ModelsJson(backend ? backend->ModelName() : state.options.model_name, state.started_unix),
                    "application/json");
  });

  svr.Post("/v1/chat/completions", [&state](const httplib::Request& req, httplib::Response& res) {
    HandleChatCompletions(state, req, res);
  });

  for (const char* path : {"/", "/health", "/metrics", "/v1/models"})
    RegisterMethodNotAllowed(svr, path, "GET, HEAD");
  RegisterMethodNotAllowed(svr, "/v1/chat/completions", "POST");
}

}  // namespace idefics::server
