// The server's view of the model stack (tokenizer, image processor, Idefics2Model, sampler), small enough to
// be faked in tests. Mirrors what transformers' Idefics2Processor + generate() do, split per sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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

// Sampling settings of one request (already validated).
struct SamplingOptions {
  double temperature = 1.0;  // 0 = greedy (argmax)
  double top_p = 1.0;
  int64_t top_k = 0;         // 0 = off
  double min_p = 0.0;        // 0 = off
  double repeat_penalty = 1.0;
  uint64_t seed = 0;
};

// A decoded and preprocessed image, ready for the vision encoder.
struct PreparedImage {
  int width = 0;   // of the decoded input
  int height = 0;
  std::vector<PixelImage> sub_images;  // 1, or 5 with image splitting
};

// Per-sequence token sampler (temperature / top-k / top-p / min-p / repetition penalty).
class TokenSampler {
 public:
  virtual ~TokenSampler() = default;
  // logits: [vocab]; may be modified in place.
  virtual int32_t Sample(float* logits, int64_t vocab) = 0;
  // Records a generated token (for the repetition penalty).
  virtual void Accept(int32_t token) = 0;
};

// Incremental detokenizer: returns the new complete UTF-8 text each token adds (may be "" while a multi-byte
// character or a SentencePiece leading space is pending).
class Detokenizer {
 public:
  virtual ~Detokenizer() = default;
  virtual std::string Add(int32_t token) = 0;
  // Text held back at the end of generation (incomplete UTF-8 is replaced by U+FFFD).
  virtual std::string Flush() = 0;
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
  // The number of sub-images an image becomes (1, or 5 with splitting); it fixes its <image> token count.
  virtual int SubImagesPerImage(bool do_image_splitting) const = 0;
  // Applies the chat template (with the assistant prompt) and tokenizes, expanding each image into its
  // <image> tokens. sub_images[i] is SubImagesPerImage() of image i.
  virtual StatusOr<std::vector<int32_t>> BuildPrompt(const std::vector<ChatMessage>& messages,
                                                     const std::vector<int>& sub_images) const = 0;
  virtual std::unique_ptr<Detokenizer> NewDetokenizer() const = 0;
  virtual std::unique_ptr<TokenSampler> NewSampler(const SamplingOptions& options,
                                                   const std::vector<int32_t>& prompt) const = 0;
  virtual bool IsEndOfGeneration(int32_t token) const = 0;
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
