// Built-in filters, tests, string/dict methods and global functions of the Jinja subset. Mirrors
// jinja2's filters/tests and the Python str/dict methods chat templates call. Case mapping is ASCII-only.
#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <string>

#include "tokenizer/jinja_limits.h"

namespace idefics::tokenizer::jinja {
namespace {

const Value kNone = nullptr;

bool IsPySpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string Capitalize(const std::string& s) {
  std::string out = Lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}
std::string Title(const std::string& s) {
  std::string out;
  bool prev_alpha = false;
  for (char c : s) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c));
    out += static_cast<char>(alpha ? (prev_alpha ? std::tolower(static_cast<unsigned char>(c))
                                                 : std::toupper(static_cast<unsigned char>(c)))
                                   : c);
    prev_alpha = alpha;
  }
  return out;
}

// str.strip([chars]) / lstrip / rstrip.
StatusOr<std::string> Strip(const std::string& s, const Value& chars, bool left, bool right) {
  if (!chars.is_null() && !IsUndefined(chars) && !chars.is_string()) {
    return InvalidArgument("strip() argument must be a string or none");
  }
  const bool custom = chars.is_string();
  const std::string set = custom ? chars.get<std::string>() : std::string();
  auto strip_char = [&](char c) { return custom ? set.find(c) != std::string::npos : IsPySpace(c); };
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e && strip_char(s[b])) ++b;
  }
  if (right) {
    while (e > b && strip_char(s[e - 1])) --e;
  }
  return s.substr(b, e - b);
}

StatusOr<std::string> RequireString(const Value& v, const std::string& what) {
  if (!v.is_string()) return InvalidArgument(what + " expects a string, got " + TypeName(v));
  return v.get<std::string>();
}

// str.startswith / endswith with a string or a list (tuple) of strings.
StatusOr<bool> AffixMatch(const std::string& s, const Value& affix, bool prefix) {
  std::vector<Value> options =
      affix.is_array() ? std::vector<Value>(affix.begin(), affix.end()) : std::vector<Value>{affix};
  for (const Value& o : options) {
    ASSIGN_OR_RETURN(std::string a, RequireString(o, prefix ? "startswith()" : "endswith()"));
    if (a.size() <= s.size() &&
        (prefix ? s.compare(0, a.size(), a) : s.compare(s.size() - a.size(), a.size(), a)) == 0) {
      return true;
    }
  }
  return false;
}

Value Split(const std::string& s, const Value& sep) {
  Value out = Value::array();
  if (!sep.is_string()) {  // whitespace split, empty fields dropped
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && IsPySpace(s[i])) ++i;
      size_t j = i;
      while (j < s.size() && !IsPySpace(s[j])) ++j;
      if (j > i) out.push_back(s.substr(i, j - i));
      i = j;
    }
    return out;
  }
  const std::string d = sep.get<std::string>();
  if (d.empty()) return out;
  size_t start = 0;
  while (true) {
    const size_t k = s.find(d, start);
    if (k == std::string::npos) break;
    out.push_back(s.substr(start, k - start));
    start = k + d.size();
  }
  out.push_back(s.substr(start));
  return out;
}

StatusOr<std::string> Replace(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t k = s.find(from, start);
    if (k == std::string::npos) break;
    out.append(s, start, k - start).append(to);
    RETURN_IF_ERROR(CheckStringSize(out.size()));  // a long `to` multiplies the size
    start = k + from.size();
  }
  RETURN_IF_ERROR(CheckStringSize(out.size() + (s.size() - start)));
  return out.append(s, start, std::string::npos);
}

// sep.join(items), both the str method and the filter.
StatusOr<std::string> Join(const std::vector<Value>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += ToPyString(items[i]);
    RETURN_IF_ERROR(CheckStringSize(out.size()));
  }
  return out;
}

