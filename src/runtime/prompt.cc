// Prompt building (see prompt.h): chat template or raw prompt, image placeholder checks, <image> expansion,
// tokenization with BOS, image decoding + preprocessing. Mirrors Idefics2Processor.__call__.
#include "runtime/prompt.h"

#include <nlohmann/json.hpp>

#include "image/decode.h"
#include "image/image_processor.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/processor_text.h"
#include "tokenizer/tokenizer.h"

namespace idefics {
namespace {

constexpr std::string_view kImagePlaceholder = "<image>";

std::string ImageName(const ContentPart& part, size_t index) {
  if (part.kind == ContentPart::Kind::kImagePath) return "image '" + part.data + "'";
  return "image #" + std::to_string(index + 1);
}

}  // namespace

StatusOr<PromptText> RenderPrompt(const GenerationRequest& request, const std::string& chat_template_source) {
  if (request.raw_prompt || chat_template_source.empty()) return RenderPrompt(request, nullptr);
  ASSIGN_OR_RETURN(tokenizer::ChatTemplate tmpl, tokenizer::ChatTemplate::FromSource(chat_template_source));
  return RenderPrompt(request, &tmpl);
}

int64_t CountImagePlaceholders(std::string_view text) {
  return tokenizer::CountImageTokens(text, kImagePlaceholder);
}

StatusOr<PromptText> RenderPrompt(const GenerationRequest& request,
                                  const tokenizer::ChatTemplate* chat_template,
                                  const nlohmann::json& template_vars) {
  PromptText out;
  if (request.raw_prompt) {
    out.text = *request.raw_prompt;
    for (const ContentPart& p : request.raw_images) {
      if (!p.is_image()) return InvalidArgument("raw_images may only hold images, got a text part");
      out.images.push_back(&p);
    }
  } else {
    if (request.messages.empty()) return InvalidArgument("the request has no messages");
    if (!chat_template) {
      return InvalidArgument(
          "the model folder has no chat template (processor_config.json / chat_template.json); "
          "use a raw prompt");
    }
    // The template sees messages as transformers passes them: {role, content: [{type: text, text}, {type:
    // image}]}.
    nlohmann::json messages = nlohmann::json::array();
    for (size_t m = 0; m < request.messages.size(); ++m) {
      const Message& msg = request.messages[m];
      if (msg.role.empty()) return InvalidArgument("message " + std::to_string(m) + " has no role");
      nlohmann::json content = nlohmann::json::array();
      for (const ContentPart& p : msg.content) {
        if (p.is_image()) {
          content.push_back({{"type", "image"}});
          out.images.push_back(&p);
        } else {
          content.push_back({{"type", "text"}, {"text", p.data}});
        }
      }
      if (content.empty()) return InvalidArgument("message " + std::to_string(m) + " has no content");
      messages.push_back({{"role", msg.role}, {"content", std::move(content)}});
    }
    ASSIGN_OR_RETURN(out.text, chat_template->Render(messages, request.add_generation_prompt, template_vars));
  }
  const int64_t placeholders = CountImagePlaceholders(out.text);
  if (placeholders != static_cast<int64_t>(out.images.size())) {
    return InvalidArgument("the prompt has " + std::to_string(placeholders) + " <image> placeholder(s) but " +
                           std::to_string(out.images.size()) + " image(s) were given");
  }
  return out;
}

StatusOr<std::vector<int32_t>> TokenizePrompt(const tokenizer::Tokenizer& tok, const std::string& text,
                                              int64_t image_seq_len, bool split) {
  const int64_t n_images = CountImagePlaceholders(text);
  ASSIGN_OR_RETURN(
      std::string expanded,
      tokenizer::ExpandImageTokens(text, static_cast<int>(n_images), static_cast<int>(image_seq_len), split));
  return tok.Encode(expanded, /*add_bos=*/true);
}

StatusOr<std::vector<PixelImage>> LoadImages(const std::vector<const ContentPart*>& images,
                                             const PreprocessorConfig& preprocessor, bool split) {
  std::vector<PixelImage> out;
  ImageProcessor processor(preprocessor);
  // Idefics2Processor loads images with transformers' load_image, i.e. PIL convert("RGB"): alpha is dropped,
  // not composited (the image processor's own convert_to_rgb then sees RGB and does nothing).
  DecodeOptions decode;
  decode.alpha = AlphaMode::kDrop;
  for (size_t i = 0; i < images.size(); ++i) {
    const ContentPart& part = *images[i];
    // Decoding errors already name the file (or the name given for bytes).
    StatusOr<RgbImage> rgb = part.kind == ContentPart::Kind::kImagePath
                                 ? DecodeImageFile(part.data, decode)
                                 : DecodeImageBytes(reinterpret_cast<const uint8_t*>(part.data.data()),
                                                    part.data.size(), ImageName(part, i), decode);
    if (!rgb.ok()) return rgb.status();
    for (PixelImage& p : processor.Process(*rgb, split)) out.push_back(std::move(p));
  }
  return out;
}

}  // namespace idefics
