// JSON bodies of the OpenAI chat API responses (see openai_format.h).
// Mirrors the response schema of OpenAI's /v1/chat/completions and /v1/models.
#include "server/openai_format.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

namespace idefics::server {
namespace {

using nlohmann::json;

// Generated text is valid UTF-8 by construction (the detokenizer replaces broken sequences); replace keeps a
// bug from turning into an exception.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json Usage(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json ChunkBase(const CompletionMeta& meta) {
  return {{"id", meta.id}, {"object", "chat.completion.chunk"}, {"created", meta.created}, {"model", meta.model},
          {"system_fingerprint", nullptr}};
}

std::string Chunk(const CompletionMeta& meta, json delta, const char* finish_reason) {
  json j = ChunkBase(meta);
  j["choices"] = json::array({{{"index", 0},
                               {"delta", std::move(delta)},
                               {"logprobs", nullptr},
                               {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}}});
  return SseData(Dump(j));
}

}  // namespace

std::string NewCompletionId() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  char buf[48];
  std::snprintf(buf, sizeof(buf), "chatcmpl-%08llx%08llx", static_cast<unsigned long long>(salt & 0xFFFFFFFF),
                static_cast<unsigned long long>(++counter));
  return buf;
}

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string CompletionJson(const CompletionMeta& meta, const std::string& content, const char* finish_reason,
                           int64_t prompt_tokens, int64_t completion_tokens) {
  json j = {{"id", meta.id},
            {"object", "chat.completion"},
            {"created", meta.created},
            {"model", meta.model},
            {"system_fingerprint", nullptr},
            {"choices", json::array({{{"index", 0},
                                      {"message", {{"role", "assistant"}, {"content", content}}},
                                      {"logprobs", nullptr},
                                      {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}}})},
            {"usage", Usage(prompt_tokens, completion_tokens)}};
  return Dump(j);
}

std::string SseRoleChunk(const CompletionMeta& meta) {
  return Chunk(meta, {{"role", "assistant"}, {"content", ""}}, nullptr);
}

std::string SseContentChunk(const CompletionMeta& meta, const std::string& content) {
  return Chunk(meta, {{"content", content}}, nullptr);
}

std::string SseFinalChunk(const CompletionMeta& meta, const char* finish_reason) {
  return Chunk(meta, json::object(), finish_reason);
}

std::string SseUsageChunk(const CompletionMeta& meta, int64_t prompt_tokens, int64_t completion_tokens) {
  json j = ChunkBase(meta);
  j["choices"] = json::array();
  j["usage"] = Usage(prompt_tokens, completion_tokens);
  return SseData(Dump(j));
}

std::string SseData(const std::string& json_text) { return "data: " + json_text + "\n\n"; }

std::string ModelsJson(const std::string& model, int64_t created) {
  json j = {{"object", "list"},
            {"data", json::array({{{"id", model}, {"object", "model"}, {"created", created},
                                   {"owned_by", "idefics.cpp"}}})}};
  return Dump(j);
}

}  // namespace idefics::server
