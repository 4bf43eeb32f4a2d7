// Parsing of config.json, generation_config.json, preprocessor_config.json, processor_config.json and
// chat_template.json with transformers' defaults for absent fields.
#include "io/model_config.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"

namespace idefics {

namespace {

using json = nlohmann::json;

// Reads optional typed fields; a present field of the wrong type is an error naming file and field.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  template <typename T>
  void Get(const char* key, T* out) {
    if (!status_.ok() || !j_.contains(key) || j_[key].is_null()) return;
    const json& v = j_[key];
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) return Fail(key, "a boolean");
      *out = v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) return Fail(key, "an integer");
      *out = v.get<T>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) return Fail(key, "a number");
      *out = v.get<T>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) return Fail(key, "a string");
      *out = v.get<std::string>();
    } else if constexpr (std::is_same_v<T, std::optional<int64_t>>) {
      if (!v.is_number_integer()) return Fail(key, "an integer or null");
      *out = v.get<int64_t>();
    } else if constexpr (std::is_same_v<T, std::optional<double>>) {
      if (!v.is_number()) return Fail(key, "a number");
      *out = v.get<double>();
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      if (!v.is_array()) return Fail(key, "an array of numbers");
      out->clear();
      for (const json& e : v) {
        if (!e.is_number()) return Fail(key, "an array of numbers");
        out->push_back(e.get<double>());
      }
    }
  }
  bool Has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  Status status() const { return status_; }

 private:
  void Fail(const char* key, const char* what) {
    status_ = InvalidArgument(where_ + ": field '" + key + "' must be " + what);
  }
  const json& j_;
  std::string where_;
  Status status_;
};

// text as a JSON object; errors start with `where`.
StatusOr<json> ParseObject(const std::string& text, const std::string& where) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return InvalidArgument(where + ": not valid JSON");
  if (!j.is_object()) return InvalidArgument(where + ": not a JSON object");
  return j;
}

// The JSON object in the file at path; nullopt when there is no such file (every config file but
// config.json is optional).
StatusOr<std::optional<json>> ReadOptionalJson(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<json>();
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  ASSIGN_OR_RETURN(json j, ParseObject(text, path));
  return std::optional<json>(std::move(j));
}

// j[key] when it is present and not null, else nullptr; any other non-object is the error `not_object`.
StatusOr<const json*> OptionalObject(const json& j, const char* key, const std::string& not_object) {
  if (!j.contains(key) || j[key].is_null()) return static_cast<const json*>(nullptr);
  if (!j[key].is_object()) return InvalidArgument(not_object);
  return &j[key];
}

// Appends the integers of the JSON array a to out; false when an element is not an integer.
bool AppendInts(const json& a, std::vector<int64_t>* out) {
  for (const json& x : a) {
    if (!x.is_number_integer()) return false;
    out->push_back(x.get<int64_t>());
  }
  return true;
}

std::string Join(const std::string& dir, const char* file) { return (std::filesystem::path(dir) / file).string(); }

}  // namespace

