// The HTTP routes of `idefics serve` (/, /health, /metrics, /v1/models, /v1/chat/completions) and the
// cross-cutting handlers: API key, CORS, OpenAI-shaped errors, access log. Mirrors OpenAI's REST conventions.
#pragma once

#include "server/api_error.h"
#include "server/server_state.h"

namespace httplib {
class Server;
struct Response;
}  // namespace httplib

namespace idefics::server {

void SendError(httplib::Response& res, const ApiError& error);

// Installs every route and hook on svr; state must outlive the server.
void RegisterRoutes(httplib::Server& svr, ServerState& state);

}  // namespace idefics::server
