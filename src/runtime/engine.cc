// Engine (include/idefics/engine.h): folder + tokenizer + model loading with a memory check, request
// preparation, and the one-call Generate. Mirrors Idefics2Processor +
// Idefics2ForConditionalGeneration.generate.
#include "idefics/engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/stopwatch.h"
#include "core/thread_pool.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/weight_registry.h"
#include "kernels/matmul.h"
#include "model/idefics2_model.h"
#include "model/weight_formats.h"
#include "runtime/generator.h"
#include "runtime/prompt.h"
#include "runtime/sequence_state_impl.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace idefics {
namespace {

using Clock = std::chrono::steady_clock;

// "auto" (or empty): the folder's idefics_quant format when `idefics quantize` wrote it, else f32.
StatusOr<WeightFormat> ResolveWeightsDtype(const std::string& s, const TensorStore& store) {
  if (!s.empty() && s != "auto") return ParseWeightFormat(s);
  const std::string stored = StoreQuantFormat(store);
  if (stored.empty()) return WeightFormat::kF32;
  return ParseWeightFormat(stored);
}

// /proc/meminfo's MemAvailable in bytes; 0 when unknown. IDEFICS_MEM_AVAILABLE (bytes) overrides it so the
// refusal can be tested on any machine.
uint64_t MemAvailableBytes() {
  if (const char* env = std::getenv("IDEFICS_MEM_AVAILABLE")) return std::strtoull(env, nullptr, 10);
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("MemAvailable:", 0) == 0) {
      std::istringstream is(line.substr(13));
      uint64_t kb = 0;
      is >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

std::string Gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

void AddUnique(std::vector<int32_t>* v, int64_t id) {
  if (id < 0 || id > INT32_MAX) return;
  if (std::find(v->begin(), v->end(), static_cast<int32_t>(id)) == v->end())
    v->push_back(static_cast<int32_t>(id));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

Session::Session() = default;
Session::~Session() = default;
void Session::Reset() {
  cache_.reset();
  ids_.clear();
}
int64_t Session::cached_tokens() const {
  return cache_ ? cache_->size() : 0;
}

struct Engine::State {
  ModelFolder folder;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::optional<tokenizer::ChatTemplate> chat_template;  // absent: the folder has none (raw prompts only)
  nlohmann::json template_vars;                          // bos_token, eos_token, ... for the template
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Idefics2Model> model;
  int64_t ctx = 0;
  std::vector<int32_t> eos_ids;
  std::vector<int32_t> banned_ids;
  double load_ms = 0;
};

Engine::Engine() : s_(std::make_unique<State>()) {}
Engine::~Engine() = default;

StatusOr<uint64_t> EstimateWeightBytes(const std::string& model_dir, const std::string& weights_dtype) {
  ASSIGN_OR_RETURN(auto store, TensorStore::OpenFolder(model_dir));
  ASSIGN_OR_RETURN(WeightFormat format, ResolveWeightsDtype(weights_dtype, *store));
  uint64_t bytes = 0;
  for (const TensorInfo* t : store->All()) {
    StatusOr<std::optional<QuantizedLayout>> q = FindQuantizedLayout(*store, *t);
    if (!q.ok()) return q.status();
    const bool embed = t->name.find("embed_tokens") != std::string::npos;
    if (q->has_value() || (embed && IsBlockFormat(format) && t->dtype == DType::kBF16)) {
      bytes += t->nbytes;  // used in place
    } else if (embed && IsBlockFormat(format)) {
      bytes += static_cast<uint64_t>(t->numel()) * 2;  // rounded to bf16
    } else if (t->shape.size() == 2 && !embed && t->name.find("position_embedding") == std::string::npos &&
               t->name.find("latents") == std::string::npos) {
      // A Linear weight in its planned format.
      const int64_t cols = t->shape[1];
      bytes += static_cast<uint64_t>(t->shape[0]) * WeightRowBytes(PlanMatrixFormat(t->name, cols, format), cols);
    } else {
      bytes += static_cast<uint64_t>(t->numel()) * 4;
    }
  }
  return bytes;
}

StatusOr<std::unique_ptr<Engine>> Engine::Load(const EngineOptions& options) {
  const auto t0 = Clock::now();
  std::error_code ec;
  if (options.model_dir.empty()) return InvalidArgument("no model folder given");
  if (!std::filesystem::is_directory(options.model_dir, ec)) {
    return NotFound("model folder '" + options.model_dir + "' does not exist or is not a folder");
  }
  const bool auto_dtype = options.weights_dtype.empty() || options.weights_dtype == "auto";
  if (!options.bf16_dot.empty() && options.bf16_dot != "auto" && options.bf16_dot != "on" &&
      options.bf16_dot != "off") {
    return InvalidArgument("bf16_dot must be auto, on or off, got '" + options.bf16_dot + "'");
  }
  WeightFormat format = WeightFormat::kF32;
  if (!auto_dtype) {
    ASSIGN_OR_RETURN(format, ParseWeightFormat(options.weights_dtype));
  }
  std::unique_ptr<Engine> e(new Engine());
  State& s = *e->s_;
  ASSIGN_OR_RETURN(s.folder, ModelFolder::Load(options.model_dir));
  ASSIGN_OR_RETURN(s.tok, tokenizer::Tokenizer::Load(options.model_dir));
  {
    StatusOr<tokenizer::ChatTemplate> t = tokenizer::ChatTemplate::FromModelDir(options.model_dir);
    if (t.ok()) {
      s.chat_template.emplace(std::move(t).value());
    } else if (t.status().code() != StatusCode::kNotFound) {
      return t.status();  // a template that does not parse is reported at load, not at the first request
    }
    s.template_vars = tokenizer::SpecialTokenVariables(*s.tok);
  }

  const int64_t max_pos = s.folder.config.text.max_position_embeddings;
  if (options.ctx < 0)
    return InvalidArgument("context size must be positive, got " + std::to_string(options.ctx));
  if (options.ctx > max_pos) {
    return InvalidArgument("context size " + std::to_string(options.ctx) + " exceeds the model's " +
                           "max_position_embeddings " + std::to_string(max_pos));
  }
  s.ctx = options.ctx > 0 ? options.ctx : max_pos;

  if (options.check_memory) {
    ASSIGN_OR_RETURN(uint64_t need, EstimateWeightBytes(options.model_dir, options.weights_dtype));
    const uint64_t avail = MemAvailableBytes();
    if (avail > 0 && need > avail) {
      return ResourceExhausted("the weights of '" + options.model_dir + "' need about " + Gib(need) + " (" +
                               std::to_string(need) + " bytes) in " + options.weights_dtype + " but only " +
                               Gib(avail) + " (" + std::to_string(avail) +
                               " bytes) of memory is available (MemAvailable); try a smaller --weights-dtype "
                               "(bf16 halves f32, q8_0 about a quarter)");
    }
  }

  // Stop on the generation config's EOS ids and on <end_of_utterance> (the instruct model ends turns with
  // it).
  for (int64_t id : s.folder.generation.eos_token_ids) AddUnique(&s.eos_ids, id);
  AddUnique(&s.eos_ids, s.tok->TokenId("<end_of_utterance>"));
  // Never generate image tokens (model card BAD_WORDS_IDS) nor the config's single-token bad words.
  AddUnique(&s.banned_ids, s.tok->TokenId("<image>"));
  AddUnique(&s.banned_ids, s.tok->TokenId("<fake_token_around_image>"));
  for (const auto& word : s.folder.generation.bad_words_ids) {
    if (word.size() == 1) AddUnique(&s.banned_ids, word[0]);
  }

  if (auto_dtype) {
    ASSIGN_OR_RETURN(auto store, TensorStore::OpenFolder(options.model_dir));
    ASSIGN_OR_RETURN(format, ResolveWeightsDtype(options.weights_dtype, *store));
  }
  s.pool = std::make_unique<ThreadPool>(options.threads);
  ModelLoadOptions mopts;
  mopts.matrix_format = format;
  mopts.matmul.bf16_dot = options.bf16_dot != "off";  // never applies to f32 weights (MatMul, Attention)
  mopts.matmul.int8_dot = options.bf16_dot != "off";  // q8_0/q4_0 weights: int8 dot products at large M too
  mopts.pool = s.pool.get();
  mopts.no_mmap = options.no_mmap;
  if (options.progress) mopts.progress = [&](double f) { options.progress("load", f); };
  ASSIGN_OR_RETURN(s.model, Idefics2Model::Load(s.folder, mopts));
  if (s.tok->vocab_size() > s.folder.config.text.vocab_size) {
    return InvalidArgument(options.model_dir + ": the tokenizer has " + std::to_string(s.tok->vocab_size()) +
                           " tokens but text_config.vocab_size is " +
                           std::to_string(s.folder.config.text.vocab_size));
  }
  s.load_ms = MsSince(t0);
  return e;
}

Status Engine::CheckContext(int64_t prompt_tokens, int64_t max_tokens) const {
  if (max_tokens < 1)
    return InvalidArgument("max_tokens must be at least 1, got " + std::to_string(max_tokens));
  if (prompt_tokens >= s_->ctx) {
    return OutOfRange("the prompt has " + std::to_string(prompt_tokens) + " tokens, which does not fit the " +
                      "context of " + std::to_string(s_->ctx) +
                      " tokens (with room for at least one new token)");
  }
  if (prompt_tokens + max_tokens > s_->ctx) {
    return OutOfRange("prompt (" + std::to_string(prompt_tokens) + " tokens) + max_tokens (" +
                      std::to_string(max_tokens) + ") = " + std::to_string(prompt_tokens + max_tokens) +
                      " exceeds the context of " + std::to_string(s_->ctx) + " tokens; use at most " +
                      std::to_string(s_->ctx - prompt_tokens) + " new tokens");
  }
  return Status::Ok();
}

StatusOr<PreparedPrompt> Engine::Prepare(const GenerationRequest& request) const {
  const auto t0 = Clock::now();
  const SamplingParams& sp = request.sampling;
  if (!sp.greedy && !(sp.temperature > 0.0f)) {
    return InvalidArgument("temperature must be > 0 when sampling, got " + std::to_string(sp.temperature));
  }
  if (!(sp.top_p > 0.0f && sp.top_p <= 1.0f)) return InvalidArgument("top_p must be in (0, 1]");
  if (!(sp.min_p >= 0.0f && sp.min_p <= 1.0f)) return InvalidArgument("min_p must be in [0, 1]");
  if (sp.top_k < 0) return InvalidArgument("top_k must be >= 0");
  if (!(sp.repetition_penalty > 0.0f)) return InvalidArgument("repetition_penalty must be > 0");

  PreparedPrompt p;
  p.split = request.split.value_or(s_->folder.preprocessor.do_image_splitting);
  p.max_tokens = request.max_tokens;
  ASSIGN_OR_RETURN(PromptText text, RenderPrompt(request, s_->chat_template ? &*s_->chat_template : nullptr,
                                                 s_->template_vars));
  p.n_input_images = static_cast<int64_t>(text.images.size());
  ASSIGN_OR_RETURN(p.ids, TokenizePrompt(*s_->tok, text.text, s_->folder.processor.image_seq_len, p.split));
  // The context check comes before any image is decoded or any model compute is done.
  RETURN_IF_ERROR(CheckContext(static_cast<int64_t>(p.ids.size()), request.max_tokens));
  ASSIGN_OR_RETURN(p.images, LoadImages(text.images, s_->folder.preprocessor, p.split));
  p.preprocess_ms = MsSince(t0);
  return p;
}

StatusOr<std::vector<int32_t>> Engine::PromptIds(const GenerationRequest& request) const {
  ASSIGN_OR_RETURN(PromptText text, RenderPrompt(request, s_->chat_template ? &*s_->chat_template : nullptr,
                                                 s_->template_vars));
  const bool split = request.split.value_or(s_->folder.preprocessor.do_image_splitting);
  return TokenizePrompt(*s_->tok, text.text, s_->folder.processor.image_seq_len, split);
}

SequenceState Engine::NewSequence(const GenerationRequest& request,
                                  std::span<const int32_t> prompt_ids) const {
  StopConfig stop;
  stop.eos_ids = s_->eos_ids;
  stop.stop_strings = request.stop;
  stop.max_new_tokens = std::max<int64_t>(1, request.max_tokens);
  std::vector<int32_t> banned = request.ban_image_tokens ? s_->banned_ids : std::vector<int32_t>{};
  return SequenceState(
      std::make_unique<SequenceState::Impl>(*s_->tok, request.sampling, std::move(banned), std::move(stop),
                                            std::vector<int32_t>(prompt_ids.begin(), prompt_ids.end())));
}

StatusOr<GenerationResult> Engine::Generate(const GenerationRequest& request, const TextCallback& on_text,
                                            const GenerateOptions& options) {
  ASSIGN_OR_RETURN(PreparedPrompt prompt, Prepare(request));
  GenerationResult result;
  result.prompt_ids = prompt.ids;
  result.timings.load_ms = s_->load_ms;
  result.timings.preprocess_ms = prompt.preprocess_ms;
  result.timings.prompt_tokens = static_cast<int64_t>(prompt.ids.size());

  const int64_t need = static_cast<int64_t>(prompt.ids.size()) + request.max_tokens;
  std::unique_ptr<KvCache> local_cache;
  std::vector<int32_t> local_ids;
  KvCache* cache = nullptr;
  std::vector<int32_t>* cached_ids = &local_ids;
  if (options.session) {
    Session& session = *options.session;
    if (!session.cache_ || session.cache_->capacity() < need) {
      // A chat grows: leave room for a few more turns so the cache is not reallocated every time.
      const int64_t capacity = std::min<int64_t>(s_->ctx, std::max<int64_t>(need + 1024, need * 2));
      session.cache_ = s_->model->NewCache(capacity);
      session.ids_.clear();
    }
    cache = session.cache_.get();
    cached_ids = &session.ids_;
  } else {
    local_cache = s_->model->NewCache(need);
    cache = local_cache.get();
  }

  if (cache->capacity() < need) {
    if (options.session) options.session->Reset();
    return ResourceExhausted("cannot allocate a KV cache for " + std::to_string(need) + " tokens (prompt " +
                             std::to_string(prompt.ids.size()) + " + max_tokens " +
                             std::to_string(request.max_tokens) + ")");
  }
  SequenceState seq = NewSequence(request, prompt.ids);
  GeneratorInputs in;
  in.model = s_->model.get();
  in.prompt = &prompt;
  in.image_seq_len = s_->folder.processor.image_seq_len;
  in.image_token_id = static_cast<int32_t>(s_->folder.config.image_token_id);
  in.cache = cache;
  in.cached_ids = cached_ids;
  in.sequence = &seq;
  Status st = RunGeneration(in, on_text, options, &result);
  if (!st.ok()) {
    if (options.session) options.session->Reset();  // the cache may hold a half-computed prompt
    return st;
  }
  return result;
}

Idefics2Model& Engine::model() {
  return *s_->model;
}
const tokenizer::Tokenizer& Engine::tokenizer() const {
  return *s_->tok;
}
const ModelFolder& Engine::folder() const {
  return s_->folder;
}
ThreadPool* Engine::pool() {
  return s_->pool.get();
}
int64_t Engine::context_length() const {
  return s_->ctx;
}
const std::vector<int32_t>& Engine::eos_ids() const {
  return s_->eos_ids;
}
const std::vector<int32_t>& Engine::banned_ids() const {
  return s_->banned_ids;
}
double Engine::load_ms() const {
  return s_->load_ms;
}

}  // namespace idefics
