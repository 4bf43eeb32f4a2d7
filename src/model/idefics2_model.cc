// The Idefics2Model facade: loads the weights and wires vision encoder -> connector -> text model.
// Mirrors Idefics2ForConditionalGeneration (get_image_features + the language model forward).
#include "model/idefics2_model.h"

#include <string>

#include "model/connector.h"
#include "model/text_model.h"
#include "model/vision_encoder.h"
#include "model/weights.h"

namespace idefics {
namespace {

class Idefics2ModelImpl final : public Idefics2Model {
 public:
  Idefics2ModelImpl(const Idefics2Config& config, std::unique_ptr<ModelWeights> weights, ThreadPool* pool,
                    const MatMulOptions& mm, bool pack)
      : config_(config),
        pool_(pool),
        mm_(mm),
        pack_(pack),
        weights_(std::move(weights)),
        vision_(config_.vision, weights_->vision, pool, mm),
        connector_(config_, weights_->connector, pool, mm),
        text_(config_, weights_->text, pool, mm) {}

  const Idefics2Config& config() const override { return config_; }
  size_t weight_bytes() const override { return weights_->bytes; }

  size_t PrepareImageWeights() override {
    if (image_weights_packed_) return 0;
    image_weights_packed_ = true;
    return pack_ ? PackImageWeights(weights_.get(), mm_, pool_) : 0;
  }

  StatusOr<std::vector<float>> EncodeImages(const std::vector<PixelImage>& images,
                                            const DumpFn& dump) override {
    for (size_t i = 0; i < images.size(); ++i)
      RETURN_IF_ERROR(vision_.Validate(images[i]).WithContext("image " + std::to_string(i)));
    // The image-side matrices are laid out for the bf16 GEMM on first use (not at load: a text-only session
    // never pays for it).
    if (!images.empty()) PrepareImageWeights();
    const int64_t nl = config_.perceiver.resampler_n_latents, Ht = config_.text.hidden_size;
    std::vector<float> features(images.size() * nl * Ht);  // [n_images * n_latents, Ht]
    for (size_t i = 0; i < images.size(); ++i) {
      int64_t nb_h = 0, nb_w = 0;
      const float* vis = vision_.Encode(images[i], &nb_h, &nb_w, dump);  // [nb_h*nb_w, Hv]
      connector_.Run(vis, nb_h, nb_w, features.data() + i * nl * Ht, dump);
    }
    // The buffers serve every image of the call (a split image is 5 encodes; fresh memory is first touched at
    // 0.3-3 GB/s on the measurement VM), then are freed: kept, they would sit beside the KV cache and the
    // text buffers during prefill and decode (the peak resident memory of a 4-bit model).
    vision_.ReleaseScratch(/*keep_output=*/false);
    connector_.ReleaseScratch();
    return features;
  }

  std::unique_ptr<KvCache> NewCache(int64_t capacity) const override { return text_.NewCache(capacity); }

  Status Forward(const int32_t* ids, int64_t n, const float* image_features, int64_t n_feature_rows,
                 KvCache& cache, float* logits, bool all_positions, const DumpFn& dump) override {
    return text_.Forward(ids, n, image_features, n_feature_rows, cache, logits, all_positions, dump);
  }

  Status DecodeBatch(const int32_t* ids, KvCache* const* caches, int64_t n_seqs, float* logits) override {
    return text_.DecodeBatch(ids, caches, n_seqs, logits);
  }

 private:
  const Idefics2Config config_;
  ThreadPool* pool_;
  MatMulOptions mm_;
  bool pack_;
  bool image_weights_packed_ = false;
  std::unique_ptr<ModelWeights> weights_;
  VisionEncoder vision_;
  Connector connector_;
  TextModel text_;
};

}  // namespace

StatusOr<std::unique_ptr<Idefics2Model>> Idefics2Model::Load(const ModelFolder& folder,
                                                             const ModelLoadOptions& opts) {
  RETURN_IF_ERROR(folder.config.Validate().WithContext(folder.dir + "/config.json"));
  ASSIGN_OR_RETURN(std::unique_ptr<ModelWeights> weights, LoadModelWeights(folder.dir, folder.config, opts));
  return std::unique_ptr<Idefics2Model>(
      new Idefics2ModelImpl(folder.config, std::move(weights), opts.pool, opts.matmul, opts.pack_image_weights));
}

}  // namespace idefics
