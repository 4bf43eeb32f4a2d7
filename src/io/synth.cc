// Random-weight model folders (see synth.h). Values come from a counter-based generator seeded by the tensor
// name, so a folder is reproducible and tensors can be produced in any order.
#include "io/synth.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "core/output_file.h"
#include "io/safetensors.h"
#include "io/weight_registry.h"

namespace idefics {

namespace {

using json = nlohmann::json;

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t HashName(const std::string& s, uint64_t seed) {
  uint64_t h = seed ^ 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

Status WriteText(const std::filesystem::path& p, const std::string& text) {
  return WriteFileAtomic(p.string(), text.data(), text.size());
}

}  // namespace

StatusOr<std::string> SynthConfigJson(const SynthOptions& o) {
  json j;
  if (o.preset == "idefics2-8b") {
    j = json::parse(R"({"architectures":["Idefics2ForConditionalGeneration"],"image_token_id":32001,
      "model_type":"idefics2","perceiver_config":{"model_type":"idefics2"},
      "text_config":{"max_position_embeddings":32768,"model_type":"mistral","pad_token_id":0,"rms_norm_eps":1e-05,
                     "vocab_size":32003},
      "tie_word_embeddings":false,"torch_dtype":"float32","use_cache":true,
      "vision_config":{"hidden_size":1152,"image_size":980,"intermediate_size":4304,"model_type":"idefics2",
                       "num_attention_heads":16,"num_hidden_layers":27,"patch_size":14}})");
  } else if (o.preset == "tiny") {
    j = json::parse(R"({"architectures":["Idefics2ForConditionalGeneration"],"image_token_id":4001,
      "model_type":"idefics2","perceiver_config":{"model_type":"idefics2","resampler_n_latents":8,
        "resampler_depth":2,"resampler_n_heads":4,"resampler_head_dim":12,"num_key_value_heads":2},
      "text_config":{"model_type":"mistral","vocab_size":4003,"hidden_size":32,"intermediate_size":80,
        "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"rms_norm_eps":1e-05,
        "max_position_embeddings":4096,"pad_token_id":0},
      "tie_word_embeddings":false,"torch_dtype":"float32",
      "vision_config":{"hidden_size":32,"intermediate_size":72,"num_hidden_layers":2,"num_attention_heads":2,
        "image_size":980,"patch_size":14,"model_type":"idefics2"}})");
  } else {
    return InvalidArgument("unknown synthetic preset '" + o.preset + "' (idefics2-8b, tiny)");
  }
  if (o.text_layers >= 0) {
    if (o.text_layers < 1) return InvalidArgument("--text-layers must be at least 1");
    j["text_config"]["num_hidden_layers"] = o.text_layers;
  }
  if (o.vision_layers >= 0) {
    if (o.vision_layers < 1) return InvalidArgument("--vision-layers must be at least 1");
    j["vision_config"]["num_hidden_layers"] = o.vision_layers;
  }
  j["torch_dtype"] = o.dtype == DType::kF32 ? "float32" : o.dtype == DType::kBF16 ? "bfloat16" : "float16";
  j["idefics_synthetic"] = true;
  return j.dump(2);
}

Status WriteSynthFolder(const std::string& out_dir, const SynthOptions& o) {
  namespace fs = std::filesystem;
  if (o.dtype != DType::kF32 && o.dtype != DType::kBF16 && o.dtype != DType::kF16)
    return InvalidArgument("synthetic weights must be F32, BF16 or F16");
  ASSIGN_OR_RETURN(std::string cfg_text, SynthConfigJson(o));
  ASSIGN_OR_RETURN(Idefics2Config cfg, Idefics2Config::Parse(cfg_text, "synthetic config"));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return IoError(out_dir + ": cannot create folder: " + ec.message());
  const fs::path dir(out_dir);
  RETURN_IF_ERROR(WriteText(dir / "config.json", cfg_text));
  RETURN_IF_ERROR(WriteText(dir / "generation_config.json",
                            json{{"bos_token_id", 1}, {"eos_token_id", {2, cfg.image_token_id + 1}},
                                 {"pad_token_id", 0},
                                 {"bad_words_ids", {{cfg.image_token_id - 1}, {cfg.image_token_id}}}}
                                .dump(2)));
  RETURN_IF_ERROR(WriteText(dir / "preprocessor_config.json",
                            json{{"do_convert_rgb", true}, {"do_image_splitting", o.preset == "idefics2-8b"},
                                 {"do_normalize", true}, {"do_pad", true}, {"do_rescale", true},
                                 {"do_resize", true}, {"image_mean", {0.5, 0.5, 0.5}},
                                 {"image_std", {0.5, 0.5, 0.5}}, {"resample", 2},
                                 {"rescale_factor", 0.00392156862745098},
                                 {"size", {{"longest_edge", 980}, {"shortest_edge", 378}}}}
                                .dump(2)));
  RETURN_IF_ERROR(WriteText(dir / "processor_config.json",
                            json{{"image_seq_len", cfg.perceiver.resampler_n_latents}}.dump(2)));

  const auto specs = DeclareIdefics2Weights(cfg);
  std::vector<TensorToWrite> tensors;
  tensors.reserve(specs.size());
  for (const WeightSpec& s : specs) {
    TensorToWrite t;
    t.name = s.name;
    t.dtype = o.dtype;
    t.shape = s.shape;
    const bool is_norm = s.name.find("norm") != std::string::npos && s.shape.size() == 1;
    const bool is_bias = s.name.size() > 5 && s.name.compare(s.name.size() - 5, 5, ".bias") == 0;
    const int64_t fan_in = s.shape.size() >= 2 ? s.shape.back() * (s.shape.size() == 4 ? s.shape[2] * s.shape[1] : 1)
                                               : 1;
    // Uniform(-a, a) has variance a^2/3.
    double center = 0, half = std::sqrt(3.0);
    if (is_norm) {
      center = 1.0, half = 0.5;
    } else if (is_bias) {
      half = 0.01 * std::sqrt(3.0);
    } else if (s.is_matrix || s.shape.size() == 4) {
      half = std::sqrt(3.0 / static_cast<double>(fan_in));
    }
    const uint64_t seed = HashName(s.name, o.seed);
    const DType dt = o.dtype;
    t.fill = [seed, center, half, dt](uint8_t* dst, size_t nbytes) -> Status {
      const size_t n = nbytes / DTypeSize(dt);
      for (size_t i = 0; i < n; ++i) {
        const uint64_t r = SplitMix(seed + i);
        const float u = static_cast<float>(center + half * ((static_cast<double>(r >> 11) * 0x1.0p-53) * 2 - 1));
        if (dt == DType::kF32) {
          std::memcpy(dst + 4 * i, &u, 4);
        } else {
          const uint16_t h = dt == DType::kBF16 ? F32ToBf16(u) : F32ToF16(u);
          std::memcpy(dst + 2 * i, &h, 2);
        }
      }
      return Status::Ok();
    };
    tensors.push_back(std::move(t));
  }
  return WriteSafetensors((dir / "model.safetensors").string(), tensors,
                          {{"format", "pt"}, {"idefics_synthetic", "1"}});
}

}  // namespace idefics
