// POST /v1/chat/completions: request → validated job (images loaded, cached or preprocessed; prompt built) →
// scheduler → JSON response or server-sent events. Mirrors OpenAI's chat completions endpoint.
#pragma once

#include <memory>
#include <string>
#include <variant>

#include "server/api_error.h"
#include "server/job.h"
#include "server/request_parse.h"
#include "server/server_state.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace idefics::server {

// Everything the handler needs to answer besides the job.
struct PreparedJob {
  std::shared_ptr<Job> job;
  int64_t cache_hits = 0;  // images whose features were cached
};

// Loads and checks the images (400/413), builds the prompt (422 over the context) and the job. Runs in the
// HTTP thread, so image decoding and preprocessing stay off the scheduler thread.
std::variant<PreparedJob, ApiError> BuildJob(ServerState& state, const ChatRequest& request);

void HandleChatCompletions(ServerState& state, const httplib::Request& req, httplib::Response& res);

// Per-request notes for the access log line (the logger runs on the handler's thread after the response).
std::string& ThreadLogNote();

}  // namespace idefics::server
