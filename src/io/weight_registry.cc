// Idefics2 weight names and shapes (spec §1.3), and the one-pass checkpoint check.
#include "io/weight_registry.h"

#include <cstdio>
#include <map>
#include <set>

namespace idefics {

std::vector<WeightSpec> DeclareIdefics2Weights(const Idefics2Config& c) {
  std::vector<WeightSpec> w;
  auto mat = [&](std::string name, int64_t out, int64_t in) { w.push_back({std::move(name), {out, in}, true}); };
  auto vec = [&](std::string name, std::vector<int64_t> shape) { w.push_back({std::move(name), std::move(shape), false}); };
  // A SwiGLU MLP without biases: gate_proj and up_proj [inter, in], down_proj [out, inter].
  auto swiglu = [&](const std::string& p, int64_t in, int64_t inter, int64_t out) {
    mat(p + "gate_proj.weight", inter, in);
    mat(p + "up_proj.weight", inter, in);
    mat(p + "down_proj.weight", out, inter);
  };
  // What perceiver and text layers share after their input norms: attention projections (GQA: k/v have
  // kv_dim rows), the post-attention RMSNorm and the SwiGLU MLP.
  auto attention_and_mlp = [&](const std::string& p, int64_t hidden, int64_t q_dim, int64_t kv_dim,
                               int64_t inter) {
    mat(p + "self_attn.q_proj.weight", q_dim, hidden);
    mat(p + "self_attn.k_proj.weight", kv_dim, hidden);
    mat(p + "self_attn.v_proj.weight", kv_dim, hidden);
    mat(p + "self_attn.o_proj.weight", hidden, q_dim);
    vec(p + "post_attention_layernorm.weight", {hidden});
    swiglu(p + "mlp.", hidden, inter, hidden);
  };

  const VisionConfig& v = c.vision;
  const std::string vp = "model.vision_model.";
  vec(vp + "embeddings.patch_embedding.weight", {v.hidden_size, v.num_channels, v.patch_size, v.patch_size});
  vec(vp + "embeddings.patch_embedding.bias", {v.hidden_size});
  const int64_t nps = v.num_patches_per_side();
  vec(vp + "embeddings.position_embedding.weight", {nps * nps, v.hidden_size});
  for (int64_t l = 0; l < v.num_hidden_layers; ++l) {
    const std::string p = vp + "encoder.layers." + std::to_string(l) + ".";
    vec(p + "layer_norm1.weight", {v.hidden_size});
    vec(p + "layer_norm1.bias", {v.hidden_size});
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      mat(p + "self_attn." + proj + ".weight", v.hidden_size, v.hidden_size);
      vec(p + "self_attn." + proj + ".bias", {v.hidden_size});
    }
    vec(p + "layer_norm2.weight", {v.hidden_size});
    vec(p + "layer_norm2.bias", {v.hidden_size});
    mat(p + "mlp.fc1.weight", v.intermediate_size, v.hidden_size);
    vec(p + "mlp.fc1.bias", {v.intermediate_size});
    mat(p + "mlp.fc2.weight", v.hidden_size, v.intermediate_size);
    vec(p + "mlp.fc2.bias", {v.hidden_size});
  }
  vec(vp + "post_layernorm.weight", {v.hidden_size});
  vec(vp + "post_layernorm.bias", {v.hidden_size});

  const TextConfig& t = c.text;
  const PerceiverConfig& r = c.perceiver;
  const std::string cp = "model.connector.";
  swiglu(cp + "modality_projection.", v.hidden_size, t.intermediate_size, t.hidden_size);
  const std::string pp = cp + "perceiver_resampler.";
  vec(pp + "latents", {r.resampler_n_latents, r.hidden_size});
  for (int64_t l = 0; l < r.resampler_depth; ++l) {
    const std::string p = pp + "layers." + std::to_string(l) + ".";
    vec(p + "input_latents_norm.weight", {r.hidden_size});
    vec(p + "input_context_norm.weight", {r.hidden_size});
    attention_and_mlp(p, r.hidden_size, r.resampler_n_heads * r.resampler_head_dim,
                      r.num_key_value_heads * r.resampler_head_dim, 4 * r.hidden_size);
  }
  vec(pp + "norm.weight", {r.hidden_size});

  const std::string tp = "model.text_model.";
  vec(tp + "embed_tokens.weight", {t.vocab_size, t.hidden_size});
  for (int64_t l = 0; l < t.num_hidden_layers; ++l) {
    const std::string p = tp + "layers." + std::to_string(l) + ".";
    vec(p + "input_layernorm.weight", {t.hidden_size});
    attention_and_mlp(p, t.hidden_size, t.num_attention_heads * t.head_dim,
                      t.num_key_value_heads * t.head_dim, t.intermediate_size);
  }
  vec(tp + "norm.weight", {t.hidden_size});
  if (!c.tie_word_embeddings) mat("lm_head.weight", t.vocab_size, t.hidden_size);
  return w;
}

int64_t CountParameters(const std::vector<WeightSpec>& specs) {
  int64_t n = 0;
  for (const WeightSpec& s : specs) {
    int64_t e = 1;
    for (int64_t d : s.shape) e *= d;
    n += e;
  }
  return n;
}

