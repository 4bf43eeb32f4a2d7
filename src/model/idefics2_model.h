// Idefics2ForConditionalGeneration: vision encoder -> connector (projection + perceiver) -> Mistral decoder.
// The runtime (generation loop, server) uses only this interface.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "idefics/status.h"
#include "image/image_types.h"
#include "io/model_config.h"
#include "kernels/matmul.h"

namespace idefics {

class ThreadPool;

// Receives named intermediate tensors (golden names) so a mismatch can be located layer by layer. shape is
// row-major; data is only valid during the call. Emitted by EncodeImages once per image, in order:
//   vision_embeddings, vision_hidden_states.<0..layers> (the last before post_layernorm),
//   vision_last_hidden_state            [nb_h, nb_w, vision_hidden]   (the image's own patch grid)
//   connector_modality_projection       [nb_h, nb_w, text_hidden]
//   connector_output                    [n_latents, text_hidden]
// and by Forward (not DecodeBatch): text_hidden_states.<0..layers> [n, text_hidden] (0 = embeddings after the
// image merge, the last = after the final norm), logits [n or 1, vocab].
using DumpFn =
    std::function<void(const std::string& name, const float* data, const std::vector<int64_t>& shape)>;

struct ModelLoadOptions {
  // Storage of the Linear weight matrices after loading. kF32 is the exact parity path; kBF16 halves memory
  // (converted while streaming through the mmapped shards); block formats quantize at load time.
  WeightFormat matrix_format = WeightFormat::kF32;
  ThreadPool* pool = nullptr;  // used for conversion and compute (not owned)
  // Options of every Linear layer's MatMul. Default: exact float32 arithmetic (the parity path). bf16_dot
  // runs the large-M products (vision, connector, prefill) on vdpbf16ps with the activations rounded to bf16
  // (~2x faster, relative error per product <= 2^-8); decode (M <= 4) is unaffected. int8_dot runs the
  // large-M products of q8_0/q4_0 matrices on int8 dot products instead (activations quantized per 32-block,
  // as decode always does for those formats); the engine sets both unless bf16_dot is "off".
  MatMulOptions matmul;
  // Lay out the vision-encoder and connector matrices once as bf16 GEMM panels (weights.h PackImageWeights)
  // on the first image instead of re-packing them per product. Off by default: it saves ~5 % of the
  // connector per image but costs one fresh allocation of their size (2.3 GB for idefics2-8b; first touch of
  // fresh memory ran at 0.3 GB/s on the measurement VM, docs/performance.md).
  bool pack_image_weights = false;
  // Copy the text decoder's matrices and lm_head out of the mmapped files into huge-page memory (llama.cpp's
  // --no-mmap). Decode reads every one of them per token and streamed ~1.4-2x faster from 2 MiB pages than
  // from the file's 4 KiB pages on the measurement VM; loading then first-touches their size (seconds per GB
  // on that VM).
  bool no_mmap = false;
  std::function<void(double fraction)> progress;  // 0..1 while loading, may be empty
};

// The KV cache of one sequence: rotated keys and values for every text layer.
class KvCache {
 public:
  virtual ~KvCache() = default;
  virtual int64_t size() const = 0;      // tokens already in the cache (= next position)
  virtual int64_t capacity() const = 0;  // max tokens
  virtual void Clear() = 0;
  virtual void Truncate(int64_t n) = 0;  // keep the first n tokens (n <= size())
};

// Not thread-safe: one call at a time per model (it reuses internal scratch buffers); the pool passed at load
// parallelizes each call. KvCache objects are independent and may be kept across calls.
class Idefics2Model {
 public:
  virtual ~Idefics2Model() = default;

  // Loads and checks every weight (all problems reported at once) from a hub folder.
  static StatusOr<std::unique_ptr<Idefics2Model>> Load(const ModelFolder& folder,
                                                       const ModelLoadOptions& opts);

  virtual const Idefics2Config& config() const = 0;
  // Bytes held by the loaded weights (resident after conversion; mmapped f32 counts its mapping).
  virtual size_t weight_bytes() const = 0;

  // With ModelLoadOptions::pack_image_weights, lays out the vision-encoder and connector weights for the bf16
  // GEMM (weights.h PackImageWeights) if they will run on it; EncodeImages does this on its first call. Idempotent; returns the bytes packed by this call.
  virtual size_t PrepareImageWeights() = 0;

  // Vision encoder + connector for each unpadded (sub-)image, in order.
  // Returns [images.size() * n_latents, text_hidden] image features (row k of image i replaces the k-th
  // <image> token of that image). Each image runs on its own nb_h x nb_w = (h/14) x (w/14) patch grid (the
  // remainder pixels are dropped, as the conv does). Errors (InvalidArgument, naming "image <i>"): smaller
  // than one patch, more than image_size/patch_size patches per side, chw size != 3*h*w.
  virtual StatusOr<std::vector<float>> EncodeImages(const std::vector<PixelImage>& images,
                                                    const DumpFn& dump = nullptr) = 0;

  // A cache for `capacity` tokens, clamped to [0, text max_position_embeddings] (0 if the allocation fails),
  // allocated once; pages are touched as tokens are added.
  // Memory: 2 * text_layers * kv_heads * head_dim * 4 bytes per token (256 KiB/token for idefics2-8b in
  // float32).
  virtual std::unique_ptr<KvCache> NewCache(int64_t capacity) const = 0;

  // Runs the decoder over n new tokens at positions cache.size() .. cache.size()+n-1 and appends them to the
  // cache. Tokens equal to image_token_id take consecutive rows of image_features (exactly that many rows
  // must be given: n_feature_rows = count of image tokens among ids). logits: [n, vocab] when all_positions,
  // else [1, vocab] for the last position. Errors: over capacity, feature count mismatch, id out of vocab.
  // Exception: a single token with no feature rows is a decode step and an image token then uses its
  // embedding row (transformers merges features only at prefill). Nothing is appended to the cache on error.
  virtual Status Forward(const int32_t* ids, int64_t n, const float* image_features, int64_t n_feature_rows,
                         KvCache& cache, float* logits, bool all_positions, const DumpFn& dump = nullptr) = 0;

  // One decode step for several independent sequences at once (continuous batching): sequence s takes token
  // ids[s] at position caches[s]->size(). logits: [n_seqs, vocab]. Same numbers as n_seqs Forward calls.
  virtual Status DecodeBatch(const int32_t* ids, KvCache* const* caches, int64_t n_seqs, float* logits) = 0;
};

}  // namespace idefics