StatusOr<Idefics2Config> Idefics2Config::Parse(const std::string& json_text, const std::string& where) {
  ASSIGN_OR_RETURN(const json j, ParseObject(json_text, where));
  Idefics2Config c;
  Reader top(j, where);
  top.Get("image_token_id", &c.image_token_id);
  top.Get("tie_word_embeddings", &c.tie_word_embeddings);
  top.Get("torch_dtype", &c.torch_dtype);
  RETURN_IF_ERROR(top.status());
  if (j.contains("model_type") && j["model_type"].is_string() && j["model_type"] != "idefics2")
    return InvalidArgument(where + ": model_type is '" + j["model_type"].get<std::string>() +
                           "', expected 'idefics2'");

  // vision_config
  ASSIGN_OR_RETURN(const json* vj,
                   OptionalObject(j, "vision_config", where + ": vision_config must be an object"));
  if (vj) {
    Reader r(*vj, where + ": vision_config");
    VisionConfig& v = c.vision;
    r.Get("hidden_size", &v.hidden_size);
    r.Get("intermediate_size", &v.intermediate_size);
    r.Get("num_hidden_layers", &v.num_hidden_layers);
    r.Get("num_attention_heads", &v.num_attention_heads);
    r.Get("num_channels", &v.num_channels);
    r.Get("image_size", &v.image_size);
    r.Get("patch_size", &v.patch_size);
    r.Get("hidden_act", &v.hidden_act);
    r.Get("layer_norm_eps", &v.layer_norm_eps);
    RETURN_IF_ERROR(r.status());
  }

  // text_config: Idefics2Config builds a MistralConfig; with no text_config at all it uses
  // max_position_embeddings 4096*8, rms_norm_eps 1e-5, pad_token_id 0.
  TextConfig& t = c.text;
  ASSIGN_OR_RETURN(const json* tjp,
                   OptionalObject(j, "text_config", where + ": text_config must be an object"));
  if (tjp) {
    const json& tj = *tjp;
    if (tj.contains("model_type") && tj["model_type"].is_string() && tj["model_type"] != "mistral")
      return Unimplemented(where + ": text_config.model_type '" + tj["model_type"].get<std::string>() +
                           "' is not supported (only 'mistral')");
    Reader r(tj, where + ": text_config");
    r.Get("vocab_size", &t.vocab_size);
    r.Get("hidden_size", &t.hidden_size);
    r.Get("intermediate_size", &t.intermediate_size);
    r.Get("num_hidden_layers", &t.num_hidden_layers);
    r.Get("num_attention_heads", &t.num_attention_heads);
    t.num_key_value_heads = 8;
    r.Get("num_key_value_heads", &t.num_key_value_heads);
    r.Get("head_dim", &t.head_dim);
    r.Get("hidden_act", &t.hidden_act);
    r.Get("max_position_embeddings", &t.max_position_embeddings);
    r.Get("rms_norm_eps", &t.rms_norm_eps);
    r.Get("rope_theta", &t.rope_theta);
    if (tj.contains("sliding_window")) {
      if (tj["sliding_window"].is_null()) {
        t.sliding_window.reset();
      } else {
        r.Get("sliding_window", &t.sliding_window);
      }
    }
    r.Get("bos_token_id", &t.bos_token_id);
    r.Get("eos_token_id", &t.eos_token_id);
    r.Get("pad_token_id", &t.pad_token_id);
    r.Get("tie_word_embeddings", &t.tie_word_embeddings);
    RETURN_IF_ERROR(r.status());
    if (tj.contains("rope_scaling") && !tj["rope_scaling"].is_null())
      return Unimplemented(where + ": text_config.rope_scaling is not supported");
  } else {
    t.max_position_embeddings = 4096 * 8;
    t.rms_norm_eps = 1e-5;
    t.pad_token_id = 0;
  }
  if (t.head_dim <= 0 && t.num_attention_heads > 0) t.head_dim = t.hidden_size / t.num_attention_heads;

  // perceiver_config. transformers (v4.4x) then forces the perceiver to the text model's width: when the
  // perceiver's hidden_size differs from the text hidden_size it takes the text hidden_size and the text
  // rms_norm_eps. The real idefics2-8b (both 4096) therefore keeps the perceiver default eps 1e-6.
  bool perceiver_has_eps = false;
  ASSIGN_OR_RETURN(const json* pj,
                   OptionalObject(j, "perceiver_config", where + ": perceiver_config must be an object"));
  if (pj) {
    Reader r(*pj, where + ": perceiver_config");
    PerceiverConfig& p = c.perceiver;
    r.Get("hidden_act", &p.hidden_act);
    r.Get("hidden_size", &p.hidden_size);
    r.Get("rms_norm_eps", &p.rms_norm_eps);
    r.Get("resampler_n_latents", &p.resampler_n_latents);
    r.Get("resampler_depth", &p.resampler_depth);
    r.Get("resampler_n_heads", &p.resampler_n_heads);
    r.Get("resampler_head_dim", &p.resampler_head_dim);
    r.Get("num_key_value_heads", &p.num_key_value_heads);
    perceiver_has_eps = r.Has("rms_norm_eps");
    RETURN_IF_ERROR(r.status());
  }
  if (c.perceiver.hidden_size != t.hidden_size) {
    c.perceiver.hidden_size = t.hidden_size;
    if (!perceiver_has_eps) c.perceiver.rms_norm_eps = t.rms_norm_eps;
  }
  RETURN_IF_ERROR(c.Validate().WithContext(where));
  return c;
}

