// Built-in filters, tests, string/dict methods and global functions of the Jinja subset. Mirrors
// jinja2's filters/tests and the Python str/dict methods chat templates call. Case mapping is ASCII-only.
#pragma once

#include <string>

#include "idefics/status.h"
#include "tokenizer/jinja_value.h"

namespace idefics::tokenizer::jinja {

// `value | name(args)`. Unimplemented for unknown filters.
StatusOr<Value> ApplyFilter(const std::string& name, const Value& value, const CallArgs& args);

// `value is name(args)`. Unimplemented for unknown tests.
StatusOr<bool> ApplyTest(const std::string& name, const Value& value, const CallArgs& args);

// `object.name(args)` for strings and dicts. Unimplemented for unknown methods.
StatusOr<Value> CallMethod(const Value& object, const std::string& name, const CallArgs& args);

// Global functions except raise_exception (handled by the evaluator): namespace(), range(), dict().
// Sets *found = false when `name` is not one of them.
StatusOr<Value> CallGlobal(const std::string& name, const CallArgs& args, bool* found);

}  // namespace idefics::tokenizer::jinja
