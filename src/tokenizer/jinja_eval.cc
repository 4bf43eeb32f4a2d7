// Interpreter of the parsed Jinja subset: evaluates expressions to json values and executes statements
// into the output string. Mirrors jinja2's runtime (scoping of for loops, loop.*, undefined values).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "tokenizer/jinja.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_limits.h"
#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_value.h"

namespace idefics::tokenizer::jinja {

struct Template::Impl {
  std::string source;
  Body body;
};

namespace {

enum class Flow { kNormal, kBreak, kContinue };

class Interpreter {
 public:
  Interpreter(const std::string& source, const Value& context) : src_(source) {
    scopes_.emplace_back();
    if (context.is_object()) {
      for (const auto& [k, v] : context.items()) scopes_.back()[k] = v;
    }
  }

  Status Run(const Body& body, std::string* out) {
    out_ = out;
    Flow flow = Flow::kNormal;
    return Exec(body, &flow);
  }

 private:
  Status At(size_t pos, const Status& s) const {
    if (s.ok()) return s;
    return Status(s.code(), "chat template " + DescribePosition(src_, pos) + ": " + s.message());
  }

  Value* Lookup(const std::string& name) {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return &f->second;
    }
    return nullptr;
  }

  // Recursion here is bounded by the parser: statements nest at most kMaxNestingDepth deep.
  Status Exec(const Body& body, Flow* flow) {
    for (const StmtPtr& s : body) {
      RETURN_IF_ERROR(ExecOne(*s, flow));
      if (*flow != Flow::kNormal) return Status::Ok();
    }
    return Status::Ok();
  }

  // Appends to the output, which a runaway template must not grow past kMaxOutputBytes.
  Status Emit(size_t pos, const std::string& text) {
    if (text.size() > kMaxOutputBytes - out_->size()) {
      return At(pos, ResourceExhausted("the rendered output exceeds the chat template limit of " +
                                       std::to_string(kMaxOutputBytes) + " bytes"));
    }
    out_->append(text);
    return Status::Ok();
  }

  // Counts one loop iteration against the render's kMaxLoopIterations (nested loops multiply).
  Status CountIteration(size_t pos) {
    if (++iterations_ <= kMaxLoopIterations) return Status::Ok();
    return At(pos, ResourceExhausted("the chat template runs more than " +
                                     std::to_string(kMaxLoopIterations) + " loop iterations (the limit)"));
  }

  // Values the template builds must stay shallow: printing and comparing them recurse per level.
  static Status CheckDepth(const Value& v) {
    if (Depth(v, kMaxValueDepth) <= kMaxValueDepth) return Status::Ok();
    return ResourceExhausted("a value nested deeper than " + std::to_string(kMaxValueDepth) +
                             " levels (the chat template limit)");
  }

  Status ExecOne(const Stmt& s, Flow* flow) {
    switch (s.kind) {
      case Stmt::Kind::kText:
        return Emit(s.pos, s.text);
      case Stmt::Kind::kOutput: {
        ASSIGN_OR_RETURN(Value v, Eval(*s.expr));
        return Emit(s.pos, ToPyString(v));
      }
      case Stmt::Kind::kIf:
        for (const auto& [cond, body] : s.branches) {
          ASSIGN_OR_RETURN(Value c, Eval(*cond));
          if (Truthy(c)) return Exec(body, flow);
        }
        return Exec(s.else_body, flow);
      case Stmt::Kind::kFor:
        return ExecFor(s, flow);
      case Stmt::Kind::kSet: {
        ASSIGN_OR_RETURN(Value v, Eval(*s.expr));
        if (s.attr.empty()) {
          scopes_.back()[s.targets[0]] = std::move(v);
          return Status::Ok();
        }
        Value* target = Lookup(s.targets[0]);
        if (!target || !target->is_object()) {
          return At(s.pos, InvalidArgument("cannot set attribute '" + s.attr + "' of '" + s.targets[0] +
                                           "' (not a namespace)"));
        }
        (*target)[s.attr] = std::move(v);
        return At(s.pos, CheckDepth(*target));
      }
      case Stmt::Kind::kBreak:
        *flow = Flow::kBreak;
        return Status::Ok();
      case Stmt::Kind::kContinue:
        *flow = Flow::kContinue;
        return Status::Ok();
    }
    return Status::Ok();
  }

