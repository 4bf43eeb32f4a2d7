// Parser of the Jinja subset used by chat templates: turns lexer tokens into the statement tree of
// jinja_ast.h. Mirrors jinja2.parser's grammar and operator precedence for the supported constructs.
#pragma once

#include <string_view>

#include "idefics/status.h"
#include "tokenizer/jinja_ast.h"

namespace idefics::tokenizer::jinja {

// Parses a whole template. Syntax errors are InvalidArgument, constructs outside the subset (macro,
// include, call blocks, ...) are Unimplemented; both name the construct and its line and column.
StatusOr<Body> Parse(std::string_view source);

}  // namespace idefics::tokenizer::jinja
