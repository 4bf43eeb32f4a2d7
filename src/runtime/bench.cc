// `idefics bench`: loads a real or synthetic Idefics2 folder and times each stage on synthetic inputs, then
// relates every figure to the machine limits measured by the probes. Mirrors no reference class.
#include "runtime/bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/build_info.h"
#include "core/thread_pool.h"
#include "io/safetensors.h"
#include "io/synth.h"
#include "io/weight_registry.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "kernels/probe.h"
#include "model/idefics2_model.h"
#include "model/weight_formats.h"
#include "runtime/bench_gemv.h"

namespace idefics {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// A "Key: <n> kB" line of /proc/self/status or /proc/meminfo, in bytes (0 if absent).
double ProcKb(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::atof(line.c_str() + key.size() + 1) * 1024.0;
  return 0;
}

// User + system CPU time of the process in ms: on a shared machine the wall time includes waiting for a
// core, CPU time / threads approximates the wall time the stage would take with the cores to itself.
double CpuMs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

double PeakRssBytes() {
  const double hwm = ProcKb("/proc/self/status", "VmHWM");
  if (hwm > 0) return hwm;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) * 1024.0;  // Linux reports kB
}

std::string Iso8601Now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double BytesPerWeight(WeightFormat f) {
  return static_cast<double>(WeightRowBytes(f, 32)) / 32.0;
}

StatusOr<WeightFormat> ParseFormat(const std::string& s) {
  if (s == "f32") return WeightFormat::kF32;
  if (s == "bf16") return WeightFormat::kBF16;
  if (s == "f16") return WeightFormat::kF16;
  if (s == "q8_0") return WeightFormat::kQ8_0;
  if (s == "q4_0") return WeightFormat::kQ4_0;
  return InvalidArgument("--weights-dtype must be auto, f32, bf16, f16, q8_0 or q4_0 (got '" + s + "')");
}

// A smooth synthetic image in [-1, 1] (the normalized pixel range).
PixelImage SyntheticImage(int64_t w, int64_t h, uint64_t seed) {
  PixelImage img;
  img.width = static_cast<int>(w);
  img.height = static_cast<int>(h);
  img.chw.resize(static_cast<size_t>(3 * w * h));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (float& x : img.chw) x = u(rng);
  return img;
}

struct Timed {
  double vision_ms = 0, connector_ms = 0;  // connector = projection + perceiver
  double projection_ms = 0, perceiver_ms = 0;
  double vision_cpu_ms = 0, connector_cpu_ms = 0;
};

// Encodes `images`, timing the vision tower, the modality projection and the perceiver separately through
// the dump hook (the vision tower emits vision_last_hidden_state right before the connector starts, the
// connector connector_modality_projection between its two parts). Best of `repeat`.
StatusOr<Timed> TimeEncode(Idefics2Model& model, const std::vector<PixelImage>& images, int repeat) {
  Timed best{1e300, 1e300};
  for (int r = 0; r < repeat; ++r) {
    Timed t;
    Clock::time_point mark = Clock::now();
    double cpu_mark = CpuMs();
    // Adds the wall and CPU time since the previous stage ended to one stage's totals.
    auto lap = [&](double* wall_ms, double* cpu_ms) {
      const Clock::time_point now = Clock::now();
      const double cpu = CpuMs();
      *wall_ms += Ms(mark, now);
      *cpu_ms += cpu - cpu_mark;
      mark = now;
      cpu_mark = cpu;
    };
    DumpFn hook = [&](const std::string& name, const float*, const std::vector<int64_t>&) {
      if (name == "vision_last_hidden_state") {
        lap(&t.vision_ms, &t.vision_cpu_ms);
      } else if (name == "connector_modality_projection") {
        lap(&t.projection_ms, &t.connector_cpu_ms);
      } else if (name == "connector_output") {
        lap(&t.perceiver_ms, &t.connector_cpu_ms);
      }
    };
    ASSIGN_OR_RETURN(std::vector<float> features, model.EncodeImages(images, hook));
    (void)features;
    t.connector_ms = t.projection_ms + t.perceiver_ms;
    if (t.vision_ms + t.connector_ms < best.vision_ms + best.connector_ms) best = t;
  }
  return best;
}

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

}  // namespace

