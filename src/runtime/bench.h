// `idefics bench`: end-to-end timings of the model (vision encoder, connector, prefill, decode) on a real or
// synthetic folder, set against the machine's measured bandwidth / peak FLOPS. Mirrors no reference class.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "idefics/status.h"
#include "io/model_config.h"

namespace idefics {

struct BenchOptions {
  std::string model_dir;       // a real folder, or empty with `synthetic`
  std::string synthetic;       // "idefics2-8b" or "tiny" (random weights, written to a temp folder)
  int64_t text_layers = -1;    // synthetic only: decoder depth (-1: the preset's, reduced if RAM is short)
  int64_t vision_layers = -1;  // synthetic only: vision depth (-1: the preset's)
  // f32 | bf16 | f16 | q8_0 | q4_0 (storage of the Linear matrices), or auto: the format `idefics quantize`
  // wrote the folder in, else bf16.
  std::string weights_dtype = "auto";
  int bf16_dot = -1;  // -1 auto (on for non-f32 weights), 0 off, 1 on: vdpbf16ps GEMM for large M
  bool pack_image_weights = false;
  bool no_mmap = false;  // ModelLoadOptions::no_mmap (the copy counts in the load time)  // ModelLoadOptions::pack_image_weights (packing timed apart, as load)
  int threads = 0;    // 0: physical cores
  int64_t image_w = 980, image_h = 980;
  bool split = false;  // also time the 4 crops + global image of do_image_splitting
  std::vector<int64_t> prompt_lengths = {128, 512};
  int64_t decode_tokens = 32;
  int repeat = 1;      // best of N for each measurement
  bool probes = true;  // measure bandwidth / peak GFLOPS
  uint64_t seed = 1234;
};

// FLOPs (2 per multiply-add) and bytes of the model's passes, computed analytically from the config.
// Vision: patch embedding + every layer for one image of nb_h x nb_w patches.
double VisionFlops(const Idefics2Config& c, int64_t nb_h, int64_t nb_w);
// Connector = SwiGLU modality projection of the n_patches vision rows + perceiver resampler.
double ProjectionFlops(const Idefics2Config& c, int64_t n_patches);
double PerceiverFlops(const Idefics2Config& c, int64_t n_patches);
double ConnectorFlops(const Idefics2Config& c, int64_t n_patches);
// Matrix products + attention of n new tokens after `past` cached tokens, plus lm_head for the last one.
double PrefillFlops(const Idefics2Config& c, int64_t past, int64_t n);
// Bytes one decode step reads: every decoder matrix and lm_head in `bytes_per_weight`, plus the KV cache
// (float32) of `context` tokens.
double DecodeBytes(const Idefics2Config& c, double bytes_per_weight, int64_t context);
// Parameters of one decoder layer's matrices.
double TextLayerParams(const TextConfig& t);
// Resident weight bytes with every matrix (and lm_head) at `bytes_per_weight`.
double WeightBytesEstimate(const Idefics2Config& c, double bytes_per_weight);

// Runs the benchmark and returns the report as JSON text (pretty printed); `table` (if not null) receives the
// readable table. `log` (may be empty) gets progress lines.
StatusOr<std::string> RunBenchmark(const BenchOptions& opts, std::string* table,
                                   void (*log)(const std::string& line) = nullptr);

}  // namespace idefics
