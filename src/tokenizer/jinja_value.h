// Values of the Jinja interpreter (nlohmann::json plus an "undefined" marker) and their Python semantics:
// truthiness, str(), repr(), equality and ordering. Mirrors how jinja2 renders Python objects.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "idefics/status.h"

namespace idefics::tokenizer::jinja {

using Value = nlohmann::json;

// Jinja's Undefined (a missing variable, key or attribute): renders as "", is falsy, "is defined" is false.
// Represented by a discarded json value, which JSON input can never produce.
inline Value Undefined() {
  return Value(Value::value_t::discarded);
}
inline bool IsUndefined(const Value& v) {
  return v.is_discarded();
}

// Arguments of a filter, method, test or function call.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  // The positional argument `i`, else the keyword argument `name`, else `fallback`.
  const Value& Get(size_t i, const char* name, const Value& fallback) const;
};

// Python truthiness (None, False, 0, "", [], {} and undefined are false).
bool Truthy(const Value& v);
// Python str(): strings verbatim, None -> "None", True -> "True", 1.0 -> "1.0", lists/dicts as repr.
std::string ToPyString(const Value& v);
// Python repr(): strings quoted.
std::string Repr(const Value& v);
// A short type name for error messages ("string", "list", "undefined", ...).
std::string TypeName(const Value& v);
// Python ==.
bool Equal(const Value& a, const Value& b);
// Python <, <=, >, >= on two numbers or two strings; InvalidArgument otherwise.
StatusOr<bool> Compare(const std::string& op, const Value& a, const Value& b);
// Python "a in b" for a string, list or dict `b`.
StatusOr<bool> Contains(const Value& container, const Value& item);
// Python len() of a string (in code points), list or dict.
StatusOr<int64_t> Length(const Value& v);
// Nesting depth of v (a scalar is 0, [] and [1] are 1, [[1]] is 2), counted no further than limit + 1 so
// that the recursion itself stays bounded.
int Depth(const Value& v, int limit);
// The items a for loop visits: list elements, dict keys, string characters.
StatusOr<std::vector<Value>> Iterate(const Value& v);

}  // namespace idefics::tokenizer::jinja