namespace {
std::string ShapeStr(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}
}  // namespace

std::string QuantizedLayoutKey(const std::string& tensor_name) { return "idefics." + tensor_name; }

std::string QuantizedLayoutValue(const QuantizedLayout& l) {
  return std::string(WeightFormatName(l.format)) + ":[" + std::to_string(l.rows) + "," + std::to_string(l.cols) +
         "]";
}

StatusOr<std::optional<QuantizedLayout>> FindQuantizedLayout(const TensorStore& store, const TensorInfo& t) {
  const SafetensorsFile* file = nullptr;
  for (const auto& f : store.files())
    if (f->path() == t.file) file = f.get();
  if (!file) return std::optional<QuantizedLayout>();
  auto it = file->metadata().find(QuantizedLayoutKey(t.name));
  if (it == file->metadata().end()) return std::optional<QuantizedLayout>();
  const std::string& v = it->second;
  const std::string where = t.file + ": tensor '" + t.name + "': ";
  const size_t colon = v.find(':');
  QuantizedLayout l;
  const std::string fmt = v.substr(0, colon == std::string::npos ? v.size() : colon);
  if (fmt == "q8_0") {
    l.format = WeightFormat::kQ8_0;
  } else if (fmt == "q4_0") {
    l.format = WeightFormat::kQ4_0;
  } else {
    return InvalidArgument(where + "unknown quantized format '" + v + "' in __metadata__ (expected q8_0 or q4_0)");
  }
  long long r = 0, c = 0;
  char tail = 0;
  if (colon == std::string::npos ||
      std::sscanf(v.c_str() + colon + 1, "[%lld,%lld]%c", &r, &c, &tail) != 2 || r <= 0 || c <= 0) {
    return InvalidArgument(where + "malformed layout '" + v + "' in __metadata__ (expected e.g. q8_0:[4096,4096])");
  }
  if (c % 32 != 0)
    return InvalidArgument(where + "quantized cols " + std::to_string(c) + " is not a multiple of 32");
  l.rows = r;
  l.cols = c;
  const std::vector<int64_t> want = {l.rows, static_cast<int64_t>(WeightRowBytes(l.format, l.cols))};
  if (t.dtype != DType::kU8 || t.shape != want) {
    return InvalidArgument(where + v + " must be stored as U8 " + ShapeStr(want) + ", found " +
                           std::string(DTypeName(t.dtype)) + " " + t.ShapeString());
  }
  return std::optional<QuantizedLayout>(l);
}

std::string StoreQuantFormat(const TensorStore& store) {
  for (const auto& f : store.files()) {
    auto it = f->metadata().find(kQuantFormatKey);
    if (it != f->metadata().end()) return it->second;
  }
  return "";
}

Status CheckWeights(const TensorStore& store, const std::vector<WeightSpec>& specs) {
  std::vector<std::string> missing, misshaped, wrong_dtype, unexpected;
  std::set<std::string> declared;
  for (const WeightSpec& s : specs) {
    declared.insert(s.name);
    const TensorInfo* t = store.Find(s.name);
    if (!t) {
      missing.push_back(s.name + " " + ShapeStr(s.shape));
      continue;
    }
    StatusOr<std::optional<QuantizedLayout>> q = FindQuantizedLayout(store, *t);
    if (!q.ok()) {
      wrong_dtype.push_back(q.status().message());
      continue;
    }
    if (q->has_value()) {
      const QuantizedLayout& l = **q;
      if (!s.is_matrix) {
        wrong_dtype.push_back(s.name + " is quantized (" + QuantizedLayoutValue(l) + ") but is not a Linear weight");
      } else if (std::vector<int64_t>{l.rows, l.cols} != s.shape) {
        misshaped.push_back(s.name + ": expected " + ShapeStr(s.shape) + ", found " + QuantizedLayoutValue(l));
      }
      continue;
    }
    if (!IsFloat(t->dtype) || t->dtype == DType::kF64) {
      wrong_dtype.push_back(s.name + " is " + std::string(DTypeName(t->dtype)) + " (expected F32, BF16 or F16)");
      continue;
    }
    if (t->shape != s.shape)
      misshaped.push_back(s.name + ": expected " + ShapeStr(s.shape) + ", found " + t->ShapeString());
  }
  for (const TensorInfo* t : store.All())
    if (!declared.count(t->name)) unexpected.push_back(t->name + " " + t->ShapeString());
  if (missing.empty() && misshaped.empty() && wrong_dtype.empty() && unexpected.empty()) return Status::Ok();
  std::string msg = "the checkpoint does not match the configuration:";
  auto list = [&](const char* title, const std::vector<std::string>& items) {
    if (items.empty()) return;
    msg += std::string("\n  ") + title + " (" + std::to_string(items.size()) + "):";
    size_t shown = 0;
    for (const std::string& i : items) {
      if (++shown > 50) {
        msg += "\n    ... and " + std::to_string(items.size() - 50) + " more";
        break;
      }
      msg += "\n    " + i;
    }
  };
  list("missing tensors", missing);
  list("mis-shaped tensors", misshaped);
  list("tensors of an unsupported dtype", wrong_dtype);
  list("unexpected tensors", unexpected);
  return InvalidArgument(msg);
}

}  // namespace idefics
