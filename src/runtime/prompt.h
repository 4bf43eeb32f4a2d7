// Prompt building: chat messages (or a raw prompt) -> prompt text -> `<image>` expansion -> token ids with
// BOS, and the request's images decoded + preprocessed in order. Mirrors Idefics2Processor.__call__ together
// with apply_chat_template(add_generation_prompt=True).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "idefics/engine.h"
#include "idefics/status.h"
#include "image/image_types.h"
#include "io/model_config.h"

namespace idefics {
namespace tokenizer {
class ChatTemplate;
class Tokenizer;
}  // namespace tokenizer

// The prompt before expansion and the image parts its "<image>" placeholders stand for, in order.
struct PromptText {
  std::string text;
  std::vector<const ContentPart*> images;  // point into the request
};

// Chat mode: renders request.messages with `chat_template` (each image part is {"type": "image"}, which the
// idefics2 template writes as "<image>"); `template_vars` are extra template variables (bos_token, ...).
// Raw mode: the raw prompt as is. Either way the number of "<image>" in the text must equal the number of
// images. chat_template may be null when the folder has none (then only raw mode works).
StatusOr<PromptText> RenderPrompt(const GenerationRequest& request,
                                  const tokenizer::ChatTemplate* chat_template,
                                  const nlohmann::json& template_vars = nlohmann::json::object());

// The same with a template given as source text (parsed on every call; prefer the parsed form).
StatusOr<PromptText> RenderPrompt(const GenerationRequest& request, const std::string& chat_template_source);

// Number of literal "<image>" occurrences.
int64_t CountImagePlaceholders(std::string_view text);

// Expands every "<image>" (F I x image_seq_len F, x5 with splitting, F F merged) and encodes with BOS.
StatusOr<std::vector<int32_t>> TokenizePrompt(const tokenizer::Tokenizer& tok, const std::string& text,
                                              int64_t image_seq_len, bool split);

// Decodes each image (file or bytes) and runs the image processor: 1 PixelImage per image, 5 when split.
// Errors name the image (its path, or "image #k" for bytes) and what is wrong with it.
StatusOr<std::vector<PixelImage>> LoadImages(const std::vector<const ContentPart*>& images,
                                             const PreprocessorConfig& preprocessor, bool split);

}  // namespace idefics
