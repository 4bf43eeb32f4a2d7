// Flags shared by `idefics run`, `chat` and `serve`: model loading (folder, threads, weights dtype, context)
// and sampling; plus the stderr progress display. Parsing and formatting only.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "idefics/engine.h"

namespace idefics::cli {

struct ModelFlags {
  std::string model;
  int threads = 0;
  std::string weights_dtype = "auto";
  std::string bf16_dot = "auto";
  bool no_mmap = false;
  int64_t ctx = 0;
};

struct SamplingFlags {
  std::optional<float> temperature, top_p, min_p;
  std::optional<int32_t> top_k;
  float repeat_penalty = 1.0f;
  uint64_t seed = 0;
  bool greedy = false;
  int64_t max_tokens = 512;
  bool split = false, no_split = false;
  std::vector<std::string> stop;
};

void AddModelFlags(CLI::App& app, ModelFlags* f);
void AddSamplingFlags(CLI::App& app, SamplingFlags* f);

// The engine options the model flags ask for (no progress callback).
EngineOptions ToEngineOptions(const ModelFlags& f);

// Greedy unless sampling was asked for: --temperature > 0, --top-k, --top-p or --min-p (and not --greedy).
SamplingParams ToSamplingParams(const SamplingFlags& f);
// --split -> true, --no-split -> false, neither -> unset (the folder's preprocessor_config.json).
std::optional<bool> SplitOverride(const SamplingFlags& f);
// Sets req's split, sampling, max_tokens and stop from the flags.
void ApplySamplingFlags(const SamplingFlags& f, GenerationRequest* req);

// A one-line progress display on stderr ("loading weights  42%"), silent when !enabled.
class Progress {
 public:
  explicit Progress(bool enabled);
  ~Progress() { Done(); }
  void Update(std::string_view stage, double fraction);
  void Done();  // ends the current line

 private:
  bool enabled_;
  bool tty_;
  bool open_ = false;
  bool finished_ = false;
  int last_percent_ = -1;
  std::string stage_;
};

// Loads the engine; prints "<cmd>: <error>" on failure and returns null.
std::unique_ptr<Engine> LoadEngineOrReport(const ModelFlags& f, Progress* progress, const char* cmd);

}  // namespace idefics::cli
