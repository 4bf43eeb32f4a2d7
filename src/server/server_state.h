// Options and shared state of `idefics serve`: limits, the loaded backend, the scheduler, cache and metrics.
// No transformers counterpart (server configuration).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "server/backend.h"
#include "server/image_cache.h"
#include "server/metrics.h"
#include "server/scheduler.h"

namespace idefics::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0 = any free port
  std::string model_name = "idefics2";
  std::string api_key;               // "" = no authentication
  std::string cors_origin;           // "" = no CORS headers
  std::string allow_local_dir;       // "" = local image files refused
  int parallel = 4;                  // sequences decoded together
  int queue = 64;                    // waiting requests before 429
  int http_threads = 0;              // 0 = parallel + queue + 8
  int64_t max_body_bytes = 32 << 20; // 413 beyond
  int64_t max_images = 8;            // per request, 422 beyond
  int64_t max_image_pixels = 40'000'000;  // decoded width*height, 413 beyond
  int64_t max_tokens_cap = 4096;     // largest max_tokens, 400 beyond
  int64_t image_cache_bytes = 256ll << 20;
  double timeout_s = 600;            // per request (queue + generation)
  double read_timeout_s = 10;        // silence while reading a request (headers or body) before closing
  bool log_requests = true;          // one line per request on stderr
};

struct ServerState {
  explicit ServerState(ServerOptions o) : options(std::move(o)), cache(options.image_cache_bytes) {}

  const ServerOptions options;
  Metrics metrics;
  ImageFeatureCache cache;
  int64_t started_unix = 0;  // for /v1/models

  // Null until the model is loaded; then set once and kept until shutdown.
  Backend* backend() const { return backend_ptr.load(std::memory_order_acquire); }
  Scheduler* scheduler() const { return scheduler_ptr.load(std::memory_order_acquire); }

  std::unique_ptr<Backend> backend_owned;
  std::unique_ptr<Scheduler> scheduler_owned;
  std::atomic<Backend*> backend_ptr{nullptr};
  std::atomic<Scheduler*> scheduler_ptr{nullptr};
  std::mutex load_mu;
  std::string load_error;  // guarded by load_mu; set when loading failed
};

}  // namespace idefics::server
