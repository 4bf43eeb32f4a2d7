// `idefics serve`: an OpenAI-compatible HTTP server. The listener starts first (GET /health answers 503
// "loading"), the model loads in a background thread, then the scheduler starts. See docs/server.md.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "idefics/status.h"
#include "server/backend.h"
#include "server/server_state.h"

namespace httplib {
class Server;
}

namespace idefics::server {

using BackendLoader = std::function<StatusOr<std::unique_ptr<Backend>>()>;

class InferenceServer {
 public:
  explicit InferenceServer(ServerOptions options);
  ~InferenceServer();
  InferenceServer(const InferenceServer&) = delete;
  InferenceServer& operator=(const InferenceServer&) = delete;

  // Binds host:port (port 0 = any free port) and serves in a background thread. Returns the bound port.
  StatusOr<int> Start();
  // Runs the loader in a background thread; on success installs the backend and starts the scheduler.
  // on_done (may be empty) is told the outcome.
  void LoadInBackground(BackendLoader loader, std::function<void(const Status&)> on_done = nullptr);
  // Installs a loaded backend directly (tests) and starts the scheduler.
  void SetBackend(std::unique_ptr<Backend> backend);
  // Stops the scheduler (pending requests fail), the listener and the loader; idempotent.
  void Stop();
  int port() const { return port_; }
  ServerState& state() { return *state_; }

 private:
  std::unique_ptr<ServerState> state_;
  std::unique_ptr<httplib::Server> http_;
  std::thread listen_thread_;
  std::thread load_thread_;
  int port_ = 0;
  int listen_fd_ = -1;  // the listening socket (owned by httplib)
  std::atomic<bool> listen_returned_{false};  // listen_after_bind() has returned (stopped or failed)
  bool stopped_ = false;
};

}  // namespace idefics::server
