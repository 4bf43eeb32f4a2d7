// A Jinja template interpreter for the subset chat templates use ({{ }}, for/if/set, loop.*, filters,
// tests, string methods, raise_exception). Mirrors jinja2 rendering with trim_blocks + lstrip_blocks, the
// environment transformers' apply_chat_template uses.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "idefics/status.h"

namespace idefics::tokenizer::jinja {

struct Stmt;

class Template {
 public:
  // Parses `source` once; errors name the construct and its line/column (Unimplemented for constructs
  // outside the subset, InvalidArgument for syntax errors).
  static StatusOr<Template> Parse(std::string_view source);

  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  ~Template();

  // Renders with the top-level variables of `context` (a JSON object). A raise_exception(msg) in the
  // template returns InvalidArgument("... raised an exception: msg").
  StatusOr<std::string> Render(const nlohmann::json& context) const;

 private:
  Template();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace idefics::tokenizer::jinja
