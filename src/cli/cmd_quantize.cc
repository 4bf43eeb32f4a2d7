// idefics quantize: converts a model folder to bf16 / f16 / q8_0 / q4_0 weights (a hub-style folder every
// command loads like the original). Parsing and reporting only; the conversion is model/quantize_folder.h.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/parse_flags.h"
#include "cli/run_flags.h"
#include "core/interrupt.h"
#include "core/thread_pool.h"
#include "model/quantize_folder.h"
#include "model/weight_formats.h"

namespace idefics::cli {

int RunQuantize(int argc, char** argv) {
  CLI::App app("Convert a model folder to bf16 / f16 / q8_0 / q4_0 weights", "idefics quantize");
  std::string in, out, type;
  bool force = false, quiet = false;
  int threads = 0;
  app.add_option("--model", in, "input hub model folder (config.json, *.safetensors, tokenizer files)")
      ->required();
  app.add_option("--out", out, "output folder (created; must not exist or be empty unless --force)")
      ->required();
  app.add_option("--type", type,
                 "bf16, f16, q8_0 or q4_0 (q8_0/q4_0: text decoder matrices in that format; vision encoder, "
                 "connector and lm_head q8_0; matrices with K % 32 != 0 bf16)")
      ->required();
  app.add_option("--threads", threads, "worker threads (default 0: the number of physical cores)")
      ->check(IntegerIn(0, kMaxThreads));
  app.add_flag("--force", force, "replace a non-empty output folder");
  app.add_flag("--quiet", quiet, "no progress on stderr");
  if (std::optional<int> rc = ParseFlags(app, argc, argv)) return *rc;
  auto fmt = ParseWeightFormat(type);
  if (!fmt.ok()) {
    std::fprintf(stderr, "idefics quantize: %s\n", fmt.status().ToString().c_str());
    return 1;
  }
  ThreadPool pool(threads);
  Progress progress(!quiet);
  QuantizeFolderOptions o;
  o.format = *fmt;
  o.force = force;
  o.pool = &pool;
  o.progress = [&](double f) { progress.Update("quantize", f); };
  const auto t0 = std::chrono::steady_clock::now();
  CatchInterrupts();  // Ctrl-C stops at the next tensor; the staging folder is removed
  auto r = QuantizeModelFolder(in, out, o);
  progress.Done();
  if (!r.ok()) {
    std::fprintf(stderr, "idefics quantize: %s\n", r.status().ToString().c_str());
    return r.status().code() == StatusCode::kCancelled ? 130 : 1;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s -> %s (%s): %.3f GB of tensors -> %.3f GB in %d file%s, %.1f s\n", in.c_str(), out.c_str(),
              type.c_str(), r->input_bytes / 1e9, r->output_bytes / 1e9, r->shards, r->shards == 1 ? "" : "s",
              s);
  return 0;
}

}  // namespace idefics::cli
