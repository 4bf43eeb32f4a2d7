// Chat templates: finds a model folder's Jinja chat template and renders conversations with it.
// Mirrors transformers' ProcessorMixin / PreTrainedTokenizerBase.apply_chat_template(tokenize=False).
#include "tokenizer/chat_template.h"

#include <filesystem>

#include "core/mapped_file.h"
#include "tokenizer/tokenizer.h"

namespace idefics::tokenizer {

using nlohmann::json;

namespace {

// Reads the "chat_template" entry of a JSON file; "" when the file or the entry is absent.
StatusOr<std::string> TemplateFromJson(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::string();
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(path + ": not a valid JSON object");
  auto it = j.find("chat_template");
  if (it == j.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {  // named templates: [{"name": "default", "template": "..."}, ...]
    for (const json& t : *it) {
      if (t.is_object() && t.value("name", json()) == "default" && t.contains("template") &&
          t["template"].is_string()) {
        return t["template"].get<std::string>();
      }
    }
    return InvalidArgument(path + ": chat_template is a list without a \"default\" template");
  }
  return InvalidArgument(path + ": chat_template must be a string or a list of named templates");
}

}  // namespace

StatusOr<std::string> LoadChatTemplateSource(const std::string& model_dir) {
  const std::string jinja_path = model_dir + "/chat_template.jinja";
  std::error_code ec;
  if (std::filesystem::exists(jinja_path, ec)) return ReadTextFile(jinja_path);
  for (const char* file : {"chat_template.json", "processor_config.json", "tokenizer_config.json"}) {
    ASSIGN_OR_RETURN(std::string source, TemplateFromJson(model_dir + "/" + file));
    if (!source.empty()) return source;
  }
  return NotFound(
      model_dir +
      ": no chat template (looked in chat_template.jinja, chat_template.json, processor_config.json, "
      "tokenizer_config.json)");
}

json SpecialTokenVariables(const Tokenizer& tokenizer) {
  return json{{"bos_token", tokenizer.bos_token()},
              {"eos_token", tokenizer.eos_token()},
              {"unk_token", tokenizer.unk_token()},
              {"pad_token", tokenizer.pad_token()},
              {"additional_special_tokens", tokenizer.additional_special_tokens()}};
}

StatusOr<ChatTemplate> ChatTemplate::FromSource(std::string_view source) {
  ASSIGN_OR_RETURN(jinja::Template t, jinja::Template::Parse(source));
  return ChatTemplate(std::move(t));
}

StatusOr<ChatTemplate> ChatTemplate::FromModelDir(const std::string& model_dir) {
  ASSIGN_OR_RETURN(std::string source, LoadChatTemplateSource(model_dir));
  auto t = FromSource(source);
  if (!t.ok()) return t.status().WithContext(model_dir);
  t->origin_ = model_dir;
  return t;
}

StatusOr<std::string> ChatTemplate::Render(const json& messages, bool add_generation_prompt,
                                           const json& extra_vars) const {
  if (!messages.is_array()) return InvalidArgument("chat messages must be a JSON array");
  if (!extra_vars.is_object()) return InvalidArgument("chat template variables must be a JSON object");
  json context = extra_vars;
  context["messages"] = messages;
  context["add_generation_prompt"] = add_generation_prompt;
  auto out = template_.Render(context);
  if (!out.ok() && !origin_.empty()) return out.status().WithContext(origin_);  // as parse errors are
  return out;
}

StatusOr<std::string> RenderChatTemplate(std::string_view template_source, const json& messages,
                                         bool add_generation_prompt, const json& extra_vars) {
  ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::FromSource(template_source));
  return t.Render(messages, add_generation_prompt, extra_vars);
}

}  // namespace idefics::tokenizer
