// The Engine-backed Backend (see engine_backend.h): the same prompt building, image preprocessing, sampler and
// stop rules as `idefics run`, with images encoded one at a time so their features can be cached.
#include "server/engine_backend.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "image/decode.h"
#include "image/image_processor.h"
#include "io/model_config.h"
#include "model/idefics2_model.h"

namespace idefics::server {
namespace {

// The runtime's SequenceState, plus ignore_eos (EOS logits set to -inf before sampling).
class EngineSequence : public SequenceDecoder {
 public:
  EngineSequence(SequenceState state, std::vector<int32_t> masked)
      : state_(std::move(state)), masked_(std::move(masked)) {}
  Step Advance(std::span<float> logits) override {
    for (int32_t id : masked_)
      if (id >= 0 && static_cast<size_t>(id) < logits.size()) logits[id] = -std::numeric_limits<float>::infinity();
    SequenceState::Step s = state_.Advance(logits);
    return Step{s.token, std::move(s.text), s.finish};
  }
  int64_t generated_tokens() const override { return static_cast<int64_t>(state_.generated_ids().size()); }

 private:
  SequenceState state_;
  std::vector<int32_t> masked_;
};

class EngineBackend : public Backend {
 public:
  EngineBackend(std::unique_ptr<Engine> engine, std::string name)
      : engine_(std::move(engine)), name_(std::move(name)), processor_(engine_->folder().preprocessor) {}

  std::string ModelName() const override { return name_; }
  int64_t ContextLength() const override { return engine_->context_length(); }
  bool DefaultImageSplitting() const override { return engine_->folder().preprocessor.do_image_splitting; }
  int64_t VocabSize() const override { return engine_->folder().config.text.vocab_size; }

  StatusOr<PreparedImage> PrepareImage(const std::string& bytes, bool split, int64_t max_pixels) const override {
    DecodeOptions opts;
    opts.max_pixels = max_pixels;
    // As the runtime's LoadImages (transformers' load_image): alpha dropped, not composited.
    opts.alpha = AlphaMode::kDrop;
    auto rgb = DecodeImageBytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "image", opts);
    if (!rgb.ok()) return rgb.status();
    PreparedImage out;
    out.sub_images = processor_.Process(*rgb, split);
    return out;
  }

  StatusOr<std::vector<int32_t>> BuildPrompt(const std::vector<ChatMessage>& messages, bool split) const override {
    GenerationRequest request;
    request.split = split;
    for (const ChatMessage& m : messages) {
      Message msg{m.role, {}};
      // Image parts only need to be images here: the template writes each as "<image>" (expanded by split).
      for (const ChatPart& p : m.parts)
        msg.content.push_back(p.is_image ? ContentPart::ImageBytes("") : ContentPart::Text(p.text));
      request.messages.push_back(std::move(msg));
    }
    return engine_->PromptIds(request);
  }

  std::unique_ptr<SequenceDecoder> NewSequence(const GenerationSettings& settings,
                                               const std::vector<int32_t>& prompt) const override {
    GenerationRequest request;
    request.sampling = settings.sampling;
    request.stop = settings.stop;
    request.max_tokens = settings.max_tokens;
    return std::make_unique<EngineSequence>(engine_->NewSequence(request, prompt),
                                            settings.ignore_eos ? engine_->eos_ids() : std::vector<int32_t>{});
  }

  StatusOr<std::vector<float>> EncodeImage(const PreparedImage& image) override {
    return engine_->model().EncodeImages(image.sub_images);
  }

  std::unique_ptr<KvCache> NewCache(int64_t capacity) override { return engine_->model().NewCache(capacity); }

  Status Prefill(const std::vector<int32_t>& ids, const std::vector<float>& features, KvCache& cache,
                 float* logits) override {
    const int64_t hidden = engine_->folder().config.text.hidden_size;
    const int64_t rows = static_cast<int64_t>(features.size()) / hidden;
    return engine_->model().Forward(ids.data(), static_cast<int64_t>(ids.size()),
                                    features.empty() ? nullptr : features.data(), rows, cache, logits,
                                    /*all_positions=*/false);
  }

  Status DecodeBatch(const int32_t* ids, KvCache* const* caches, int64_t n, float* logits) override {
    return engine_->model().DecodeBatch(ids, caches, n, logits);
  }

 private:
  std::unique_ptr<Engine> engine_;
  std::string name_;
  ImageProcessor processor_;
};

}  // namespace

std::unique_ptr<Backend> MakeEngineBackend(std::unique_ptr<Engine> engine, std::string model_name) {
  return std::make_unique<EngineBackend>(std::move(engine), std::move(model_name));
}

StatusOr<std::unique_ptr<Backend>> LoadEngineBackend(const EngineOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Load(options));
  std::string name = std::filesystem::path(options.model_dir).lexically_normal().filename().string();
  if (name.empty()) name = std::filesystem::path(options.model_dir).lexically_normal().parent_path().filename();
  if (name.empty()) name = "idefics2";
  return MakeEngineBackend(std::move(engine), std::move(name));
}

}  // namespace idefics::server
