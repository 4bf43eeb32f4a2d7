// The server's view of the model stack (tokenizer, image processor, Idefics2Model, sampler), small enough to
// be faked in tests. Mirrors what transformers' Idefics2Processor + generate() do, split per sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "idefics/sampling.h"
#include "idefics/status.h"
#include "image/image_types.h"
#include "model/idefics2_model.h"

namespace idefics::server {

// One part of a chat message: text, or the next image of the request (images are numbered in order).
struct ChatPart {
  bool is_image = false;
  std::string text;
};

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::vector<ChatPart> parts;
};

// Generation settings of one request (already validated).
struct GenerationSettings {
  SamplingParams sampling;        // greedy for temperature 0
  std::vector<std::string> stop;  // stop strings (not emitted)
  int64_t max_tokens = 16;        // new tokens; prompt + max_tokens fits the context
  bool ignore_eos = false;        // benchmarks: EOS ids are never sampled
};

// A decoded and preprocessed image, ready for the vision encoder.
struct PreparedImage {
  std::vector<PixelImage> sub_images;  // 1, or 5 with image splitting
};

// One sequence's sampler + stop rules + incremental detokenizer (the runtime's SequenceState).
class SequenceDecoder {
 public:
  struct Step {
    int32_t token = -1;  // to feed to the model next, unless finished
    std::string text;    // newly visible text (complete UTF-8)
    FinishReason finish = FinishReason::kNone;
  };
  virtual ~SequenceDecoder() = default;
  // logits: [vocab] of the sequence's last position (modified in place).
  virtual Step Advance(std::span<float> logits) = 0;
  virtual int64_t generated_tokens() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // ---- Thread-safe, called from HTTP handler threads. ----
  virtual std::string ModelName() const = 0;
  virtual int64_t ContextLength() const = 0;  // max prompt + completion tokens of one sequence
  virtual bool DefaultImageSplitting() const = 0;
  // Decodes (PNG/JPEG/WebP...) and preprocesses image bytes. kInvalidArgument for bytes that are not an image,
  // kResourceExhausted when width*height > max_pixels.
  virtual StatusOr<PreparedImage> PrepareImage(const std::string& bytes, bool do_image_splitting,
                                               int64_t max_pixels) const = 0;
  // Applies the chat template (with the assistant prompt) and tokenizes, expanding each image part into its
  // <image> tokens (5 times as many with splitting).
  virtual StatusOr<std::vector<int32_t>> BuildPrompt(const std::vector<ChatMessage>& messages,
                                                     bool do_image_splitting) const = 0;
  virtual std::unique_ptr<SequenceDecoder> NewSequence(const GenerationSettings& settings,
                                                       const std::vector<int32_t>& prompt) const = 0;
  virtual int64_t VocabSize() const = 0;

  // ---- Called only from the scheduler thread. ----
  // Vision encoder + connector: [sub_images * n_latents, hidden] features.
  virtual StatusOr<std::vector<float>> EncodeImage(const PreparedImage& image) = 0;
  virtual std::unique_ptr<KvCache> NewCache(int64_t capacity) = 0;
  // Runs the prompt through the decoder; logits: [vocab] for the last position.
  virtual Status Prefill(const std::vector<int32_t>& ids, const std::vector<float>& image_features,
                         KvCache& cache, float* logits) = 0;
  // One token for each of n sequences (continuous batching); logits: [n, vocab].
  virtual Status DecodeBatch(const int32_t* ids, KvCache* const* caches, int64_t n, float* logits) = 0;
};

}  // namespace idefics::server