Status Idefics2Config::Validate() const {
  auto positive = [](int64_t v, const char* name) -> Status {
    if (v <= 0) return InvalidArgument(std::string(name) + " must be positive, got " + std::to_string(v));
    return Status::Ok();
  };
  RETURN_IF_ERROR(positive(vision.hidden_size, "vision_config.hidden_size"));
  RETURN_IF_ERROR(positive(vision.num_attention_heads, "vision_config.num_attention_heads"));
  RETURN_IF_ERROR(positive(vision.patch_size, "vision_config.patch_size"));
  RETURN_IF_ERROR(positive(vision.image_size, "vision_config.image_size"));
  RETURN_IF_ERROR(positive(vision.num_hidden_layers, "vision_config.num_hidden_layers"));
  RETURN_IF_ERROR(positive(vision.intermediate_size, "vision_config.intermediate_size"));
  if (vision.hidden_size % vision.num_attention_heads != 0)
    return InvalidArgument("vision_config.hidden_size is not divisible by num_attention_heads");
  if (vision.hidden_act != "gelu_pytorch_tanh")
    return Unimplemented("vision_config.hidden_act '" + vision.hidden_act + "' (only gelu_pytorch_tanh)");
  RETURN_IF_ERROR(positive(perceiver.resampler_n_latents, "perceiver_config.resampler_n_latents"));
  RETURN_IF_ERROR(positive(perceiver.resampler_depth, "perceiver_config.resampler_depth"));
  RETURN_IF_ERROR(positive(perceiver.resampler_n_heads, "perceiver_config.resampler_n_heads"));
  RETURN_IF_ERROR(positive(perceiver.resampler_head_dim, "perceiver_config.resampler_head_dim"));
  RETURN_IF_ERROR(positive(perceiver.num_key_value_heads, "perceiver_config.num_key_value_heads"));
  if (perceiver.resampler_n_heads % perceiver.num_key_value_heads != 0)
    return InvalidArgument("perceiver_config.resampler_n_heads is not divisible by num_key_value_heads");
  if (perceiver.hidden_act != "silu") return Unimplemented("perceiver_config.hidden_act '" + perceiver.hidden_act + "'");
  RETURN_IF_ERROR(positive(text.vocab_size, "text_config.vocab_size"));
  RETURN_IF_ERROR(positive(text.hidden_size, "text_config.hidden_size"));
  RETURN_IF_ERROR(positive(text.num_hidden_layers, "text_config.num_hidden_layers"));
  RETURN_IF_ERROR(positive(text.num_attention_heads, "text_config.num_attention_heads"));
  RETURN_IF_ERROR(positive(text.num_key_value_heads, "text_config.num_key_value_heads"));
  RETURN_IF_ERROR(positive(text.intermediate_size, "text_config.intermediate_size"));
  RETURN_IF_ERROR(positive(text.head_dim, "text_config.head_dim"));
  if (text.num_attention_heads % text.num_key_value_heads != 0)
    return InvalidArgument("text_config.num_attention_heads is not divisible by num_key_value_heads");
  if (text.head_dim % 2 != 0) return InvalidArgument("text_config.head_dim must be even (RoPE)");
  if (text.hidden_act != "silu") return Unimplemented("text_config.hidden_act '" + text.hidden_act + "'");
  // Non-finite or out-of-range constants would turn every activation into NaN, which generation would then
  // report as an empty answer.
  auto finite_at_least = [](double v, double lo, bool strict, const char* name) -> Status {
    if (!std::isfinite(v) || v < lo || (strict && v == lo))
      return InvalidArgument(std::string(name) + " must be a finite number " + (strict ? "> " : ">= ") +
                             std::to_string(lo) + ", got " + std::to_string(v));
    return Status::Ok();
  };
  RETURN_IF_ERROR(finite_at_least(text.rope_theta, 0.0, true, "text_config.rope_theta"));
  RETURN_IF_ERROR(finite_at_least(text.rms_norm_eps, 0.0, false, "text_config.rms_norm_eps"));
  RETURN_IF_ERROR(finite_at_least(vision.layer_norm_eps, 0.0, false, "vision_config.layer_norm_eps"));
  RETURN_IF_ERROR(finite_at_least(perceiver.rms_norm_eps, 0.0, false, "perceiver_config.rms_norm_eps"));
  if (image_token_id < 0 || image_token_id >= text.vocab_size)
    return InvalidArgument("image_token_id " + std::to_string(image_token_id) + " is outside the vocabulary of " +
                           std::to_string(text.vocab_size));
  return Status::Ok();
}

StatusOr<Idefics2Config> Idefics2Config::Load(const std::string& dir) {
  const std::string path = Join(dir, "config.json");
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  return Parse(text, path);
}