  Status Bind(const Stmt& s, const Value& item) {
    if (s.targets.size() == 1) {
      scopes_.back()[s.targets[0]] = item;
      return Status::Ok();
    }
    if (!item.is_array() || item.size() != s.targets.size()) {
      return At(s.pos, InvalidArgument("cannot unpack " + TypeName(item) + " into " +
                                       std::to_string(s.targets.size()) + " loop variables"));
    }
    for (size_t k = 0; k < s.targets.size(); ++k) scopes_.back()[s.targets[k]] = item[k];
    return Status::Ok();
  }

  Status ExecFor(const Stmt& s, Flow* outer_flow) {
    ASSIGN_OR_RETURN(Value iterable, Eval(*s.expr));
    auto items_or = Iterate(iterable);
    if (!items_or.ok()) return At(s.expr->pos, items_or.status());
    std::vector<Value> items = std::move(items_or).value();
    scopes_.emplace_back();
    Status st = Status::Ok();
    if (s.cond) {  // the loop filter runs first, so loop.length counts only kept items
      std::vector<Value> kept;
      for (const Value& item : items) {
        st = CountIteration(s.pos);
        if (!st.ok()) break;
        st = Bind(s, item);
        if (!st.ok()) break;
        auto c = Eval(*s.cond);
        if (!c.ok()) {
          st = c.status();
          break;
        }
        if (Truthy(*c)) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const size_t n = items.size();
    for (size_t i = 0; st.ok() && i < n; ++i) {
      st = CountIteration(s.pos);
      if (!st.ok()) break;
      st = Bind(s, items[i]);
      if (!st.ok()) break;
      // Updated in place: rebuilding the object per iteration costs most of an empty iteration's time.
      Value& loop = scopes_.back()["loop"];
      if (!loop.is_object()) loop = Value::object();
      loop["index"] = i + 1;
      loop["index0"] = i;
      loop["first"] = i == 0;
      loop["last"] = i + 1 == n;
      loop["length"] = n;
      loop["revindex"] = n - i;
      loop["revindex0"] = n - i - 1;
      loop["previtem"] = i > 0 ? items[i - 1] : Undefined();
      loop["nextitem"] = i + 1 < n ? items[i + 1] : Undefined();
      Flow flow = Flow::kNormal;
      st = Exec(s.body, &flow);
      if (flow == Flow::kBreak) break;
    }
    scopes_.pop_back();
    RETURN_IF_ERROR(st);
    if (n == 0) return Exec(s.else_body, outer_flow);
    return Status::Ok();
  }

  StatusOr<CallArgs> EvalArgs(const Expr& e, size_t first) {
    CallArgs a;
    for (size_t i = first; i < e.args.size(); ++i) {
      ASSIGN_OR_RETURN(Value v, Eval(*e.args[i]));
      a.positional.push_back(std::move(v));
    }
    for (const auto& [k, x] : e.kwargs) {
      ASSIGN_OR_RETURN(Value v, Eval(*x));
      a.keyword.emplace_back(k, std::move(v));
    }
    return a;
  }

  // Recursion here is bounded by the parser: an expression tree is at most kMaxNestingDepth high.
  StatusOr<Value> Eval(const Expr& e) {
    auto r = EvalInner(e);
    // Only the expressions that build containers can nest deeper than their operands (a lookup returns a
    // value that was checked when built, or the caller's context, which is left as given).
    const bool builds = e.kind == Expr::Kind::kList || e.kind == Expr::Kind::kDict ||
                        e.kind == Expr::Kind::kCall || e.kind == Expr::Kind::kFilter ||
                        e.kind == Expr::Kind::kBinary;
    if (builds && r.ok() && (r->is_array() || r->is_object())) {
      Status depth = CheckDepth(*r);
      if (!depth.ok()) r = depth;
    }
    if (!r.ok() && r.status().message().rfind("chat template ", 0) != 0) return At(e.pos, r.status());
    return r;
  }

  StatusOr<Value> EvalInner(const Expr& e) {
    using K = Expr::Kind;
    switch (e.kind) {
      case K::kLiteral:
        return e.literal;
      case K::kName: {
        const Value* v = Lookup(e.name);
        return v ? *v : Undefined();
      }
      case K::kList: {
        Value out = Value::array();
        for (const ExprPtr& x : e.args) {
          ASSIGN_OR_RETURN(Value v, Eval(*x));
          out.push_back(std::move(v));
        }
        return out;
      }
      case K::kDict: {
        Value out = Value::object();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          ASSIGN_OR_RETURN(Value k, Eval(*e.args[i]));
          ASSIGN_OR_RETURN(Value v, Eval(*e.args[i + 1]));
          if (!k.is_string()) return InvalidArgument("dict keys must be strings, got " + TypeName(k));
          out[k.get<std::string>()] = std::move(v);
        }
        return out;
      }
      case K::kGetAttr: {
        ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
        return Subscript(obj, Value(e.name));
      }
      case K::kGetItem: {
        ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
        ASSIGN_OR_RETURN(Value key, Eval(*e.args[1]));
        return Subscript(obj, key);
      }
      case K::kSlice:
        return EvalSlice(e);
      case K::kCall:
        return EvalCall(e);
      case K::kFilter: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
        ASSIGN_OR_RETURN(CallArgs a, EvalArgs(e, 1));
        return ApplyFilter(e.name, v, a);
      }
      case K::kTest: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
        ASSIGN_OR_RETURN(CallArgs a, EvalArgs(e, 1));
        ASSIGN_OR_RETURN(bool r, ApplyTest(e.name, v, a));
        return Value(r != e.negated);
      }
      case K::kUnary: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
        if (e.name == "not") return Value(!Truthy(v));
        if (!v.is_number()) return InvalidArgument("unary '" + e.name + "' on a " + TypeName(v));
        if (e.name == "+") return v;
        if (v.is_number_float() || v.get<int64_t>() == INT64_MIN) return Value(-v.get<double>());
        return Value(-v.get<int64_t>());
      }
      case K::kBinary:
        return EvalBinary(e);
      case K::kCond: {
        ASSIGN_OR_RETURN(Value c, Eval(*e.args[1]));
        if (Truthy(c)) return Eval(*e.args[0]);
        if (e.args[2]) return Eval(*e.args[2]);
        return Undefined();
      }
    }
    return InternalError("unknown expression kind");
  }

  // obj[key] / obj.key: missing keys give undefined; subscripting undefined is an error (as jinja2).
  StatusOr<Value> Subscript(const Value& obj, const Value& key) {
    if (IsUndefined(obj)) {
      return InvalidArgument("cannot read " + Repr(key) + " of an undefined value");
    }
    if (obj.is_object()) {
      if (key.is_string()) {
        auto it = obj.find(key.get<std::string>());
        if (it != obj.end()) return *it;
      }
      return Undefined();
    }
    if ((obj.is_array() || obj.is_string()) && key.is_number_integer()) {
      std::vector<Value> chars;
      if (obj.is_string()) {
        ASSIGN_OR_RETURN(chars, Iterate(obj));
      }
      const auto n = static_cast<int64_t>(obj.is_array() ? obj.size() : chars.size());
      int64_t i = key.get<int64_t>();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Undefined();
      return obj.is_array() ? obj[static_cast<size_t>(i)] : chars[static_cast<size_t>(i)];
    }
    return Undefined();
  }

  StatusOr<Value> EvalSlice(const Expr& e) {
    ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
    int64_t p[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (!e.args[k + 1]) continue;
      ASSIGN_OR_RETURN(Value v, Eval(*e.args[k + 1]));
      if (v.is_null()) continue;
      if (!v.is_number_integer()) return InvalidArgument("slice indices must be integers");
      p[k] = v.get<int64_t>();
      given[k] = true;
    }
    if (p[2] == 0) return InvalidArgument("slice step cannot be zero");
    ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(obj));
    const auto n = static_cast<int64_t>(items.size());
    auto clamp = [&](int64_t i, bool is_given, int64_t dflt) {
      if (!is_given) return dflt;
      if (i < 0) i += n;
      if (p[2] > 0) return std::clamp<int64_t>(i, 0, n);
      return std::clamp<int64_t>(i, -1, n - 1);
    };
    const int64_t start = clamp(p[0], given[0], p[2] > 0 ? 0 : n - 1);
    const int64_t stop = clamp(p[1], given[1], p[2] > 0 ? n : -1);
    std::vector<Value> picked;
    for (int64_t i = start; p[2] > 0 ? i < stop : i > stop; i += p[2])
      picked.push_back(items[static_cast<size_t>(i)]);
    if (obj.is_string()) {
      std::string s;
      for (const Value& c : picked) s += c.get<std::string>();
      return Value(s);
    }
    return Value(picked);
  }

  StatusOr<Value> EvalCall(const Expr& e) {
    const Expr& callee = *e.args[0];
    ASSIGN_OR_RETURN(CallArgs a, EvalArgs(e, 1));
    if (callee.kind == Expr::Kind::kGetAttr) {
      ASSIGN_OR_RETURN(Value obj, Eval(*callee.args[0]));
      return CallMethod(obj, callee.name, a);
    }
    if (callee.kind == Expr::Kind::kName) {
      if (callee.name == "raise_exception") {
        return InvalidArgument("the chat template raised an exception: " +
                               ToPyString(a.Get(0, "message", Value(""))));
      }
      bool found = false;
      ASSIGN_OR_RETURN(Value v, CallGlobal(callee.name, a, &found));
      if (found) return v;
      return Unimplemented("function '" + callee.name + "()'");
    }
    return Unimplemented("calling an expression that is not a function or method");
  }

  static bool BothInt(const Value& a, const Value& b) {
    return a.is_number_integer() && b.is_number_integer();
  }

  StatusOr<Value> EvalBinary(const Expr& e) {
    const std::string& op = e.name;
    ASSIGN_OR_RETURN(Value a, Eval(*e.args[0]));
    if (op == "and") return Truthy(a) ? Eval(*e.args[1]) : StatusOr<Value>(a);
    if (op == "or") return Truthy(a) ? StatusOr<Value>(a) : Eval(*e.args[1]);
    ASSIGN_OR_RETURN(Value b, Eval(*e.args[1]));
    if (op == "==") return Value(Equal(a, b));
    if (op == "!=") return Value(!Equal(a, b));
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      ASSIGN_OR_RETURN(bool r, Compare(op, a, b));
      return Value(r);
    }
    if (op == "in" || op == "not in") {
      ASSIGN_OR_RETURN(bool r, Contains(b, a));
      return Value(r == (op == "in"));
    }
    if (op == "~") {
      std::string x = ToPyString(a), y = ToPyString(b);
      RETURN_IF_ERROR(CheckStringSize(x.size() + y.size()));
      return Value(x + y);
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) {
        const auto &x = a.get_ref<const std::string&>(), &y = b.get_ref<const std::string&>();
        RETURN_IF_ERROR(CheckStringSize(x.size() + y.size()));
        return Value(x + y);
      }
      if (a.is_array() && b.is_array()) {
        if (a.size() + b.size() > kMaxListLength) {
          return ResourceExhausted("a list of " + std::to_string(a.size() + b.size()) +
                                   " items exceeds the chat template limit of " +
                                   std::to_string(kMaxListLength));
        }
        Value out = a;
        for (const Value& x : b) out.push_back(x);
        return out;
      }
    }
    if (op == "*" && a.is_string() && b.is_number_integer()) {
      const std::string& unit = a.get_ref<const std::string&>();
      const int64_t times = std::max<int64_t>(b.get<int64_t>(), 0);  // Python: 'ab' * -1 == ''
      if (!unit.empty() && static_cast<uint64_t>(times) > kMaxStringBytes / unit.size()) {
        return ResourceExhausted("repeating a string of " + std::to_string(unit.size()) + " bytes " +
                                 std::to_string(times) + " times exceeds the chat template limit of " +
                                 std::to_string(kMaxStringBytes) + " bytes");
      }
      std::string out;
      if (unit.empty()) return Value(out);  // '' * 10**9 must not loop 10**9 times
      out.reserve(unit.size() * static_cast<size_t>(times));
      for (int64_t i = 0; i < times; ++i) out += unit;
      return Value(out);
    }
    if (!a.is_number() || !b.is_number()) {
      return InvalidArgument("unsupported operand types for '" + op + "': " + TypeName(a) + " and " +
                             TypeName(b));
    }
    if (BothInt(a, b) && op != "/" && op != "**") {
      const int64_t x = a.get<int64_t>(), y = b.get<int64_t>();
      int64_t r = 0;  // Python ints do not overflow; past int64 we fall back to floats below
      if (op == "+" && !__builtin_add_overflow(x, y, &r)) return Value(r);
      if (op == "-" && !__builtin_sub_overflow(x, y, &r)) return Value(r);
      if (op == "*" && !__builtin_mul_overflow(x, y, &r)) return Value(r);
      if (op == "+" || op == "-" || op == "*") return EvalFloat(op, a.get<double>(), b.get<double>(), a, b);
      if (y == 0) return InvalidArgument("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) return EvalFloat(op, a.get<double>(), b.get<double>(), a, b);
      int64_t q = x / y;
      r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {  // Python floors
        --q;
        r += y;
      }
      return Value(op == "//" ? q : r);
    }
    return EvalFloat(op, a.get<double>(), b.get<double>(), a, b);
  }

  static StatusOr<Value> EvalFloat(const std::string& op, double x, double y, const Value& a,
                                   const Value& b) {
    if (op == "+") return Value(x + y);
    if (op == "-") return Value(x - y);
    if (op == "*") return Value(x * y);
    if (op == "**") {
      const double r = std::pow(x, y);
      if (BothInt(a, b) && b.get<int64_t>() >= 0 && std::fabs(r) < 9e18)
        return Value(static_cast<int64_t>(r));
      return Value(r);
    }
    if (y == 0) return InvalidArgument("division by zero");
    if (op == "/") return Value(x / y);
    if (op == "//") return Value(std::floor(x / y));
    return Value(x - std::floor(x / y) * y);
  }

  const std::string& src_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::string* out_ = nullptr;
  int64_t iterations_ = 0;  // loop iterations so far in this render
};

}  // namespace

Template::Template() : impl_(std::make_unique<Impl>()) {}
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::~Template() = default;

StatusOr<Template> Template::Parse(std::string_view source) {
  Template t;
  t.impl_->source.assign(source);
  ASSIGN_OR_RETURN(t.impl_->body, jinja::Parse(t.impl_->source));
  return t;
}

StatusOr<std::string> Template::Render(const nlohmann::json& context) const {
  std::string out;
  Interpreter interp(impl_->source, context);
  RETURN_IF_ERROR(interp.Run(impl_->body, &out));
  return out;
}

}  // namespace idefics::tokenizer::jinja