StatusOr<std::string> RunBenchmark(const BenchOptions& o, std::string* table,
                                   void (*log)(const std::string&)) {
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  if (o.model_dir.empty() == o.synthetic.empty())
    return InvalidArgument("give exactly one of --model DIR or --synthetic PRESET");
  const bool auto_dtype = o.weights_dtype.empty() || o.weights_dtype == "auto";
  WeightFormat fmt = WeightFormat::kBF16;
  if (!auto_dtype) {
    ASSIGN_OR_RETURN(fmt, ParseFormat(o.weights_dtype));
  } else if (!o.model_dir.empty()) {
    ASSIGN_OR_RETURN(std::unique_ptr<TensorStore> store, TensorStore::OpenFolder(o.model_dir));
    const std::string stored = StoreQuantFormat(*store);
    if (!stored.empty()) {
      ASSIGN_OR_RETURN(fmt, ParseFormat(stored));
    }
  }
  if (o.image_w < 14 || o.image_h < 14 || o.image_w > 980 || o.image_h > 980)
    return InvalidArgument("--image-size must be between 14x14 and 980x980 (got " +
                           std::to_string(o.image_w) + "x" + std::to_string(o.image_h) + ")");
  if (o.decode_tokens < 0) return InvalidArgument("--decode-tokens must be >= 0");
  if (o.repeat < 1) return InvalidArgument("--repeat must be >= 1");
  for (int64_t L : o.prompt_lengths)
    if (L < 1 || L > 32768)
      return InvalidArgument("prompt length " + std::to_string(L) + " is outside [1, 32768]");

  json report;
  report["date"] = Iso8601Now();
  report["commit"] = GitCommit();
  report["cpu"] = DescribeCpu();
  report["isa"] = IsaName(ActiveIsa());
  ThreadPool pool(o.threads);
  report["threads"] = pool.size();
  double loadavg[3] = {0, 0, 0};
  if (getloadavg(loadavg, 3) == 3) report["load_average_1min"] = loadavg[0];
  const double mem_avail = ProcKb("/proc/meminfo", "MemAvailable");
  report["mem_available_bytes"] = mem_avail;

  // The model folder: real, or synthetic random weights written to a temporary folder (deleted after load;
  // the mapping stays valid).
  std::string dir = o.model_dir;
  std::string tmp_dir;
  std::vector<std::string> notes;
  int64_t text_layers = o.text_layers;
  const int64_t full_text_layers = 32, full_vision_layers = 27;
  if (!o.synthetic.empty()) {
    SynthOptions so;
    so.preset = o.synthetic;
    so.text_layers = o.text_layers;
    so.vision_layers = o.vision_layers;
    so.seed = o.seed;
    so.dtype = fmt == WeightFormat::kF32 ? DType::kF32 : DType::kBF16;
    ASSIGN_OR_RETURN(std::string cfg_text, SynthConfigJson(so));
    ASSIGN_OR_RETURN(Idefics2Config cfg, Idefics2Config::Parse(cfg_text, "synthetic config"));
    // Keep the weights within ~70 % of the available memory: reduce the decoder depth if needed.
    const double bpw = BytesPerWeight(fmt == WeightFormat::kF32 ? WeightFormat::kF32 : fmt);
    const double est = WeightBytesEstimate(cfg, std::max(bpw, 2.0));
    if (o.text_layers < 0 && mem_avail > 0 && est > 0.7 * mem_avail) {
      const double per_layer = TextLayerParams(cfg.text) * std::max(bpw, 2.0);
      const double fixed = est - cfg.text.num_hidden_layers * per_layer;
      text_layers = std::max<int64_t>(1, static_cast<int64_t>((0.7 * mem_avail - fixed) / per_layer));
      text_layers = std::min<int64_t>(text_layers, cfg.text.num_hidden_layers);
      so.text_layers = text_layers;
      notes.push_back("only " + Fmt("%.1f", mem_avail / 1e9) +
                      " GB of memory available: decoder reduced to " + std::to_string(text_layers) +
                      " layers (figures extrapolated to " + std::to_string(cfg.text.num_hidden_layers) +
                      " below)");
      say("note: " + notes.back());
    }
    char tmpl[] = "/tmp/idefics-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return IoError("cannot create a temporary folder under /tmp");
    tmp_dir = dir = tmpl;
    if (fmt != WeightFormat::kF32 && fmt != WeightFormat::kBF16) {
      // Find out on a tiny folder whether the loader supports this format before writing gigabytes.
      SynthOptions tiny;
      tiny.preset = "tiny";
      Status st = WriteSynthFolder(dir, tiny);
      StatusOr<ModelFolder> tf = st.ok() ? ModelFolder::Load(dir) : StatusOr<ModelFolder>(st);
      if (tf.ok()) {
        ModelLoadOptions probe;
        probe.matrix_format = fmt;
        st = Idefics2Model::Load(*tf, probe).status();
      } else {
        st = tf.status();
      }
      if (!st.ok()) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        return st.WithContext("loading " + std::string(WeightFormatName(fmt)) + " weights");
      }
    }
    say("writing synthetic " + o.synthetic + " weights to " + dir + " ...");
    const Clock::time_point t0 = Clock::now();
    Status st = WriteSynthFolder(dir, so);
    report["synth_write_ms"] = Ms(t0, Clock::now());
    if (!st.ok()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      return st;
    }
  }
  auto cleanup = [&] {
    if (!tmp_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(tmp_dir, ec);
      tmp_dir.clear();
    }
  };

  StatusOr<ModelFolder> folder = ModelFolder::Load(dir);
  if (!folder.ok()) {
    cleanup();
    return folder.status();
  }
  const Idefics2Config& cfg = folder->config;
  const bool bf16_dot = o.bf16_dot < 0 ? fmt != WeightFormat::kF32 : o.bf16_dot == 1;
  ModelLoadOptions mo;
  mo.matrix_format = fmt;
  mo.pool = &pool;
  mo.matmul.bf16_dot = bf16_dot;
  mo.matmul.int8_dot = bf16_dot;  // the same fast-path switch as the engine's
  mo.pack_image_weights = o.pack_image_weights;
  mo.no_mmap = o.no_mmap;
  say("loading " + std::string(WeightFormatName(fmt)) + " weights ...");
  const Clock::time_point l0 = Clock::now();
  StatusOr<std::unique_ptr<Idefics2Model>> loaded = Idefics2Model::Load(*folder, mo);
  const double load_ms = Ms(l0, Clock::now());
  cleanup();
  RETURN_IF_ERROR(loaded.status().WithContext("loading " + std::string(WeightFormatName(fmt)) + " weights"));
  Idefics2Model& model = **loaded;

  json m;
  m["source"] = o.synthetic.empty() ? o.model_dir : "synthetic " + o.synthetic;
  m["weights_dtype"] = WeightFormatName(fmt);
  m["bf16_dot"] = bf16_dot;
  m["no_mmap"] = o.no_mmap;
  m["pack_image_weights"] = o.pack_image_weights;
  m["text_layers"] = cfg.text.num_hidden_layers;
  m["vision_layers"] = cfg.vision.num_hidden_layers;
  m["weight_bytes"] = static_cast<double>(model.weight_bytes());
  m["load_ms"] = load_ms;
  {
    // Done by the first image of a session; timed on its own so the stage figures are steady state.
    const Clock::time_point p0 = Clock::now();
    const size_t packed = model.PrepareImageWeights();
    m["image_weight_pack_ms"] = Ms(p0, Clock::now());
    m["image_weight_pack_bytes"] = static_cast<double>(packed);
  }
  report["model"] = m;

  // Machine limits: probed before the stages and again after the compute stages (peak FLOPS) and after decode
  // (bandwidth). A shared host's speed drifts by up to 2x within minutes, so every fraction is taken against
  // the best probe of the run — a figure is never flattered by a probe that happened to land on a slow spell.
  std::vector<double> bw_probes, peak32_probes, peak16_probes, int8_probes;
  auto probe_peaks = [&] {
    peak32_probes.push_back(MeasurePeakGflops(pool, false));
    peak16_probes.push_back(MeasurePeakGflops(pool, true));
    int8_probes.push_back(MeasurePeakInt8Gops(pool));
  };
  if (o.probes) {
    say("probing memory bandwidth and peak FLOPS ...");
    bw_probes.push_back(MeasureReadBandwidthGBs(pool));
    probe_peaks();
  }
  auto best_of = [](const std::vector<double>& v) {
    return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
  };
  auto frac = [&](double achieved, double limit) -> json {
    return limit > 0 ? json(achieved / limit) : json(nullptr);
  };

  // Vision + connector.
  const int64_t p = cfg.vision.patch_size;
  const int64_t nb_h = o.image_h / p, nb_w = o.image_w / p;
  json vis;
  {
    say("vision encoder + connector, one " + std::to_string(o.image_w) + "x" + std::to_string(o.image_h) +
        " image ...");
    std::vector<PixelImage> one = {SyntheticImage(o.image_w, o.image_h, o.seed)};
    ASSIGN_OR_RETURN(Timed t, TimeEncode(model, one, o.repeat));
    const double vf = VisionFlops(cfg, nb_h, nb_w), cf = ConnectorFlops(cfg, nb_h * nb_w);
    vis["no_split"] = {{"images", 1},
                       {"patches", nb_h * nb_w},
                       {"vision_ms", t.vision_ms},
                       {"vision_cpu_ms", t.vision_cpu_ms},
                       {"vision_gflops", vf / 1e9},
                       {"vision_fraction_of_peak", nullptr},
                       {"connector_ms", t.connector_ms},
                       {"connector_cpu_ms", t.connector_cpu_ms},
                       {"connector_gflops", cf / 1e9},
                       {"connector_fraction_of_peak", nullptr},
                       {"projection_ms", t.projection_ms},
                       {"projection_gflops", ProjectionFlops(cfg, nb_h * nb_w) / 1e9},
                       {"perceiver_ms", t.perceiver_ms},
                       {"perceiver_gflops", PerceiverFlops(cfg, nb_h * nb_w) / 1e9}};
  }
  if (o.split) {
    // do_image_splitting: four crops of half the size, then the whole image.
    say("vision encoder + connector, split (4 crops + the image) ...");
    const int64_t cw = o.image_w / 2, ch = o.image_h / 2;
    std::vector<PixelImage> imgs;
    for (int i = 0; i < 4; ++i) imgs.push_back(SyntheticImage(cw, ch, o.seed + 1 + i));
    imgs.push_back(SyntheticImage(o.image_w, o.image_h, o.seed));
    ASSIGN_OR_RETURN(Timed t, TimeEncode(model, imgs, o.repeat));
    const double vf = 4 * VisionFlops(cfg, ch / p, cw / p) + VisionFlops(cfg, nb_h, nb_w);
    // A connector cost over the four crops and the whole image.
    auto split_cost = [&](double (*cost)(const Idefics2Config&, int64_t)) {
      return 4 * cost(cfg, (ch / p) * (cw / p)) + cost(cfg, nb_h * nb_w);
    };
    vis["split"] = {{"images", 5},
                    {"vision_ms", t.vision_ms},
                    {"vision_gflops", vf / 1e9},
                    {"vision_fraction_of_peak", nullptr},
                    {"connector_ms", t.connector_ms},
                    {"connector_gflops", split_cost(ConnectorFlops) / 1e9},
                    {"connector_fraction_of_peak", nullptr},
                    {"projection_ms", t.projection_ms},
                    {"projection_gflops", split_cost(ProjectionFlops) / 1e9},
                    {"perceiver_ms", t.perceiver_ms},
                    {"perceiver_gflops", split_cost(PerceiverFlops) / 1e9}};
  }

  // Prefill at each prompt length (fresh cache each time), then decode after the longest.
  const int64_t V = cfg.text.vocab_size;
  std::mt19937_64 rng(o.seed);
  auto random_ids = [&](int64_t n) {
    std::vector<int32_t> ids(n);
    for (int32_t& id : ids) {
      do {
        id = static_cast<int32_t>(rng() % static_cast<uint64_t>(V));
      } while (id == cfg.image_token_id);
    }
    return ids;
  };
  std::vector<float> logits(static_cast<size_t>(V));
  json prefill = json::array();
  double first_prefill_ms = 0;
  int64_t longest = 0;
  for (int64_t L : o.prompt_lengths) longest = std::max(longest, L);
  {
    // Warm-up: one short prefill faults in every decoder weight page (mmapped folders) and sizes the scratch
    // buffers, so the first measured prompt length does not pay for it.
    say("warm-up prefill (16 tokens) ...");
    std::unique_ptr<KvCache> cache = model.NewCache(16);
    const std::vector<int32_t> ids = random_ids(16);
    RETURN_IF_ERROR(model.Forward(ids.data(), 16, nullptr, 0, *cache, logits.data(), false));
  }
  for (int64_t L : o.prompt_lengths) {
    say("prefill " + std::to_string(L) + " tokens ...");
    double best = 1e300, best_cpu = 0;
    for (int r = 0; r < o.repeat; ++r) {
      std::unique_ptr<KvCache> cache = model.NewCache(L + o.decode_tokens);
      const std::vector<int32_t> ids = random_ids(L);
      const Clock::time_point t0 = Clock::now();
      const double c0 = CpuMs();
      RETURN_IF_ERROR(model.Forward(ids.data(), L, nullptr, 0, *cache, logits.data(), false));
      const double ms = Ms(t0, Clock::now());
      if (ms < best) {
        best = ms;
        best_cpu = CpuMs() - c0;
      }
    }
    if (prefill.empty()) first_prefill_ms = best;
    const double f = PrefillFlops(cfg, 0, L);
    prefill.push_back({{"tokens", L},
                       {"ms", best},
                       {"cpu_ms", best_cpu},
                       {"tokens_per_s", L / (best / 1e3)},
                       {"gflops", f / 1e9},
                       {"fraction_of_peak", nullptr}});
  }
  if (o.probes) {
    say("probing peak FLOPS again ...");
    probe_peaks();
  }

  json dec;
  double peak_rss = 0;
  if (o.decode_tokens > 0) {
    const int64_t ctx0 = o.prompt_lengths.empty() ? 1 : longest;
    say("decode " + std::to_string(o.decode_tokens) + " tokens after " + std::to_string(ctx0) + " ...");
    std::unique_ptr<KvCache> cache = model.NewCache(ctx0 + o.decode_tokens);
    const std::vector<int32_t> ids = random_ids(ctx0);
    RETURN_IF_ERROR(model.Forward(ids.data(), ctx0, nullptr, 0, *cache, logits.data(), false));
    int32_t tok = random_ids(1)[0];
    GemvStats gemv;  // where the decode steps' time goes, by matrix shape
    // Installed for the decode loop only, and taken down on every way out of it (an error returns early).
    struct Collecting {
      GemvStats* outer;
      ~Collecting() { SetGemvStats(outer); }
    } collecting{SetGemvStats(&gemv)};
    const Clock::time_point t0 = Clock::now();
    const double c0 = CpuMs();
    for (int64_t i = 0; i < o.decode_tokens; ++i) {
      RETURN_IF_ERROR(model.Forward(&tok, 1, nullptr, 0, *cache, logits.data(), false));
      // Greedy next token (keeps the loop honest without a sampler).
      tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      if (tok == cfg.image_token_id) tok = 1;
    }
    const double ms = Ms(t0, Clock::now());
    const double cpu_ms = CpuMs() - c0;
    const double per_tok_s = ms / 1e3 / o.decode_tokens;
    const double bytes = DecodeBytes(cfg, BytesPerWeight(fmt), ctx0 + o.decode_tokens / 2);
    dec = {{"tokens", o.decode_tokens},
           {"context", ctx0},
           {"ms", ms},
           {"cpu_ms", cpu_ms},
           {"tokens_per_s", 1.0 / per_tok_s},
           {"bytes_per_token", bytes},
           {"GBs", bytes / per_tok_s / 1e9},
           {"fraction_of_bandwidth", nullptr},
           {"gemv", GemvBreakdownJson(gemv, o.decode_tokens, ms)}};
    // The model's peak, read before the bandwidth probe's own 256 MiB buffer could raise it.
    peak_rss = PeakRssBytes();
    if (o.probes) {
      say("probing memory bandwidth again ...");
      bw_probes.push_back(MeasureReadBandwidthGBs(pool));
    }
  }
  // Every fraction against the best probe of the run; the GEMMs' arithmetic is vdpbf16ps when bf16_dot, else
  // float32 FMA.
  const double bw = best_of(bw_probes), peak32 = best_of(peak32_probes), peak16 = best_of(peak16_probes);
  const double peak8 = best_of(int8_probes);
  const double peak = bf16_dot ? peak16 : peak32;
  if (o.probes) {
    report["machine"] = {{"read_bandwidth_GBs", bw},
                         {"peak_gflops_f32", peak32},
                         {"peak_gflops_bf16", peak16},
                         {"read_bandwidth_probes_GBs", bw_probes},
                         {"peak_gflops_f32_probes", peak32_probes},
                         {"peak_gflops_bf16_probes", peak16_probes},
                         {"peak_gops_int8", peak8},
                         {"peak_gops_int8_probes", int8_probes},
                         {"method",
                          "best of the probes run before the stages, after prefill (peak FLOPS) and "
                          "after decode (bandwidth); every fraction is against these best values"}};
  }
  for (auto& [mode, e] : vis.items()) {
    (void)mode;
    e["vision_fraction_of_peak"] =
        frac(e["vision_gflops"].get<double>() * 1e3 / e["vision_ms"].get<double>(), peak);
    for (const std::string part : {"connector", "projection", "perceiver"})
      e[part + "_fraction_of_peak"] =
          frac(e[part + "_gflops"].get<double>() * 1e3 / e[part + "_ms"].get<double>(), peak);
  }
  // q8_0/q4_0 decoders prefill on the int8 GEMM: also against its own ceiling (twice the bf16 one).
  const bool int8_prefill = bf16_dot && IsBlockFormat(fmt) && peak8 > 0;
  for (json& e : prefill) {
    const double rate = e["gflops"].get<double>() * 1e3 / e["ms"].get<double>();
    e["fraction_of_peak"] = frac(rate, peak);
    if (int8_prefill) e["fraction_of_int8_peak"] = frac(rate, peak8);
  }
  report["vision"] = vis;
  report["prefill"] = prefill;
  if (!dec.is_null()) {
    dec["fraction_of_bandwidth"] = frac(dec["GBs"].get<double>(), bw);
    SetGemvFractions(&dec["gemv"], bw);
    report["decode"] = dec;
  }
  const double ttft = vis["no_split"]["vision_ms"].get<double>() +
                      vis["no_split"]["connector_ms"].get<double>() + first_prefill_ms;
  report["time_to_first_token_ms"] = ttft;
  report["time_to_first_token_method"] =
      "vision + connector (one image, no split) + prefill of the first prompt length";
  report["peak_rss_bytes"] = peak_rss > 0 ? peak_rss : PeakRssBytes();

  // Extrapolation to the full depth: the added layers are assumed to run at the rate measured for the
  // present ones (FLOP/s for vision/prefill, bytes/s for decode), so times scale with the analytic cost.
  const int64_t tl = cfg.text.num_hidden_layers, vl = cfg.vision.num_hidden_layers;
  const bool real_dims = cfg.text.hidden_size == 4096 && cfg.vision.hidden_size == 1152;
  json ex;
  if (real_dims && (tl < full_text_layers || vl < full_vision_layers)) {
    Idefics2Config full = cfg;
    full.text.num_hidden_layers = full_text_layers;
    full.vision.num_hidden_layers = full_vision_layers;
    ex["method"] =
        "time x (analytic cost at 32 text / 27 vision layers) / (analytic cost at the measured depth): the "
        "added layers run at the measured FLOP/s (vision, prefill) or bytes/s (decode)";
    const double vms = vis["no_split"]["vision_ms"].get<double>();
    ex["vision_ms"] = vms * VisionFlops(full, nb_h, nb_w) / VisionFlops(cfg, nb_h, nb_w);
    json pf = json::array();
    for (const json& e : prefill) {
      const int64_t L = e["tokens"].get<int64_t>();
      const double ms = e["ms"].get<double>() * PrefillFlops(full, 0, L) / PrefillFlops(cfg, 0, L);
      pf.push_back({{"tokens", L}, {"ms", ms}, {"tokens_per_s", L / (ms / 1e3)}});
    }
    ex["prefill"] = pf;
    if (!dec.is_null()) {
      const int64_t ctx = dec["context"].get<int64_t>() + o.decode_tokens / 2;
      const double s =
          DecodeBytes(full, BytesPerWeight(fmt), ctx) / DecodeBytes(cfg, BytesPerWeight(fmt), ctx);
      ex["decode_tokens_per_s"] = dec["tokens_per_s"].get<double>() / s;
      ex["weight_bytes"] = WeightBytesEstimate(full, BytesPerWeight(fmt));
    }
    const double pms = prefill.empty() ? 0 : pf[0]["ms"].get<double>();
    ex["time_to_first_token_ms"] =
        ex["vision_ms"].get<double>() + vis["no_split"]["connector_ms"].get<double>() + pms;
    report["extrapolated_full_depth"] = ex;
  }
  if (!notes.empty()) report["notes"] = notes;

  if (table) {
    std::ostringstream t;
    auto pct = [](const json& f) {
      return f.is_null() ? std::string("n/a") : Fmt("%.0f%%", 100 * f.get<double>());
    };
    t << "idefics bench  " << report["date"].get<std::string>() << "  commit " << GitCommit() << "\n";
    t << "cpu: " << report["cpu"].get<std::string>() << "\nthreads: " << pool.size()
      << Fmt("   load average: %.1f", loadavg[0]) << "\n";
    t << "model: " << m["source"].get<std::string>() << ", " << WeightFormatName(fmt)
      << (bf16_dot ? (IsBlockFormat(fmt) ? " (int8 dot products in the large-M products)"
                                         : " (bf16 dot products in the large-M products)")
                   : "")
      << (o.no_mmap ? ", --no-mmap" : "") << ", " << tl << " text / " << vl << " vision layers, "
      << Fmt("%.2f GB", model.weight_bytes() / 1e9) << Fmt(", load %.0f ms", load_ms)
      << (o.pack_image_weights ? Fmt(" (+ %.0f ms packing the image weights for the bf16 GEMM)",
                                     m["image_weight_pack_ms"].get<double>())
                               : "")
      << "\n";
    if (o.probes) {
      auto list = [](const std::vector<double>& v, const char* f) {
        std::string out;
        for (double x : v) out += (out.empty() ? "" : ", ") + Fmt(f, x);
        return out;
      };
      t << Fmt("machine: read %.1f GB/s", bw) << Fmt(", peak %.0f GFLOPS f32", peak32)
        << Fmt(" / %.0f GFLOPS bf16", peak16) << (peak8 > 0 ? Fmt(" / %.0f GOPS int8", peak8) : std::string())
        << " (best of the probes: read " << list(bw_probes, "%.1f") << "; bf16 "
        << list(peak16_probes, "%.0f") << ")\n";
    }
    t << "\nstage                                   time        rate                      of limit\n";
    auto row = [&](const std::string& name, double ms, const std::string& rate, const std::string& f) {
      char buf[160];
      std::snprintf(buf, sizeof(buf), "%-34s %9.1f ms  %-24s  %s\n", name.c_str(), ms, rate.c_str(),
                    f.c_str());
      t << buf;
    };
    for (const char* mode : {"no_split", "split"}) {
      if (!vis.contains(mode)) continue;
      const json& e = vis[mode];
      const std::string tag =
          std::string(" (") + (std::string(mode) == "split" ? "split, 5 images" : "1 image") + ")";
      row("vision encoder" + tag, e["vision_ms"],
          Fmt("%.0f GFLOPS", e["vision_gflops"].get<double>() / (e["vision_ms"].get<double>() / 1e3)),
          pct(e["vision_fraction_of_peak"]));
      for (const char* part : {"connector", "projection", "perceiver"}) {
        const std::string k = part, label = k == "connector" ? k + tag : "  " + k;
        row(label, e[k + "_ms"],
            Fmt("%.0f GFLOPS", e[k + "_gflops"].get<double>() / (e[k + "_ms"].get<double>() / 1e3)),
            pct(e[k + "_fraction_of_peak"]));
      }
    }
    for (const json& e : prefill)
      row("prefill " + std::to_string(e["tokens"].get<int64_t>()) + " tokens", e["ms"],
          Fmt("%.1f tok/s", e["tokens_per_s"].get<double>()), pct(e["fraction_of_peak"]));
    if (!dec.is_null())
      row("decode " + std::to_string(o.decode_tokens) + " tokens", dec["ms"],
          Fmt("%.2f tok/s", dec["tokens_per_s"].get<double>()) + Fmt(" %.1f GB/s", dec["GBs"].get<double>()),
          pct(dec["fraction_of_bandwidth"]));
    if (!dec.is_null())
      for (const json& g : dec["gemv"])
        row("  " + GemvShapeLabel(g), g["ms_per_token"].get<double>() * o.decode_tokens,
            Fmt("%.1f GB/s", g["GBs"].get<double>()) +
                Fmt(" (%.0f %%)", 100 * g["share_of_decode"].get<double>()),
            pct(g["fraction_of_bandwidth"]));
    row("time to first token", ttft, "", "");
    t << Fmt("peak RSS: %.2f GB\n", report["peak_rss_bytes"].get<double>() / 1e9);
    if (!ex.is_null()) {
      t << "\nextrapolated to 32 text / 27 vision layers (" << ex["method"].get<std::string>() << "):\n";
      t << Fmt("  vision encoder %.0f ms", ex["vision_ms"].get<double>());
      for (const json& e : ex["prefill"])
        t << ", prefill " << e["tokens"].get<int64_t>()
          << Fmt(": %.1f tok/s", e["tokens_per_s"].get<double>());
      if (ex.contains("decode_tokens_per_s"))
        t << Fmt(", decode %.2f tok/s", ex["decode_tokens_per_s"].get<double>());
      t << Fmt(", time to first token %.0f ms\n", ex["time_to_first_token_ms"].get<double>());
    }
    for (const std::string& n : notes) t << "note: " << n << "\n";
    *table = t.str();
  }
  return report.dump(2);
}

}  // namespace idefics
