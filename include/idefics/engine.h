// The public C++ API of idefics.cpp: load an Idefics2 model folder once, then answer requests (chat messages
// with text and images) with streamed text. Mirrors Idefics2Processor +
// Idefics2ForConditionalGeneration.generate.
//
//   idefics::EngineOptions opts;
//   opts.model_dir = "idefics2-8b";
//   opts.weights_dtype = "bf16";
//   auto engine = idefics::Engine::Load(opts);                  // StatusOr<std::unique_ptr<Engine>>
//   idefics::GenerationRequest req;
//   req.messages.push_back({"user", {idefics::ContentPart::ImagePath("photo.jpg"),
//                                    idefics::ContentPart::Text("What do we see in this image?")}});
//   auto result = (*engine)->Generate(req, [](std::string_view piece) { std::cout << piece; return true; });
//
// The lower-level pieces (Prepare, NewSequence, model(), tokenizer()) let a server run many sequences at once
// with Idefics2Model::DecodeBatch (continuous batching); see docs in each declaration.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "idefics/sampling.h"
#include "idefics/status.h"
#include "image/image_types.h"

namespace idefics {

class Idefics2Model;
class KvCache;
class ThreadPool;
struct ModelFolder;
namespace tokenizer {
class Tokenizer;
}

// ---------------------------------------------------------------------------------------------------------
// Requests and results.

// One item of a message's content: text, or an image given by path or by its encoded bytes (PNG/JPEG/...).
struct ContentPart {
  enum class Kind { kText, kImagePath, kImageBytes };
  Kind kind = Kind::kText;
  std::string data;  // the text, the image path, or the encoded image bytes

  static ContentPart Text(std::string text) { return {Kind::kText, std::move(text)}; }
  static ContentPart ImagePath(std::string path) { return {Kind::kImagePath, std::move(path)}; }
  static ContentPart ImageBytes(std::string bytes) { return {Kind::kImageBytes, std::move(bytes)}; }
  bool is_image() const { return kind != Kind::kText; }
};

struct Message {
  std::string role;  // "user", "assistant", "system" (the chat template capitalizes it)
  std::vector<ContentPart> content;
};

struct GenerationRequest {
  // Chat mode: rendered with the folder's chat template; each image part becomes "<image>".
  std::vector<Message> messages;
  bool add_generation_prompt = true;  // append the template's generation prompt ("Assistant:")

  // Raw mode (when set; `messages` is then ignored): the prompt text is used as given, each "<image>" in it
  // takes the next of raw_images (the counts must match), BOS is added.
  std::optional<std::string> raw_prompt;
  std::vector<ContentPart> raw_images;

  // Image splitting (4 crops + the whole image per input image); unset: preprocessor_config.json's
  // do_image_splitting.
  std::optional<bool> split;

  SamplingParams sampling;        // greedy by default
  int64_t max_tokens = 512;       // new tokens; prompt + max_tokens must fit the context
  std::vector<std::string> stop;  // stop strings, matched on the decoded text, not emitted
  // Never generate <image> / <fake_token_around_image> (the model card's bad_words_ids) plus the
  // generation_config's single-token bad words. Off only for parity tests against unconstrained goldens.
  bool ban_image_tokens = true;
};

struct Timings {
  double load_ms = 0;        // Engine::Load (the same for every request of an engine)
  double preprocess_ms = 0;  // template + tokenization + image decoding and preprocessing
  double vision_ms = 0;      // vision encoder + connector
  double prefill_ms = 0;     // decoder over the prompt
  double decode_ms = 0;      // the token-by-token loop (sampling and detokenization included)
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
};

struct GenerationResult {
  std::string text;                    // generated text (special tokens skipped, stop string cut)
  std::vector<int32_t> prompt_ids;     // the full input ids (BOS, expanded image tokens)
  std::vector<int32_t> generated_ids;  // new tokens, including a final EOS when one ended generation
  FinishReason finish_reason = FinishReason::kNone;
  Timings timings;
  std::vector<float> prompt_logits;  // [prompt_tokens, vocab] when GenerateOptions::prompt_logits
};

// Called with each new piece of text (complete UTF-8 characters only); return false to stop generating.
using TextCallback = std::function<bool(std::string_view piece)>;
// Receives named intermediate tensors (same type as the model's DumpFn): name, row-major data, shape.
using TensorDumpFn =
    std::function<void(const std::string& name, const float* data, const std::vector<int64_t>& shape)>;

// The KV cache kept between calls: when the next prompt starts with the tokens already in the cache (a chat
// that re-renders its history), only the new tokens are computed. One session per conversation.
class Session {
 public:
  Session();
  ~Session();
  void Reset();  // forget everything
  int64_t cached_tokens() const;

