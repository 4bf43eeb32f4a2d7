// Parses and validates an OpenAI chat-completions request body (see request_parse.h).
// Mirrors the request schema of OpenAI's POST /v1/chat/completions.
#include "server/request_parse.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace idefics::server {
namespace {

using nlohmann::json;

// Each reader returns "" on success or sets *error; null values count as absent (OpenAI accepts null).
struct Reader {
  const json& obj;
  ApiError* error;
  bool failed = false;

  const json* Find(const char* key) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }
  void Fail(std::string message, const std::string& param) {
    if (!failed) *error = BadRequest(std::move(message), param);
    failed = true;
  }
  std::optional<double> Number(const char* key, double lo, double hi) {
    const json* v = Find(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) {
      Fail(std::string("'") + key + "' must be a number", key);
      return std::nullopt;
    }
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) {
      Fail(std::string("'") + key + "' must be between " + json(lo).dump() + " and " + json(hi).dump(), key);
      return std::nullopt;
    }
    return d;
  }
  std::optional<int64_t> Integer(const char* key, int64_t lo, int64_t hi) {
    const json* v = Find(key);
    if (!v) return std::nullopt;
    if (v->is_number_unsigned()) {
      // nlohmann stores every non-negative integer as unsigned.
      const uint64_t u = v->get<uint64_t>();
      if (u <= static_cast<uint64_t>(hi) && (lo <= 0 || u >= static_cast<uint64_t>(lo)))
        return static_cast<int64_t>(u);
    } else if (v->is_number_integer()) {
      const int64_t i = v->get<int64_t>();
      if (i >= lo && i <= hi) return i;
    } else {
      Fail(std::string("'") + key + "' must be an integer", key);
      return std::nullopt;
    }
    Fail(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi), key);
    return std::nullopt;
  }
  std::optional<bool> Bool(const char* key) {
    const json* v = Find(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) {
      Fail(std::string("'") + key + "' must be a boolean", key);
      return std::nullopt;
    }
    return v->get<bool>();
  }
};

// Reads one message's content (a string or a list of parts) into msg; images go to req.
std::optional<ApiError> ParseContent(const json& content, const std::string& path, ChatMessage* msg,
                                     ChatRequest* req, const ParseLimits& limits) {
  if (content.is_string()) {
    msg->parts.push_back({false, content.get<std::string>()});
    return std::nullopt;
  }
  if (!content.is_array()) return BadRequest("'content' must be a string or an array of parts", path);
  for (size_t j = 0; j < content.size(); ++j) {
    const json& part = content[j];
    const std::string ppath = path + "[" + std::to_string(j) + "]";
    if (!part.is_object()) return BadRequest("a content part must be an object", ppath);
    auto type = part.find("type");
    if (type == part.end() || !type->is_string())
      return BadRequest("a content part needs a string 'type'", ppath + ".type");
    const std::string t = type->get<std::string>();
    if (t == "text") {
      auto text = part.find("text");
      if (text == part.end() || !text->is_string())
        return BadRequest("a text part needs a string 'text'", ppath + ".text");
      msg->parts.push_back({false, text->get<std::string>()});
    } else if (t == "image_url") {
      auto iu = part.find("image_url");
      std::string url;
      if (iu != part.end() && iu->is_string()) {
        url = iu->get<std::string>();  // lenient: some clients send the URL directly
      } else if (iu != part.end() && iu->is_object() && iu->contains("url") && (*iu)["url"].is_string()) {
        url = (*iu)["url"].get<std::string>();
      } else {
        return BadRequest("an image_url part needs 'image_url': {\"url\": string}", ppath + ".image_url");
      }
      if (static_cast<int64_t>(req->image_urls.size()) >= limits.max_images)
        return Unprocessable("too many images: at most " + std::to_string(limits.max_images) + " per request",
                             ppath, "too_many_images");
      req->image_urls.push_back(std::move(url));
      req->image_params.push_back(ppath + ".image_url.url");
      msg->parts.push_back({true, ""});
    } else {
      return BadRequest("unsupported content part type '" + t + "' (use 'text' or 'image_url')", ppath + ".type");
    }
  }
  return std::nullopt;
}

std::optional<ApiError> ParseMessages(const json& body, ChatRequest* req, const ParseLimits& limits) {
  auto it = body.find("messages");
  if (it == body.end()) return BadRequest("missing required field 'messages'", "messages");
  if (!it->is_array() || it->empty()) return BadRequest("'messages' must be a non-empty array", "messages");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string path = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return BadRequest("each message must be an object", path);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return BadRequest("a message needs a string 'role'", path + ".role");
    ChatMessage msg;
    msg.role = role->get<std::string>();
    // "developer" is OpenAI's newer name for the system role.
    if (msg.role == "developer") msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      return BadRequest("unknown role '" + msg.role + "' (use system, user or assistant)", path + ".role");
    auto content = m.find("content");
    if (content == m.end() || content->is_null())
      return BadRequest("a message needs 'content'", path + ".content");
    if (auto err = ParseContent(*content, path + ".content", &msg, req, limits)) return err;
    req->messages.push_back(std::move(msg));
  }
  if (req->messages.back().role == "assistant")
    return BadRequest("the last message must not be from the assistant", "messages");
  return std::nullopt;
}

}  // namespace

