// JSON bodies of the OpenAI chat API responses: chat.completion, chat.completion.chunk (server-sent events),
// the model list. Mirrors the response schema of OpenAI's /v1/chat/completions and /v1/models.
#pragma once

#include <cstdint>
#include <string>

namespace idefics::server {

struct CompletionMeta {
  std::string id;       // "chatcmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
};

std::string NewCompletionId();
int64_t UnixSeconds();

// A whole non-streaming response.
std::string CompletionJson(const CompletionMeta& meta, const std::string& content, const char* finish_reason,
                           int64_t prompt_tokens, int64_t completion_tokens);

// One "data: {...}\n\n" server-sent event carrying a chunk. role_delta: the first chunk (role + empty content);
// content: a text delta; finish_reason (non-null): the final chunk with an empty delta.
std::string SseRoleChunk(const CompletionMeta& meta);
std::string SseContentChunk(const CompletionMeta& meta, const std::string& content);
std::string SseFinalChunk(const CompletionMeta& meta, const char* finish_reason);
// stream_options.include_usage: a chunk with empty choices and the usage.
std::string SseUsageChunk(const CompletionMeta& meta, int64_t prompt_tokens, int64_t completion_tokens);
std::string SseData(const std::string& json);
inline constexpr const char kSseDone[] = "data: [DONE]\n\n";

std::string ModelsJson(const std::string& model, int64_t created);

}  // namespace idefics::server
