// idefics serve: the OpenAI-compatible HTTP server (src/server). Parses flags, starts listening at once
// (/health says "loading"), loads the model in the background, and stops cleanly on SIGINT/SIGTERM.
#include <CLI/CLI.hpp>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/parse_flags.h"
#include "cli/run_flags.h"
#include "server/engine_backend.h"
#include "server/http_server.h"

namespace idefics::cli {

int RunServe(int argc, char** argv) {
  CLI::App app("OpenAI-compatible HTTP server with continuous batching and a web chat page", "idefics serve");
  ModelFlags mf;
  server::ServerOptions o;
  double max_body_mb = 32, image_cache_mb = 256;
  app.add_option("--host", o.host, "address to listen on (127.0.0.1: this machine only)")->capture_default_str();
  // Checked here: the socket layer would silently take 99999 modulo 65536.
  app.add_option("--port", o.port, "TCP port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  AddModelFlags(app, &mf);
  app.add_option("--parallel", o.parallel, "sequences decoded together (continuous batching)")
      ->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--queue", o.queue, "requests that may wait for a slot; beyond: 429")
      ->check(CLI::Range(0, 100000))->capture_default_str();
  app.add_option("--api-key", o.api_key, "require 'Authorization: Bearer KEY' on /v1/*");
  app.add_option("--allow-local-files", o.allow_local_dir,
                 "let image_url name files inside this folder (file:///path or a path)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--cors", o.cors_origin, "send Access-Control-Allow-Origin: ORIGIN (e.g. '*')");
  app.add_option("--max-body-mb", max_body_mb, "largest request body in MiB (413 beyond)")
      ->check(CLI::Range(0.001, 4096.0))->capture_default_str();
  app.add_option("--max-images", o.max_images, "images per request (422 beyond)")
      ->check(CLI::Range(0, 1000))->capture_default_str();
  app.add_option("--max-image-pixels", o.max_image_pixels, "largest decoded width*height (413 beyond)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens_cap, "largest max_tokens a request may ask for (400 beyond)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "seconds a request may take, queue included (then 503)")
      ->check(CLI::Range(0.001, 1e7))->capture_default_str();
  app.add_option("--image-cache-mb", image_cache_mb, "image-feature cache budget in MiB (0: off)")
      ->check(CLI::Range(0.0, 1e6))->capture_default_str();
  app.add_option("--http-threads", o.http_threads, "HTTP worker threads (0: parallel + queue + 8)")
      ->check(CLI::Range(0, 4096));
  bool quiet = false;
  app.add_flag("--quiet", quiet, "no per-request log lines on stderr");
  if (std::optional<int> rc = ParseFlags(app, argc, argv)) return *rc;
  o.max_body_bytes = static_cast<int64_t>(max_body_mb * 1024 * 1024);
  o.image_cache_bytes = static_cast<int64_t>(image_cache_mb * 1024 * 1024);
  o.log_requests = !quiet;

  // SIGINT/SIGTERM are taken by this thread only (sigtimedwait below), never by the server's threads.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  server::InferenceServer srv(o);
  auto port = srv.Start();
  if (!port.ok()) {
    std::fprintf(stderr, "idefics serve: %s\n", port.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "idefics serve: listening on http://%s:%d (loading %s)\n", o.host.c_str(), *port,
               mf.model.c_str());
  std::atomic<int> load_state{0};  // 0 loading, 1 ready, 2 failed
  const EngineOptions eo = ToEngineOptions(mf);
  const auto t0 = std::time(nullptr);
  srv.LoadInBackground([eo] { return server::LoadEngineBackend(eo); },
                       [&](const Status& st) {
                         if (st.ok()) {
                           std::fprintf(stderr, "idefics serve: model loaded in %llds; ready (parallel %d)\n",
                                        static_cast<long long>(std::time(nullptr) - t0), o.parallel);
                         } else {
                           std::fprintf(stderr, "idefics serve: cannot load the model: %s\n", st.ToString().c_str());
                         }
                         load_state = st.ok() ? 1 : 2;
                       });
  timespec tick{0, 200 * 1000 * 1000};
  int sig = 0;
  while (load_state != 2 && (sig = sigtimedwait(&stop_signals, nullptr, &tick)) < 0) {
  }
  if (sig > 0) std::fprintf(stderr, "idefics serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  srv.Stop();
  return load_state == 2 ? 1 : 0;
}

}  // namespace idefics::cli
