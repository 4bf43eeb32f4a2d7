// Flags shared by `idefics run` and `idefics chat` (see run_flags.h).
#include "cli/run_flags.h"

#include <unistd.h>

#include <cstdio>

#include "cli/parse_flags.h"

namespace idefics::cli {

void AddModelFlags(CLI::App& app, ModelFlags* f) {
  app.add_option("--model", f->model,
                 "hub model folder (config.json, *.safetensors, tokenizer and processor files)")
      ->required();
  app.add_option("--threads", f->threads, "worker threads (default 0: the number of physical cores)")
      ->check(IntegerIn(0, kMaxThreads));
  app.add_option("--weights-dtype", f->weights_dtype,
                 "storage of the weight matrices: f32 (exact), bf16 (half the memory), f16, q8_0, q4_0 (quantized at "
                 "load), or auto (default: f32, or the format `idefics quantize` wrote the folder in)");
  app.add_option(
         "--bf16-dot", f->bf16_dot,
         "auto|on (default): bf16 dot products for vision, connector and prefill when the weights are not "
         "f32 (int8 dot products for q8_0/q4_0 matrices); off: float32 arithmetic always (f32 weights "
         "always compute in float32)")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_flag("--no-mmap", f->no_mmap,
               "copy the text decoder's weights into memory at load instead of reading the mapped files "
               "(faster decode, slower load)");
  app.add_option("--ctx", f->ctx, "context limit in tokens (default 0: the model's max_position_embeddings)")
      ->check(IntegerIn(0, int64_t{1} << 31));
}

void AddSamplingFlags(CLI::App& app, SamplingFlags* f) {
  app.add_option("--max-tokens", f->max_tokens, "maximum number of new tokens (default 512)")
      ->check(IntegerIn(1, int64_t{1} << 31));
  app.add_option("--temperature", f->temperature,
                 "sampling temperature; > 0 enables sampling (default: greedy)")
      ->check(NumberIn(0.0, 1e6));
  app.add_option("--top-k", f->top_k, "sample from the k most likely tokens (enables sampling; 0 = off)")
      ->check(IntegerIn(0, INT32_MAX));
  app.add_option("--top-p", f->top_p, "nucleus sampling mass in (0, 1] (enables sampling)")
      ->check(NumberIn(0.0, 1.0, /*lo_open=*/true));
  app.add_option("--min-p", f->min_p, "drop tokens below min_p x the top probability (enables sampling)")
      ->check(NumberIn(0.0, 1.0));
  app.add_option("--repeat-penalty", f->repeat_penalty,
                 "repetition penalty over prompt + output, as transformers (1 = off, default)")
      ->check(NumberIn(0.0, 1e6, /*lo_open=*/true));
  app.add_option("--seed", f->seed, "random seed for sampling (default 0: runs are reproducible)")
      ->check(Unsigned64());
  app.add_flag("--greedy", f->greedy,
               "always pick the most likely token (the default unless sampling flags are given)");
  auto* split = app.add_flag("--split", f->split, "split each image into 4 crops + the whole image");
  auto* no_split = app.add_flag("--no-split", f->no_split, "do not split images");
  split->excludes(no_split);
  app.add_option("--stop", f->stop, "stop when this text is generated (not printed); repeatable");
}

SamplingParams ToSamplingParams(const SamplingFlags& f) {
  SamplingParams p;
  const bool wants_sampling = (f.temperature && *f.temperature > 0.0f) || f.top_k || f.top_p || f.min_p;
  p.greedy = f.greedy || !wants_sampling;
  if (f.temperature && *f.temperature > 0.0f) p.temperature = *f.temperature;
  if (f.top_k) p.top_k = *f.top_k;
  if (f.top_p) p.top_p = *f.top_p;
  if (f.min_p) p.min_p = *f.min_p;
  p.repetition_penalty = f.repeat_penalty;
  p.seed = f.seed;
  return p;
}

std::optional<bool> SplitOverride(const SamplingFlags& f) {
  if (f.split) return true;
  if (f.no_split) return false;
  return std::nullopt;
}

void ApplySamplingFlags(const SamplingFlags& f, GenerationRequest* req) {
  req->split = SplitOverride(f);
  req->sampling = ToSamplingParams(f);
  req->max_tokens = f.max_tokens;
  req->stop = f.stop;
}

Progress::Progress(bool enabled) : enabled_(enabled), tty_(enabled && isatty(STDERR_FILENO) != 0) {}

void Progress::Update(std::string_view stage, double fraction) {
  if (!enabled_) return;
  const char* label = stage == "load"       ? "loading weights"
                      : stage == "quantize" ? "converting weights"
                      : stage == "vision"   ? "encoding images"
                                            : nullptr;
  if (!label) return;  // prefill and other stages are quick enough to go unreported
  if (stage != stage_) {
    Done();
    stage_ = std::string(stage);
    last_percent_ = -1;
    finished_ = false;
  }
  if (finished_) return;  // a repeated final report
  const int percent = static_cast<int>(fraction * 100.0 + 0.5);
  if (!open_) {
    std::fprintf(stderr, "%s...", label);
    open_ = true;
  }
  // On a terminal the percentage is redrawn in place; in a log only the start and the end are written.
  if (tty_ && (stage == "load" || stage == "quantize") && percent != last_percent_) std::fprintf(stderr, "\r%s %3d%%", label, percent);
  last_percent_ = percent;
  if (fraction >= 1.0) {
    if (!tty_ || (stage != "load" && stage != "quantize")) std::fprintf(stderr, " done");
    finished_ = true;
    Done();
  }
  std::fflush(stderr);
}

void Progress::Done() {
  if (!open_) return;
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  open_ = false;
}

EngineOptions ToEngineOptions(const ModelFlags& f) {
  EngineOptions opts;
  opts.model_dir = f.model;
  opts.threads = f.threads;
  opts.weights_dtype = f.weights_dtype;
  opts.bf16_dot = f.bf16_dot;
  opts.no_mmap = f.no_mmap;
  opts.ctx = f.ctx;
  return opts;
}

std::unique_ptr<Engine> LoadEngineOrReport(const ModelFlags& f, Progress* progress, const char* cmd) {
  EngineOptions opts = ToEngineOptions(f);
  opts.progress = [progress](std::string_view stage, double fraction) { progress->Update(stage, fraction); };
  auto engine = Engine::Load(opts);
  progress->Done();
  if (!engine.ok()) {
    std::fprintf(stderr, "%s: %s\n", cmd, engine.status().ToString().c_str());
    return nullptr;
  }
  return std::move(engine).value();
}

}  // namespace idefics::cli