std::variant<ChatRequest, ApiError> ParseChatRequest(const std::string& body_text, const ParseLimits& limits) {
  json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return BadRequest("request body is not valid JSON", "", "invalid_json");
  if (!body.is_object()) return BadRequest("request body must be a JSON object", "", "invalid_json");

  ChatRequest req;
  ApiError error;
  Reader r{body, &error};
  try {
    if (auto err = ParseMessages(body, &req, limits)) return *err;
    if (const json* m = r.Find("model")) {
      if (!m->is_string()) r.Fail("'model' must be a string", "model");
      else req.model = m->get<std::string>();
    }
    auto n = r.Integer("n", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
    if (n && *n != 1) r.Fail("only n = 1 is supported", "n");
    auto max_completion = r.Integer("max_completion_tokens", 1, limits.max_tokens_cap);
    auto max_tokens = r.Integer("max_tokens", 1, limits.max_tokens_cap);
    req.max_tokens = max_completion ? max_completion : max_tokens;
    // OpenAI's default temperature is 1 (sampling); 0 asks for the deterministic argmax.
    req.sampling.greedy = false;
    req.sampling.temperature = 1.0f;
    if (auto t = r.Number("temperature", 0.0, 2.0)) {
      req.sampling.greedy = *t == 0.0;
      if (*t > 0.0) req.sampling.temperature = static_cast<float>(*t);
    }
    if (auto p = r.Number("top_p", 0.0, 1.0)) {
      if (*p == 0.0) r.Fail("'top_p' must be greater than 0", "top_p");
      req.sampling.top_p = static_cast<float>(*p);
    }
    if (auto k = r.Integer("top_k", 0, 1 << 30)) req.sampling.top_k = static_cast<int32_t>(*k);
    if (auto p = r.Number("min_p", 0.0, 1.0)) req.sampling.min_p = static_cast<float>(*p);
    if (auto p = r.Number("repeat_penalty", 0.01, 100.0)) req.sampling.repetition_penalty = static_cast<float>(*p);
    if (auto p = r.Number("presence_penalty", -2.0, 2.0)) req.sampling.presence_penalty = static_cast<float>(*p);
    if (auto p = r.Number("frequency_penalty", -2.0, 2.0)) req.sampling.frequency_penalty = static_cast<float>(*p);
    if (const json* s = r.Find("seed")) {
      if (s->is_number_unsigned()) req.sampling.seed = s->get<uint64_t>();
      else if (s->is_number_integer()) req.sampling.seed = static_cast<uint64_t>(s->get<int64_t>());
      else r.Fail("'seed' must be an integer", "seed");
      req.seed_given = true;
    }
    if (const json* s = r.Find("stop")) {
      if (s->is_string()) {
        req.stop.push_back(s->get<std::string>());
      } else if (s->is_array()) {
        for (const json& e : *s) {
          if (!e.is_string()) { r.Fail("'stop' must be a string or an array of strings", "stop"); break; }
          req.stop.push_back(e.get<std::string>());
        }
      } else {
        r.Fail("'stop' must be a string or an array of strings", "stop");
      }
      if (static_cast<int64_t>(req.stop.size()) > limits.max_stop)
        r.Fail("at most " + std::to_string(limits.max_stop) + " stop strings", "stop");
      for (const std::string& s : req.stop)
        if (s.empty()) r.Fail("stop strings must not be empty", "stop");
    }
    if (auto s = r.Bool("stream")) req.stream = *s;
    if (const json* so = r.Find("stream_options")) {
      if (!so->is_object()) r.Fail("'stream_options' must be an object", "stream_options");
      else if (so->contains("include_usage") && !(*so)["include_usage"].is_null()) {
        if (!(*so)["include_usage"].is_boolean())
          r.Fail("'stream_options.include_usage' must be a boolean", "stream_options.include_usage");
        else req.include_usage = (*so)["include_usage"].get<bool>();
      }
    }
    if (auto s = r.Bool("do_image_splitting")) req.do_image_splitting = *s;
    if (auto s = r.Bool("ignore_eos")) req.ignore_eos = *s;
    if (auto lp = r.Bool("logprobs"); lp && *lp) r.Fail("'logprobs' is not supported", "logprobs");
    if (r.Find("tools") || r.Find("functions")) r.Fail("tools / function calling is not supported", "tools");
    if (const json* rf = r.Find("response_format")) {
      if (!rf->is_object() || !rf->contains("type") || (*rf)["type"] != "text")
        r.Fail("only response_format {\"type\": \"text\"} is supported", "response_format");
    }
  } catch (const std::exception& e) {
    // Every access above is type-checked first; this only guards against a missed case.
    return BadRequest(std::string("malformed request: ") + e.what());
  }
  if (r.failed) return error;
  return req;
}

}  // namespace idefics::server