StatusOr<GenerationConfig> GenerationConfig::Load(const std::string& dir) {
  GenerationConfig g;
  const std::string path = Join(dir, "generation_config.json");
  ASSIGN_OR_RETURN(const std::optional<json> file, ReadOptionalJson(path));
  if (!file) return g;
  const json& j = *file;
  Reader r(j, path);
  r.Get("bos_token_id", &g.bos_token_id);
  r.Get("pad_token_id", &g.pad_token_id);
  r.Get("max_new_tokens", &g.max_new_tokens);
  r.Get("max_length", &g.max_length);
  r.Get("do_sample", &g.do_sample);
  r.Get("temperature", &g.temperature);
  r.Get("top_p", &g.top_p);
  r.Get("top_k", &g.top_k);
  r.Get("repetition_penalty", &g.repetition_penalty);
  RETURN_IF_ERROR(r.status());
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) {
      g.eos_token_ids.push_back(e.get<int64_t>());
    } else if (e.is_array()) {
      if (!AppendInts(e, &g.eos_token_ids))
        return InvalidArgument(path + ": field 'eos_token_id' must hold integers");
    } else {
      return InvalidArgument(path + ": field 'eos_token_id' must be an integer or a list of integers");
    }
  }
  if (j.contains("bad_words_ids") && !j["bad_words_ids"].is_null()) {
    const json& b = j["bad_words_ids"];
    if (!b.is_array()) return InvalidArgument(path + ": field 'bad_words_ids' must be a list of lists");
    for (const json& seq : b) {
      if (!seq.is_array()) return InvalidArgument(path + ": field 'bad_words_ids' must be a list of lists");
      std::vector<int64_t> s;
      if (!AppendInts(seq, &s)) return InvalidArgument(path + ": field 'bad_words_ids' must hold integers");
      g.bad_words_ids.push_back(std::move(s));
    }
  }
  return g;
}

StatusOr<PreprocessorConfig> PreprocessorConfig::Load(const std::string& dir) {
  PreprocessorConfig p;
  const std::string path = Join(dir, "preprocessor_config.json");
  ASSIGN_OR_RETURN(const std::optional<json> file, ReadOptionalJson(path));
  if (!file) return p;
  const json& j = *file;
  Reader r(j, path);
  r.Get("do_convert_rgb", &p.do_convert_rgb);
  r.Get("do_resize", &p.do_resize);
  r.Get("resample", &p.resample);
  r.Get("do_rescale", &p.do_rescale);
  r.Get("rescale_factor", &p.rescale_factor);
  r.Get("do_normalize", &p.do_normalize);
  r.Get("image_mean", &p.image_mean);
  r.Get("image_std", &p.image_std);
  r.Get("do_pad", &p.do_pad);
  r.Get("do_image_splitting", &p.do_image_splitting);
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(const json* size, OptionalObject(j, "size", path + ": field 'size' must be an object"));
  if (size) {
    Reader s(*size, path + ": size");
    s.Get("shortest_edge", &p.shortest_edge);
    s.Get("longest_edge", &p.longest_edge);
    RETURN_IF_ERROR(s.status());
  }
  if (p.image_mean.size() != 3 || p.image_std.size() != 3)
    return InvalidArgument(path + ": image_mean and image_std must have 3 entries");
  for (double s : p.image_std)
    if (s == 0) return InvalidArgument(path + ": image_std must not be 0");
  if (p.shortest_edge <= 0 || p.longest_edge <= 0 || p.shortest_edge > p.longest_edge)
    return InvalidArgument(path + ": size needs 0 < shortest_edge <= longest_edge");
  if (p.resample != 2) return Unimplemented(path + ": resample " + std::to_string(p.resample) + " (only 2 = bilinear)");
  return p;
}

StatusOr<ProcessorConfig> ProcessorConfig::Load(const std::string& dir) {
  ProcessorConfig p;
  const std::string path = Join(dir, "processor_config.json");
  ASSIGN_OR_RETURN(const std::optional<json> file, ReadOptionalJson(path));
  if (file) {
    Reader r(*file, path);
    r.Get("image_seq_len", &p.image_seq_len);
    r.Get("chat_template", &p.chat_template);
    RETURN_IF_ERROR(r.status());
    if (p.image_seq_len <= 0) return InvalidArgument(path + ": image_seq_len must be positive");
  }
  if (!p.chat_template.empty()) return p;
  const std::string tpath = Join(dir, "chat_template.json");
  ASSIGN_OR_RETURN(const std::optional<json> tfile, ReadOptionalJson(tpath));
  if (tfile) {
    Reader r(*tfile, tpath);
    r.Get("chat_template", &p.chat_template);
    RETURN_IF_ERROR(r.status());
  }
  return p;
}

StatusOr<ModelFolder> ModelFolder::Load(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return NotFound(dir + ": model folder does not exist");
  ModelFolder m;
  m.dir = dir;
  ASSIGN_OR_RETURN(m.config, Idefics2Config::Load(dir));
  ASSIGN_OR_RETURN(m.generation, GenerationConfig::Load(dir));
  if (m.generation.eos_token_ids.empty()) m.generation.eos_token_ids.push_back(m.config.text.eos_token_id);
  ASSIGN_OR_RETURN(m.preprocessor, PreprocessorConfig::Load(dir));
  ASSIGN_OR_RETURN(m.processor, ProcessorConfig::Load(dir));
  return m;
}

}  // namespace idefics
