// idefics inspect: print a model folder's parsed configuration, tensors, parameters, dtypes and shards,
// and whether the checkpoint matches the configuration — a quick sanity check before loading.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/parse_flags.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/weight_registry.h"

namespace idefics::cli {

namespace {

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

}  // namespace

int RunInspect(int argc, char** argv) {
  CLI::App app("Print a model folder's configuration, tensors, parameters, dtypes and shards", "idefics inspect");
  std::string dir;
  bool as_json = false;
  app.add_option("--model", dir, "hub model folder (config.json, *.safetensors, tokenizer files)")->required();
  app.add_flag("--json", as_json, "print one JSON object instead of text");
  if (std::optional<int> rc = ParseFlags(app, argc, argv)) return *rc;

  auto folder = ModelFolder::Load(dir);
  if (!folder.ok()) {
    std::fprintf(stderr, "idefics inspect: %s\n", folder.status().ToString().c_str());
    return 1;
  }
  auto store = TensorStore::OpenFolder(dir);
  if (!store.ok()) {
    std::fprintf(stderr, "idefics inspect: %s\n", store.status().ToString().c_str());
    return 1;
  }
  const Idefics2Config& c = folder->config;
  const auto specs = DeclareIdefics2Weights(c);
  const Status check = CheckWeights(**store, specs);

  int64_t params = 0;
  uint64_t bytes = 0;
  std::map<std::string, int64_t> dtype_counts;
  for (const TensorInfo* t : (*store)->All()) {
    bytes += t->nbytes;
    // Quantized matrices (`idefics quantize`) count their logical [rows, cols] and show their block format.
    auto q = FindQuantizedLayout(**store, *t);
    if (q.ok() && q->has_value()) {
      params += (**q).rows * (**q).cols;
      dtype_counts[WeightFormatName((**q).format)]++;
      continue;
    }
    params += t->numel();
    dtype_counts[std::string(DTypeName(t->dtype))]++;
  }
  const std::string quant = StoreQuantFormat(**store);
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& f : (*store)->files()) {
    uint64_t fb = 0;
    for (const TensorInfo& t : f->tensors()) fb += t.nbytes;
    shards.push_back({{"file", std::filesystem::path(f->path()).filename().string()},
                      {"tensors", f->tensors().size()}, {"bytes", fb}});
  }
  const auto& v = c.vision;
  const auto& p = c.perceiver;
  const auto& t = c.text;
  nlohmann::json j = {
      {"model", dir},
      {"vision", {{"hidden_size", v.hidden_size}, {"intermediate_size", v.intermediate_size},
                  {"num_hidden_layers", v.num_hidden_layers}, {"num_attention_heads", v.num_attention_heads},
                  {"image_size", v.image_size}, {"patch_size", v.patch_size}, {"layer_norm_eps", v.layer_norm_eps},
                  {"hidden_act", v.hidden_act}}},
      {"perceiver", {{"hidden_size", p.hidden_size}, {"resampler_n_latents", p.resampler_n_latents},
                     {"resampler_depth", p.resampler_depth}, {"resampler_n_heads", p.resampler_n_heads},
                     {"resampler_head_dim", p.resampler_head_dim}, {"num_key_value_heads", p.num_key_value_heads},
                     {"rms_norm_eps", p.rms_norm_eps}}},
      {"text", {{"vocab_size", t.vocab_size}, {"hidden_size", t.hidden_size},
                {"intermediate_size", t.intermediate_size}, {"num_hidden_layers", t.num_hidden_layers},
                {"num_attention_heads", t.num_attention_heads}, {"num_key_value_heads", t.num_key_value_heads},
                {"head_dim", t.head_dim}, {"rms_norm_eps", t.rms_norm_eps}, {"rope_theta", t.rope_theta},
                {"sliding_window", t.sliding_window ? nlohmann::json(*t.sliding_window) : nlohmann::json()},
                {"max_position_embeddings", t.max_position_embeddings}}},
      {"image_token_id", c.image_token_id},
      {"image_seq_len", folder->processor.image_seq_len},
      {"do_image_splitting", folder->preprocessor.do_image_splitting},
      {"image_size_range", {folder->preprocessor.shortest_edge, folder->preprocessor.longest_edge}},
      {"eos_token_ids", folder->generation.eos_token_ids},
      {"has_chat_template", !folder->processor.chat_template.empty()},
      {"tensors", (*store)->size()},
      {"parameters", params},
      {"bytes", bytes},
      {"dtypes", dtype_counts},
      {"quantized", quant.empty() ? nlohmann::json() : nlohmann::json(quant)},
      {"shards", shards},
      {"expected_tensors", specs.size()},
      {"expected_parameters", CountParameters(specs)},
      {"check", check.ok() ? "ok" : check.message()},
  };
  if (as_json) {
    std::printf("%s\n", j.dump().c_str());
    return check.ok() ? 0 : 1;
  }
  std::printf("model folder   %s\n", dir.c_str());
  std::printf("vision         %lld layers, hidden %lld, MLP %lld, %lld heads, patch %lld, image %lld (%lldx%lld positions)\n",
              (long long)v.num_hidden_layers, (long long)v.hidden_size, (long long)v.intermediate_size,
              (long long)v.num_attention_heads, (long long)v.patch_size, (long long)v.image_size,
              (long long)v.num_patches_per_side(), (long long)v.num_patches_per_side());
  std::printf("perceiver      %lld latents, depth %lld, %lld heads x %lld (%lld kv heads), rms eps %g\n",
              (long long)p.resampler_n_latents, (long long)p.resampler_depth, (long long)p.resampler_n_heads,
              (long long)p.resampler_head_dim, (long long)p.num_key_value_heads, p.rms_norm_eps);
  std::printf("text (mistral) %lld layers, hidden %lld, MLP %lld, %lld heads / %lld kv heads x %lld, vocab %lld\n",
              (long long)t.num_hidden_layers, (long long)t.hidden_size, (long long)t.intermediate_size,
              (long long)t.num_attention_heads, (long long)t.num_key_value_heads, (long long)t.head_dim,
              (long long)t.vocab_size);
  std::printf("               rope theta %g, rms eps %g, sliding window %s, max positions %lld\n", t.rope_theta,
              t.rms_norm_eps, t.sliding_window ? std::to_string(*t.sliding_window).c_str() : "none",
              (long long)t.max_position_embeddings);
  std::printf("processor      image_seq_len %lld, splitting %s, sizes %lld..%lld, chat template %s\n",
              (long long)folder->processor.image_seq_len, folder->preprocessor.do_image_splitting ? "on" : "off",
              (long long)folder->preprocessor.shortest_edge, (long long)folder->preprocessor.longest_edge,
              folder->processor.chat_template.empty() ? "absent" : "present");
  std::printf("image token    %lld\n", (long long)c.image_token_id);
  std::printf("tensors        %zu (expected %zu)\n", (*store)->size(), specs.size());
  std::printf("parameters     %lld (expected %lld)\n", (long long)params, (long long)CountParameters(specs));
  std::printf("bytes          %llu (%s)\n", (unsigned long long)bytes, HumanBytes(static_cast<double>(bytes)).c_str());
  std::printf("dtypes        ");
  for (const auto& [name, n] : dtype_counts) std::printf(" %s: %lld", name.c_str(), (long long)n);
  if (!quant.empty()) std::printf("\nconverted      by idefics quantize to %s (docs/quantization.md)", quant.c_str());
  std::printf("\nshards\n");
  for (const auto& s : shards)
    std::printf("  %-36s %5d tensors  %s\n", s["file"].get<std::string>().c_str(), s["tensors"].get<int>(),
                HumanBytes(s["bytes"].get<double>()).c_str());
  std::printf("check          %s\n", check.ok() ? "ok: every tensor present with the expected shape" : check.message().c_str());
  return check.ok() ? 0 : 1;
}

}  // namespace idefics::cli