StatusOr<Value> StringMethod(const std::string& s, const std::string& name, const CallArgs& a) {
  if (name == "capitalize") return Value(Capitalize(s));
  if (name == "upper") return Value(Upper(s));
  if (name == "lower") return Value(Lower(s));
  if (name == "title") return Value(Title(s));
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ASSIGN_OR_RETURN(std::string r, Strip(s, a.Get(0, "chars", kNone), name != "rstrip", name != "lstrip"));
    return Value(r);
  }
  if (name == "startswith" || name == "endswith") {
    ASSIGN_OR_RETURN(bool r, AffixMatch(s, a.Get(0, "prefix", Value("")), name == "startswith"));
    return Value(r);
  }
  if (name == "split") return Split(s, a.Get(0, "sep", kNone));
  if (name == "replace") {
    ASSIGN_OR_RETURN(std::string from, RequireString(a.Get(0, "old", kNone), "replace()"));
    ASSIGN_OR_RETURN(std::string to, RequireString(a.Get(1, "new", kNone), "replace()"));
    ASSIGN_OR_RETURN(std::string r, Replace(s, from, to));
    return Value(r);
  }
  if (name == "join") {
    const Value& items = a.Get(0, "iterable", kNone);
    if (!items.is_array()) return InvalidArgument("join() expects a list");
    ASSIGN_OR_RETURN(std::string r, Join(std::vector<Value>(items.begin(), items.end()), s));
    return Value(r);
  }
  return Unimplemented("string method '" + name + "()'");
}

StatusOr<Value> DictMethod(const Value& d, const std::string& name, const CallArgs& a) {
  if (name == "items") {
    Value out = Value::array();
    for (const auto& [k, v] : d.items()) out.push_back(Value::array({k, v}));
    return out;
  }
  if (name == "keys" || name == "values") {
    Value out = Value::array();
    for (const auto& [k, v] : d.items()) out.push_back(name == "keys" ? Value(k) : v);
    return out;
  }
  if (name == "get") {
    const Value& key = a.Get(0, "key", kNone);
    if (key.is_string() && d.contains(key.get<std::string>())) return d[key.get<std::string>()];
    return a.Get(1, "default", kNone);
  }
  return Unimplemented("dict method '" + name + "()'");
}

// json.dumps(v, ensure_ascii=False) without indent: ", " and ": " separators (transformers' tojson).
std::string PyJsonDump(const Value& v) {
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + PyJsonDump(v[i]);
    return out + "]";
  }
  if (v.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, item] : v.items()) {
      out += (first ? "" : ", ") + Value(k).dump(-1, ' ', false, Value::error_handler_t::replace) + ": " +
             PyJsonDump(item);
      first = false;
    }
    return out + "}";
  }
  if (IsUndefined(v)) return "null";
  return v.dump(-1, ' ', false, Value::error_handler_t::replace);
}

}  // namespace

StatusOr<Value> CallMethod(const Value& object, const std::string& name, const CallArgs& args) {
  if (object.is_string()) return StringMethod(object.get<std::string>(), name, args);
  if (object.is_object()) return DictMethod(object, name, args);
  if (IsUndefined(object)) return InvalidArgument("cannot call '" + name + "()' on an undefined value");
  return Unimplemented("method '" + name + "()' on a " + TypeName(object));
}

StatusOr<Value> ApplyFilter(const std::string& name, const Value& v, const CallArgs& a) {
  if (name == "length" || name == "count") {
    ASSIGN_OR_RETURN(int64_t n, Length(v));
    return Value(n);
  }
  if (name == "capitalize" || name == "upper" || name == "lower" || name == "title") {
    return StringMethod(ToPyString(v), name, CallArgs{});
  }
  if (name == "trim") {
    ASSIGN_OR_RETURN(std::string r, Strip(ToPyString(v), a.Get(0, "chars", kNone), true, true));
    return Value(r);
  }
  if (name == "string") return Value(ToPyString(v));
  if (name == "default" || name == "d") {
    const bool boolean = Truthy(a.Get(1, "boolean", Value(false)));
    if (IsUndefined(v) || (boolean && !Truthy(v))) return a.Get(0, "default_value", Value(""));
    return v;
  }
  if (name == "first" || name == "last") {
    ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    if (items.empty()) return Undefined();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") {
    ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    return Value(items);
  }
  if (name == "reverse") {
    if (v.is_string()) {
      ASSIGN_OR_RETURN(std::vector<Value> chars, Iterate(v));
      std::string out;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += it->get<std::string>();
      return Value(out);
    }
    ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    std::reverse(items.begin(), items.end());
    return Value(items);
  }
  if (name == "join") {
    ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    ASSIGN_OR_RETURN(std::string r, Join(items, ToPyString(a.Get(0, "d", Value("")))));
    return Value(r);
  }
  if (name == "replace") {
    return StringMethod(ToPyString(v), "replace", a);
  }
  if (name == "int") {
    if (v.is_number()) return Value(static_cast<int64_t>(v.get<double>()));
    if (v.is_string()) {
      try {
        return Value(static_cast<int64_t>(std::stoll(v.get<std::string>())));
      } catch (...) {
      }
    }
    return a.Get(0, "default", Value(0));
  }
  if (name == "float") {
    if (v.is_number()) return Value(v.get<double>());
    return a.Get(0, "default", Value(0.0));
  }
  if (name == "abs") {
    if (v.is_number_float() || v.get<int64_t>() == INT64_MIN) return Value(std::fabs(v.get<double>()));
    if (v.is_number()) return Value(std::llabs(v.get<int64_t>()));
    return InvalidArgument("abs of a " + TypeName(v));
  }
  if (name == "tojson") {
    const Value& indent = a.Get(0, "indent", kNone);
    if (IsUndefined(v)) return InvalidArgument("tojson of an undefined value");
    if (indent.is_number_integer()) {
      // Every line repeats the indent times its depth: a huge indent would build a huge string at once.
      if (indent.get<int64_t>() > 64)
        return ResourceExhausted("tojson indent above 64 (the chat template limit)");
      return Value(v.dump(indent.get<int>(), ' ', false, Value::error_handler_t::replace));
    }
    return Value(PyJsonDump(v));
  }
  if (name == "items") return CallMethod(v, "items", CallArgs{});
  return Unimplemented("filter '" + name + "'");
}

