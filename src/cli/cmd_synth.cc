// idefics synth: write a random-weight Idefics2 folder at real (or reduced) dimensions for benchmarks.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/parse_flags.h"
#include "core/interrupt.h"
#include "io/synth.h"

namespace idefics::cli {

int RunSynth(int argc, char** argv) {
  CLI::App app("Write a random-weight model folder (no tokenizer) at real or reduced dimensions", "idefics synth");
  std::string out, dtype = "bf16";
  SynthOptions opts;
  app.add_option("--out", out, "output folder")->required();
  app.add_option("--preset", opts.preset, "idefics2-8b (real dimensions) or tiny")->capture_default_str();
  app.add_option("--dtype", dtype, "f32, bf16 or f16")->capture_default_str();
  app.add_option("--text-layers", opts.text_layers,
                 "decoder layers (default: the preset's, 32 for idefics2-8b)")
      ->check(IntegerIn(1, 1024));
  app.add_option("--vision-layers", opts.vision_layers, "vision encoder layers (default: the preset's)")
      ->check(IntegerIn(1, 1024));
  app.add_option("--seed", opts.seed, "random seed")->capture_default_str();
  if (std::optional<int> rc = ParseFlags(app, argc, argv)) return *rc;
  if (dtype == "f32") {
    opts.dtype = DType::kF32;
  } else if (dtype == "bf16") {
    opts.dtype = DType::kBF16;
  } else if (dtype == "f16") {
    opts.dtype = DType::kF16;
  } else {
    std::fprintf(stderr, "idefics synth: --dtype must be f32, bf16 or f16 (got '%s')\n", dtype.c_str());
    return 1;
  }
  CatchInterrupts();  // Ctrl-C stops at the next tensor and removes the partial file
  Status st = WriteSynthFolder(out, opts);
  if (!st.ok()) {
    std::fprintf(stderr, "idefics synth: %s\n", st.ToString().c_str());
    return st.code() == StatusCode::kCancelled ? 130 : 1;
  }
  std::fprintf(stderr, "wrote %s\n", out.c_str());
  return 0;
}

}  // namespace idefics::cli
