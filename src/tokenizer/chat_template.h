// Chat templates: finds a model folder's Jinja chat template and renders conversations with it.
// Mirrors transformers' ProcessorMixin / PreTrainedTokenizerBase.apply_chat_template(tokenize=False).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "idefics/status.h"
#include "tokenizer/jinja.h"

namespace idefics::tokenizer {

class Tokenizer;

// The template source of `model_dir`, searched in this order: chat_template.jinja, chat_template.json
// ("chat_template"), processor_config.json ("chat_template"), tokenizer_config.json ("chat_template": a
// string, or a list of {"name", "template"} from which "default" is taken). NotFound naming the files
// when none has one.
StatusOr<std::string> LoadChatTemplateSource(const std::string& model_dir);

// The special-token variables transformers passes to templates: bos_token, eos_token, unk_token, pad_token,
// additional_special_tokens.
nlohmann::json SpecialTokenVariables(const Tokenizer& tokenizer);

// A parsed chat template; parse once, render per request (Render is const and thread-safe).
class ChatTemplate {
 public:
  static StatusOr<ChatTemplate> FromSource(std::string_view source);
  static StatusOr<ChatTemplate> FromModelDir(const std::string& model_dir);

  // Renders `messages` (a JSON array of {"role": "user"|"assistant"|"system", "content": string or
  // [{"type": "text", "text": ...}, {"type": "image"}, ...]}). The template sees `messages`,
  // `add_generation_prompt` and every key of `extra_vars` (e.g. SpecialTokenVariables(); keys of
  // `extra_vars` may not override the first two).
  StatusOr<std::string> Render(const nlohmann::json& messages, bool add_generation_prompt,
                               const nlohmann::json& extra_vars = nlohmann::json::object()) const;

 private:
  explicit ChatTemplate(jinja::Template t) : template_(std::move(t)) {}
  jinja::Template template_;
  std::string origin_;  // the model folder it came from (prefixes render errors), or empty
};

// One-shot parse + render of a template string.
StatusOr<std::string> RenderChatTemplate(std::string_view template_source, const nlohmann::json& messages,
                                         bool add_generation_prompt,
                                         const nlohmann::json& extra_vars = nlohmann::json::object());

}  // namespace idefics::tokenizer
