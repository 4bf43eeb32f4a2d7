// Values of the Jinja interpreter (nlohmann::json plus an "undefined" marker) and their Python semantics:
// truthiness, str(), repr(), equality and ordering. Mirrors how jinja2 renders Python objects.
#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "tokenizer/utf8.h"

namespace idefics::tokenizer::jinja {

const Value& CallArgs::Get(size_t i, const char* name, const Value& fallback) const {
  if (i < positional.size()) return positional[i];
  for (const auto& [k, v] : keyword) {
    if (k == name) return v;
  }
  return fallback;
}

bool Truthy(const Value& v) {
  switch (v.type()) {
    case Value::value_t::null:
    case Value::value_t::discarded:
      return false;
    case Value::value_t::boolean:
      return v.get<bool>();
    case Value::value_t::number_integer:
      return v.get<int64_t>() != 0;
    case Value::value_t::number_unsigned:
      return v.get<uint64_t>() != 0;
    case Value::value_t::number_float:
      return v.get<double>() != 0.0;
    case Value::value_t::string:
      return !v.get_ref<const std::string&>().empty();
    case Value::value_t::array:
    case Value::value_t::object:
      return !v.empty();
    default:
      return true;
  }
}

namespace {

std::string FloatToPy(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

std::string ToPyString(const Value& v) {
  switch (v.type()) {
    case Value::value_t::discarded:
      return "";
    case Value::value_t::null:
      return "None";
    case Value::value_t::boolean:
      return v.get<bool>() ? "True" : "False";
    case Value::value_t::number_integer:
      return std::to_string(v.get<int64_t>());
    case Value::value_t::number_unsigned:
      return std::to_string(v.get<uint64_t>());
    case Value::value_t::number_float:
      return FloatToPy(v.get<double>());
    case Value::value_t::string:
      return v.get<std::string>();
    default:
      return Repr(v);
  }
}

std::string Repr(const Value& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    const char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    std::string out(1, q);
    for (char c : s) {
      if (c == q || c == '\\') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\r') {
        out += "\\r";
      } else {
        out += c;
      }
    }
    return out + q;
  }
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + Repr(v[i]);
    return out + "]";
  }
  if (v.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, item] : v.items()) {
      out += (first ? "" : ", ") + Repr(Value(k)) + ": " + Repr(item);
      first = false;
    }
    return out + "}";
  }
  return ToPyString(v);
}

std::string TypeName(const Value& v) {
  switch (v.type()) {
    case Value::value_t::discarded:
      return "undefined";
    case Value::value_t::null:
      return "none";
    case Value::value_t::boolean:
      return "boolean";
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned:
      return "integer";
    case Value::value_t::number_float:
      return "float";
    case Value::value_t::string:
      return "string";
    case Value::value_t::array:
      return "list";
    case Value::value_t::object:
      return "dict";
    default:
      return "value";
  }
}

bool Equal(const Value& a, const Value& b) {
  if (IsUndefined(a) || IsUndefined(b)) return IsUndefined(a) && IsUndefined(b);
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

StatusOr<bool> Compare(const std::string& op, const Value& a, const Value& b) {
  int c;
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    c = x < y ? -1 : (x > y ? 1 : 0);
  } else if (a.is_string() && b.is_string()) {
    c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
  } else {
    return InvalidArgument("'" + op + "' is not supported between " + TypeName(a) + " and " + TypeName(b));
  }
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

StatusOr<bool> Contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) return InvalidArgument("'in <string>' requires a string, not " + TypeName(item));
    return container.get_ref<const std::string&>().find(item.get_ref<const std::string&>()) !=
           std::string::npos;
  }
  if (container.is_array()) {
    for (const Value& x : container) {
      if (Equal(x, item)) return true;
    }
    return false;
  }
  if (container.is_object()) return item.is_string() && container.contains(item.get<std::string>());
  if (IsUndefined(container)) return false;
  return InvalidArgument("'in' is not supported for " + TypeName(container));
}

StatusOr<int64_t> Length(const Value& v) {
  if (v.is_string()) {
    int64_t n = 0;
    for (char c : v.get_ref<const std::string&>()) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    return n;
  }
  if (v.is_array() || v.is_object()) return static_cast<int64_t>(v.size());
  if (IsUndefined(v)) return 0;
  return InvalidArgument("object of type " + TypeName(v) + " has no length");
}

int Depth(const Value& v, int limit) {
  if (!v.is_array() && !v.is_object()) return 0;
  if (limit <= 0) return 1;
  int d = 0;
  for (const Value& item : v) {
    d = std::max(d, Depth(item, limit - 1));
    if (d >= limit) break;
  }
  return d + 1;
}

StatusOr<std::vector<Value>> Iterate(const Value& v) {
  std::vector<Value> out;
  if (v.is_array()) {
    out.assign(v.begin(), v.end());
  } else if (v.is_object()) {
    for (const auto& [k, item] : v.items()) out.emplace_back(k);
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    size_t i = 0;
    while (i < s.size()) {
      size_t len = 0;
      ScanUtf8Char(p + i, s.size() - i, &len);
      out.emplace_back(s.substr(i, len));
      i += len;
    }
  } else if (!IsUndefined(v)) {
    return InvalidArgument("cannot iterate over " + TypeName(v));
  }
  return out;
}

}  // namespace idefics::tokenizer::jinja
