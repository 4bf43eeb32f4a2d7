// The generation loop (see generator.h): vision, prefill, decode with streaming. Mirrors transformers'
// generate() for one sequence: image features computed once at prefill, the last token never fed back.
#include "runtime/generator.h"

#include <algorithm>
#include <chrono>
#include <span>

#include "core/check.h"
#include "core/stopwatch.h"
#include "model/idefics2_model.h"

namespace idefics {
Status RunGeneration(const GeneratorInputs& in, const TextCallback& on_text, const GenerateOptions& options,
                     GenerationResult* result) {
  using Clock = std::chrono::steady_clock;
  Idefics2Model& model = *in.model;
  const std::vector<int32_t>& ids = in.prompt->ids;
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t vocab = model.config().text.vocab_size;
  const int64_t hidden = model.config().text.hidden_size;
  KvCache& cache = *in.cache;
  std::vector<int32_t>& cached = *in.cached_ids;
  if (n == 0) return InvalidArgument("the prompt has no tokens");

  // Reuse the longest common prefix of what the cache holds, keeping at least one token to compute (its
  // logits start decoding). A dump or all-position logits need the whole prompt computed.
  int64_t keep = 0;
  if (!options.dump && !options.prompt_logits) {
    const int64_t limit = std::min<int64_t>({static_cast<int64_t>(cached.size()), cache.size(), n - 1});
    while (keep < limit && cached[keep] == ids[keep]) ++keep;
  }
  cache.Truncate(std::min(keep, cache.size()));
  cached.resize(keep);

  // Image tokens before `keep` are already in the cache; the rest take rows of the features of the
  // sub-images from first_image on (skipping rows of a sub-image that was cut in the middle).
  const int64_t image_tokens_total = std::count(ids.begin(), ids.end(), in.image_token_id);
  const int64_t image_tokens_kept = std::count(ids.begin(), ids.begin() + keep, in.image_token_id);
  const int64_t n_images = static_cast<int64_t>(in.prompt->images.size());
  if (image_tokens_total != n_images * in.image_seq_len) {
    return InternalError("prompt has " + std::to_string(image_tokens_total) + " image tokens but " +
                         std::to_string(n_images) + " images x " + std::to_string(in.image_seq_len) +
                         " were prepared");
  }
  const int64_t first_image = in.image_seq_len > 0 ? image_tokens_kept / in.image_seq_len : 0;
  const int64_t skip_rows = image_tokens_kept - first_image * in.image_seq_len;
  std::vector<float> features;  // [n_subimages * image_seq_len, hidden]
  const auto t_vision = Clock::now();
  if (first_image < n_images) {
    if (options.progress) options.progress("vision", 0.0);
    std::vector<PixelImage> todo(in.prompt->images.begin() + first_image, in.prompt->images.end());
    ASSIGN_OR_RETURN(features, model.EncodeImages(todo, options.dump));
    if (options.progress) options.progress("vision", 1.0);
  }
  result->timings.vision_ms = MsSince(t_vision);
  const int64_t feature_rows = image_tokens_total - image_tokens_kept;
  const float* feature_ptr = features.empty() ? nullptr : features.data() + skip_rows * hidden;

  const auto t_prefill = Clock::now();
  if (options.progress) options.progress("prefill", 0.0);
  const int64_t n_new = n - keep;
  std::vector<float> logits(static_cast<size_t>((options.prompt_logits ? n_new : 1) * vocab));
  RETURN_IF_ERROR(model.Forward(ids.data() + keep, n_new, feature_ptr, feature_rows, cache, logits.data(),
                                options.prompt_logits, options.dump));
  cached.assign(ids.begin(), ids.end());
  result->timings.prefill_ms = MsSince(t_prefill);
  if (options.progress) options.progress("prefill", 1.0);
  if (options.prompt_logits) result->prompt_logits = logits;  // n_new == n: keep is 0 here

  // Decode: the logits of the last position pick a token; every token except the last is fed back.
  const auto t_decode = Clock::now();
  std::span<float> last(logits.data() + (options.prompt_logits ? (n_new - 1) * vocab : 0),
                        static_cast<size_t>(vocab));
  SequenceState& seq = *in.sequence;
  std::vector<float> step_logits(static_cast<size_t>(vocab));
  while (true) {
    SequenceState::Step step = seq.Advance(last);
    if (!step.text.empty() && on_text && !on_text(step.text)) seq.Cancel();
    if (seq.finished()) break;
    RETURN_IF_ERROR(model.Forward(&step.token, 1, nullptr, 0, cache, step_logits.data(), false, nullptr));
    cached.push_back(step.token);
    last = std::span<float>(step_logits);
  }
  result->timings.decode_ms = MsSince(t_decode);
  result->text = seq.text();
  result->generated_ids = seq.generated_ids();
  result->finish_reason = seq.finish_reason();
  result->timings.generated_tokens = static_cast<int64_t>(result->generated_ids.size());
  return Status::Ok();
}

}  // namespace idefics
