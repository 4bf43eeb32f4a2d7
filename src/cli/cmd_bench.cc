// idefics bench: end-to-end timings (vision, connector, prefill, decode) on a real or synthetic model, as a
// table or JSON. Flag parsing only; the measurements live in runtime/bench.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "cli/parse_flags.h"
#include "runtime/bench.h"

namespace idefics::cli {
namespace {

bool ParseSize(const std::string& s, int64_t* w, int64_t* h) {
  long long a = 0, b = 0;
  char x = 0, extra = 0;
  if (std::sscanf(s.c_str(), "%lld%c%lld%c", &a, &x, &b, &extra) != 3 || (x != 'x' && x != 'X')) return false;
  *w = a;
  *h = b;
  return true;
}

bool ParseLengths(const std::string& s, std::vector<int64_t>* out) {
  out->clear();
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || v < 1) return false;
    out->push_back(v);
  }
  return true;
}

void LogLine(const std::string& s) {
  std::fprintf(stderr, "%s\n", s.c_str());
}

}  // namespace

int RunBench(int argc, char** argv) {
  CLI::App app(
      "Benchmark the model end to end (vision encoder, connector, prefill, decode) against the "
      "machine's measured memory bandwidth and peak FLOPS",
      "idefics bench");
  BenchOptions o;
  std::string image_size = "980x980", lengths = "128,512", bf16_dot = "auto";
  bool as_json = false, no_probes = false;
  app.add_option("--model", o.model_dir, "model folder (config.json + safetensors)");
  app.add_option("--synthetic", o.synthetic, "random weights at real dimensions: idefics2-8b, or tiny");
  app.add_option(
         "--text-layers", o.text_layers,
         "synthetic: decoder layers (default 32, fewer when memory is short; figures are extrapolated)")
      ->check(IntegerIn(1, 1024));
  app.add_option("--vision-layers", o.vision_layers, "synthetic: vision encoder layers (default 27)")
      ->check(IntegerIn(1, 1024));
  app.add_option("--weights-dtype", o.weights_dtype, "auto (the format `idefics quantize` wrote the folder in, else bf16), f32, bf16, f16, q8_0 or q4_0")->capture_default_str();
  app.add_flag("--no-mmap", o.no_mmap,
               "copy the text decoder's weights into memory at load (faster decode; the copy counts as load)");
  app.add_flag("--pack-image-weights", o.pack_image_weights,
               "lay out the vision/connector weights once as bf16 GEMM panels (timed apart, like the load)");
  app.add_option(
         "--bf16-dot", bf16_dot,
         "auto (on unless f32), on, off: bf16 dot products in large GEMMs (int8 for q8_0/q4_0 matrices)")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads (0: physical cores)")
      ->check(IntegerIn(0, kMaxThreads))
      ->capture_default_str();
  app.add_option("--image-size", image_size, "synthetic image WxH (at most 980x980)")->capture_default_str();
  app.add_flag("--split", o.split, "also time do_image_splitting (4 crops + the image)");
  app.add_option("--prompt-lengths", lengths, "comma-separated prefill lengths")->capture_default_str();
  app.add_option("--decode-tokens", o.decode_tokens, "decode steps after the longest prompt")
      ->capture_default_str();
  app.add_option("--repeat", o.repeat, "best of N runs for each stage")->capture_default_str();
  app.add_option("--seed", o.seed, "random seed")->capture_default_str();
  app.add_flag("--no-probes", no_probes,
               "skip the bandwidth / peak FLOPS probes (no fractions of the limits)");
  app.add_flag("--json", as_json, "print the report as JSON on stdout (progress and the table on stderr)");
  if (std::optional<int> rc = ParseFlags(app, argc, argv)) return *rc;
  if (!ParseSize(image_size, &o.image_w, &o.image_h)) {
    std::fprintf(stderr, "idefics bench: --image-size must look like 980x980 (got '%s')\n",
                 image_size.c_str());
    return 1;
  }
  if (!ParseLengths(lengths, &o.prompt_lengths)) {
    std::fprintf(stderr,
                 "idefics bench: --prompt-lengths must be positive integers like 128,512 (got '%s')\n",
                 lengths.c_str());
    return 1;
  }
  if (bf16_dot == "auto") {
    o.bf16_dot = -1;
  } else if (bf16_dot == "on") {
    o.bf16_dot = 1;
  } else if (bf16_dot == "off") {
    o.bf16_dot = 0;
  } else {
    std::fprintf(stderr, "idefics bench: --bf16-dot must be auto, on or off (got '%s')\n", bf16_dot.c_str());
    return 1;
  }
  o.probes = !no_probes;
  std::string table;
  StatusOr<std::string> report = RunBenchmark(o, &table, LogLine);
  if (!report.ok()) {
    std::fprintf(stderr, "idefics bench: %s\n", report.status().ToString().c_str());
    return 1;
  }
  if (as_json) {
    std::fputs(table.c_str(), stderr);  // the readable table too, out of the way of the JSON
    std::fputs((*report + "\n").c_str(), stdout);
  } else {
    std::fputs(table.c_str(), stdout);
  }
  return 0;
}

}  // namespace idefics::cli