 private:
  friend class Engine;
  std::unique_ptr<KvCache> cache_;
  std::vector<int32_t> ids_;  // the tokens held by cache_
};

struct GenerateOptions {
  TensorDumpFn dump;           // every stage's output under its golden name (vision_last_hidden_state, ...)
  bool prompt_logits = false;  // fill GenerationResult::prompt_logits (prefill computes every position)
  Session* session = nullptr;  // reuse a KV cache prefix (chat)
  // Stage reports for a progress display: ("vision", 0) before the images are encoded, ("vision", 1)
  // after; ("prefill", 0) / ("prefill", 1) around the prompt. May be empty.
  std::function<void(std::string_view stage, double fraction)> progress;
};

// ---------------------------------------------------------------------------------------------------------
// Lower-level pieces for schedulers.

// A request turned into model inputs. Produced before any model compute, after the context check.
struct PreparedPrompt {
  std::vector<int32_t> ids;        // BOS + tokens with every <image> expanded
  std::vector<PixelImage> images;  // preprocessed (sub-)images in order (5 per input image when split)
  int64_t n_input_images = 0;
  bool split = false;
  int64_t max_tokens = 0;  // the request's max_tokens (checked: ids.size() + max_tokens <= context)
  double preprocess_ms = 0;
};

// The sampler + stop rules + incremental detokenizer of one sequence. Feed it the logits of the sequence's
// last position; it picks the next token and says which text became visible and whether the sequence ended.
class SequenceState {
 public:
  ~SequenceState();
  SequenceState(SequenceState&&) noexcept;
  SequenceState& operator=(SequenceState&&) noexcept;

  struct Step {
    int32_t token = -1;  // the chosen token (to feed to the model next unless finished)
    std::string text;    // newly visible text (may be empty)
    FinishReason finish = FinishReason::kNone;
  };
  // logits: [vocab] (modified in place). Must not be called once finished().
  Step Advance(std::span<float> logits);
  // Ends the sequence with FinishReason::kCancelled (text still held back is dropped).
  void Cancel();

  bool finished() const;
  FinishReason finish_reason() const;
  const std::vector<int32_t>& generated_ids() const;
  const std::string& text() const;  // everything visible so far (final text once finished)

 private:
  friend class Engine;
  struct Impl;
  explicit SequenceState(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------------------
// The engine.

struct EngineOptions {
  std::string model_dir;               // a hub folder (config.json, weights, tokenizer, processor files)
  int threads = 0;                     // 0: the number of physical cores
  // Storage of the Linear weights: f32 (exact), bf16, f16, q8_0, q4_0, or "auto"/"" = the format a folder
  // written by `idefics quantize` was converted to (f32 for an ordinary checkpoint). Matrices stored quantized
  // in the folder are used in place whatever is asked (docs/quantization.md).
  std::string weights_dtype = "auto";
  int64_t ctx = 0;                     // context limit in tokens; 0: text_config.max_position_embeddings
  // Arithmetic of the large matrix products (vision, connector, prefill) and of their attention: "auto"/""
  // = bf16 dot products (vdpbf16ps) when the weights are not f32, "on" = the same, "off" = float32 arithmetic
  // always. f32 weights always compute in float32 (the exact parity path); decode is unaffected.
  std::string bf16_dot = "auto";
  // Copy the text decoder's weights out of the mmapped files into huge-page memory at load (llama.cpp's
  // --no-mmap): decode streams them faster (docs/performance.md), loading takes longer.
  bool no_mmap = false;
  bool check_memory = true;            // refuse to load when the weights would not fit in MemAvailable
  // Progress while loading the weights: stage ("load") and 0..1. May be empty.
  std::function<void(std::string_view stage, double fraction)> progress;
};

class Engine {
 public:
  // Reads the folder (configs, tokenizer, chat template), checks the memory, loads the weights.
  static StatusOr<std::unique_ptr<Engine>> Load(const EngineOptions& options);
  ~Engine();

  // Runs one request to the end: Prepare, vision, prefill, decode; streams text through on_text (may be
  // empty). Errors: bad request (InvalidArgument / NotFound for images), context overflow (OutOfRange).
  // Cancellation via on_text returning false is not an error: finish_reason is kCancelled.
  // Not thread-safe: one Generate at a time per engine (the model's scratch buffers are shared).
  StatusOr<GenerationResult> Generate(const GenerationRequest& request, const TextCallback& on_text = nullptr,
                                      const GenerateOptions& options = {});

  // Template + tokenization + image expansion + context check, then image decoding and preprocessing.
  // Touches no model state (safe to call from other threads while the model runs).
  StatusOr<PreparedPrompt> Prepare(const GenerationRequest& request) const;
  // Only the token ids of a request (template, <image> expansion with request.split or the folder default,
  // BOS); image parts are not decoded (they may be empty). For schedulers that preprocess and cache images
  // themselves. No context check.
  StatusOr<std::vector<int32_t>> PromptIds(const GenerationRequest& request) const;
  // Context check alone: OutOfRange naming the numbers when prompt_tokens + max_tokens > context_length().
  Status CheckContext(int64_t prompt_tokens, int64_t max_tokens) const;
  // A fresh sampler/stop state for `request` (its sampling, stop strings, max_tokens, banned ids).
  SequenceState NewSequence(const GenerationRequest& request, std::span<const int32_t> prompt_ids) const;

  Idefics2Model& model();
  const tokenizer::Tokenizer& tokenizer() const;
  const ModelFolder& folder() const;
  ThreadPool* pool();
  int64_t context_length() const;
  const std::vector<int32_t>& eos_ids() const;     // generation_config eos ids + <end_of_utterance>
  const std::vector<int32_t>& banned_ids() const;  // <image>, <fake_token_around_image> (+ config bad words)
  double load_ms() const;

 private:
  Engine();
  struct State;
  std::unique_ptr<State> s_;
};

// Bytes the weights of the folder at `model_dir` take in `weights_dtype` (matrices in their planned format,
// quantized tensors of the folder as stored, 1-D tensors f32). Used for the memory check; errors name the
// folder or the dtype.
StatusOr<uint64_t> EstimateWeightBytes(const std::string& model_dir, const std::string& weights_dtype);

}  // namespace idefics
