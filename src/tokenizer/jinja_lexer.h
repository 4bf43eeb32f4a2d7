// Lexer of the Jinja subset used by chat templates: splits a template into text and tag tokens, applying
// whitespace control ({%- -%}) and the trim_blocks / lstrip_blocks settings transformers renders with.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "idefics/status.h"

namespace idefics::tokenizer::jinja {

enum class TokenKind {
  kText,        // literal template text (value)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,        // identifier or keyword (value)
  kString,      // string literal, escapes resolved (value)
  kInteger,     // value holds the digits
  kFloat,       // value holds the literal
  kOperator,    // value: one of == != <= >= // ** + - * / % ~ < > = ( ) [ ] { } , . : |
  kEnd,         // end of the template
};

struct Token {
  TokenKind kind;
  std::string value;
  size_t pos;  // byte offset in the template source
};

// Tokenizes `source`. Whitespace control is applied to the kText tokens: "-" strips all whitespace next to
// the tag; without "-", a block/comment tag drops the single newline after it (trim_blocks) and the
// spaces/tabs between the line start and itself (lstrip_blocks, disabled by "{%+"). One newline at the end
// of the template is dropped (keep_trailing_newline=False).
StatusOr<std::vector<Token>> Lex(std::string_view source);

// "line L, column C" of a byte offset, for error messages.
std::string DescribePosition(std::string_view source, size_t pos);

}  // namespace idefics::tokenizer::jinja
