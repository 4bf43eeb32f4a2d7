// `idefics serve` lifecycle: listener thread, background model loading, scheduler (see http_server.h).
// No transformers counterpart.
#include "server/http_server.h"

#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>

#include "server/openai_format.h"
#include "server/routes.h"

namespace idefics::server {
namespace {
constexpr int kListenBacklog = 1024;
}  // namespace

InferenceServer::InferenceServer(ServerOptions options)
    : state_(std::make_unique<ServerState>(std::move(options))), http_(std::make_unique<httplib::Server>()) {
  state_->started_unix = UnixSeconds();
}

InferenceServer::~InferenceServer() { Stop(); }

StatusOr<int> InferenceServer::Start() {
  // A client that vanishes mid-response must not kill the process: writes then fail with EPIPE instead.
  signal(SIGPIPE, SIG_IGN);
  const ServerOptions& opt = state_->options;
  // Every streaming response holds an HTTP thread for its whole generation; queued requests too.
  const int threads = opt.http_threads > 0 ? opt.http_threads : std::min(opt.parallel + opt.queue + 8, 1024);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_payload_max_length(static_cast<size_t>(opt.max_body_bytes));
  // A client that stops sending mid-request holds an HTTP thread until this runs out (slowloris); it is
  // per read, so it bounds silence, not the whole upload.
  const auto read_timeout = std::chrono::microseconds(static_cast<int64_t>(opt.read_timeout_s * 1e6));
  http_->set_read_timeout(read_timeout.count() / 1000000, read_timeout.count() % 1000000);
  http_->set_write_timeout(30, 0);
  http_->set_keep_alive_timeout(5);
  // Each SSE chunk is a small write: without TCP_NODELAY, Nagle's algorithm holds it back until the client's
  // delayed ACK (~40 ms), turning a token stream into bursts.
  http_->set_tcp_nodelay(true);
  // cpp-httplib listens with a backlog of 5 (compiled into Debian's library): a burst of clients overflows
  // it and connections stall or fail. We keep the listening socket and raise the backlog after binding
  // (listen() on a listening socket updates it). Only SO_REUSEADDR, not httplib's SO_REUSEPORT: a second
  // server on the same port must fail to start.
  http_->set_socket_options([this](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd_ = sock;
  });
  RegisterRoutes(*http_, *state_);
  const int port = opt.port == 0 ? http_->bind_to_any_port(opt.host) : (http_->bind_to_port(opt.host, opt.port)
                                                                             ? opt.port : -1);
  if (port <= 0) return IoError("cannot listen on " + opt.host + ":" + std::to_string(opt.port));
  port_ = port;
  if (listen_fd_ >= 0) ::listen(listen_fd_, kListenBacklog);
  listen_thread_ = std::thread([this] {
    http_->listen_after_bind();
    listen_returned_ = true;
  });
  return port;
}

void InferenceServer::SetBackend(std::unique_ptr<Backend> backend) {
  ServerState& s = *state_;
  if (s.backend_ptr.load()) return;
  s.backend_owned = std::move(backend);
  SchedulerOptions so;
  so.parallel = std::max(1, s.options.parallel);
  so.queue = std::max(0, s.options.queue);
  s.scheduler_owned = std::make_unique<Scheduler>(*s.backend_owned, s.cache, s.metrics, so);
  s.scheduler_owned->Start();
  s.scheduler_ptr.store(s.scheduler_owned.get(), std::memory_order_release);
  s.backend_ptr.store(s.backend_owned.get(), std::memory_order_release);
  s.metrics.model_loaded = 1;
}

void InferenceServer::LoadInBackground(BackendLoader loader, std::function<void(const Status&)> on_done) {
  load_thread_ = std::thread([this, loader = std::move(loader), on_done = std::move(on_done)] {
    auto backend = loader();
    if (backend.ok()) {
      SetBackend(std::move(backend).value());
    } else {
      std::lock_guard<std::mutex> lock(state_->load_mu);
      state_->load_error = backend.status().ToString();
    }
    if (on_done) on_done(backend.ok() ? Status::Ok() : backend.status());
  });
}

void InferenceServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // The loader cannot be interrupted; wait for it so the backend is not installed into a dead server.
  if (load_thread_.joinable()) load_thread_.join();
  if (state_->scheduler_owned) state_->scheduler_owned->Stop();  // fails pending jobs, so handlers return
  if (listen_thread_.joinable()) {
    // httplib's stop() does nothing until the listen thread has raised its running flag; a Stop() right after
    // Start() (a model that fails to load at once) would then leave that thread in accept() forever. So wait
    // until the listener runs, or has already given up, before stopping it.
    while (!http_->is_running() && !listen_returned_)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    http_->stop();
    listen_thread_.join();  // joins the HTTP thread pool too
  }
}

}  // namespace idefics::server
