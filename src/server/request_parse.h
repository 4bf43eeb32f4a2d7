// Parses and validates an OpenAI chat-completions request body into the server's internal request.
// Mirrors the request schema of OpenAI's POST /v1/chat/completions (plus llama.cpp-style sampling extensions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "server/api_error.h"
#include "server/backend.h"

namespace idefics::server {

struct ParseLimits {
  int64_t max_images = 8;        // per request
  int64_t max_tokens_cap = 4096; // largest max_tokens accepted
  int64_t max_stop = 16;         // stop strings
};

struct ChatRequest {
  std::vector<ChatMessage> messages;
  std::vector<std::string> image_urls;     // in order of appearance; ChatPart::is_image refers to these
  std::vector<std::string> image_params;   // the JSON path of each, for error messages
  std::optional<int64_t> max_tokens;       // max_completion_tokens or max_tokens
  SamplingParams sampling;                 // temperature 0 -> greedy; absent -> OpenAI's default 1.0
  bool seed_given = false;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;              // stream_options.include_usage
  std::optional<bool> do_image_splitting;  // extension; absent -> the model folder's setting
  bool ignore_eos = false;                 // extension (benchmarks): generate exactly max_tokens
  std::string model;
};

// Returns the request or the 400/422 error naming the offending field (e.g. "messages[1].content[0].type").
std::variant<ChatRequest, ApiError> ParseChatRequest(const std::string& body, const ParseLimits& limits);

}  // namespace idefics::server