StatusOr<bool> ApplyTest(const std::string& name, const Value& v, const CallArgs& a) {
  if (name == "defined") return !IsUndefined(v);
  if (name == "undefined") return IsUndefined(v);
  if (name == "none") return v.is_null();
  if (name == "boolean") return v.is_boolean();
  if (name == "true") return v.is_boolean() && v.get<bool>();
  if (name == "false") return v.is_boolean() && !v.get<bool>();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_number_integer();
  if (name == "float") return v.is_number_float();
  if (name == "mapping") return v.is_object();
  if (name == "sequence") return v.is_array() || v.is_string() || v.is_object();
  if (name == "iterable") return v.is_array() || v.is_string() || v.is_object();
  if (name == "even" || name == "odd") {
    if (!v.is_number_integer()) return InvalidArgument("'" + name + "' test needs an integer");
    return (v.get<int64_t>() % 2 == 0) == (name == "even");
  }
  if (name == "eq" || name == "equalto" || name == "sameas") return Equal(v, a.Get(0, "other", kNone));
  if (name == "ne") return !Equal(v, a.Get(0, "other", kNone));
  if (name == "in") return Contains(a.Get(0, "seq", Value::array()), v);
  return Unimplemented("test '" + name + "'");
}

StatusOr<Value> CallGlobal(const std::string& name, const CallArgs& args, bool* found) {
  *found = true;
  if (name == "namespace" || name == "dict") {
    Value ns = Value::object();
    if (!args.positional.empty()) return InvalidArgument(name + "() takes keyword arguments only");
    for (const auto& [k, v] : args.keyword) ns[k] = v;
    return ns;
  }
  if (name == "range") {
    int64_t p[3] = {0, 0, 1};
    for (const Value& v : args.positional) {
      if (!v.is_number_integer()) return InvalidArgument("range() expects integers");
    }
    const size_t n = args.positional.size();
    if (n == 0 || n > 3) return InvalidArgument("range() takes 1 to 3 arguments");
    if (n == 1) p[1] = args.positional[0].get<int64_t>();
    for (size_t i = 0; n > 1 && i < n; ++i) p[i] = args.positional[i].get<int64_t>();
    if (p[2] == 0) return InvalidArgument("range() step must not be zero");
    // Python's len(range(start, stop, step)) in unsigned arithmetic: the distance between two int64 values
    // always fits in a uint64, and wrapping sums land back on the exact item.
    const auto u = [](int64_t x) { return static_cast<uint64_t>(x); };
    const bool up = p[2] > 0;
    const uint64_t step = up ? u(p[2]) : 0 - u(p[2]);
    const bool empty = up ? p[1] <= p[0] : p[1] >= p[0];
    const uint64_t length = empty ? 0 : ((up ? u(p[1]) - u(p[0]) : u(p[0]) - u(p[1])) - 1) / step + 1;
    if (length > static_cast<uint64_t>(kMaxRangeLength)) {  // jinja2's sandbox (transformers) has MAX_RANGE
      return ResourceExhausted("range() of " + std::to_string(length) +
                               " items exceeds the chat template limit of " +
                               std::to_string(kMaxRangeLength));
    }
    Value out = Value::array();
    for (uint64_t k = 0; k < length; ++k) out.push_back(static_cast<int64_t>(u(p[0]) + k * u(p[2])));
    return out;
  }
  *found = false;
  return Value();
}

}  // namespace idefics::tokenizer::jinja
