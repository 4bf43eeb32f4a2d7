// Parser of the Jinja subset used by chat templates: turns lexer tokens into the statement tree of
// jinja_ast.h. Mirrors jinja2.parser's grammar and operator precedence for the supported constructs.
#include "tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>
#include <string>

#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_limits.h"

namespace idefics::tokenizer::jinja {
namespace {

using Kind = Expr::Kind;

// One level of parser recursion (a nested block or expression) for as long as it lives.
class Nest {
 public:
  explicit Nest(int* depth) : depth_(depth) { ++*depth_; }
  ~Nest() { --*depth_; }
  Nest(const Nest&) = delete;
  Nest& operator=(const Nest&) = delete;

 private:
  int* depth_;
};

StmtPtr MakeStmt(Stmt::Kind kind, size_t pos) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->pos = pos;
  return s;
}

class Parser {
 public:
  Parser(std::string_view src, std::vector<Token> tokens) : src_(src), toks_(std::move(tokens)) {}

  StatusOr<Body> ParseTemplate() {
    Body body;
    std::string end_tag;
    RETURN_IF_ERROR(ParseBody({}, &body, &end_tag));
    return body;
  }

 private:
  const Token& Peek(size_t ahead = 0) const { return toks_[std::min(i_ + ahead, toks_.size() - 1)]; }
  const Token& Advance() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }
  bool IsOp(const char* op, size_t ahead = 0) const {
    return Peek(ahead).kind == TokenKind::kOperator && Peek(ahead).value == op;
  }
  bool IsName(const char* name, size_t ahead = 0) const {
    return Peek(ahead).kind == TokenKind::kName && Peek(ahead).value == name;
  }
  bool AcceptOp(const char* op) {
    if (!IsOp(op)) return false;
    ++i_;
    return true;
  }
  bool AcceptName(const char* name) {
    if (!IsName(name)) return false;
    ++i_;
    return true;
  }
  Status Error(size_t pos, const std::string& what) const {
    return InvalidArgument("chat template " + DescribePosition(src_, pos) + ": " + what);
  }
  // The parser, the evaluator and the tree's destructor all recurse once per level, so a hostile template
  // nested thousands deep would overflow the stack: past kMaxNestingDepth it is a syntax error.
  Status TooDeep(size_t pos) const {
    return Error(pos, "nesting deeper than " + std::to_string(kMaxNestingDepth) + " levels (the limit)");
  }
  Status CheckDepth(size_t pos) const { return depth_ > kMaxNestingDepth ? TooDeep(pos) : Status::Ok(); }
  // Sets e's height from its children's. A chain such as 1+1+...+1 or x|f|f|...|f builds a tall tree
  // without recursing in the parser, hence this second check besides depth_.
  Status Seal(Expr* e) const {
    int h = 0;
    for (const ExprPtr& a : e->args) h = std::max(h, a ? a->height : 0);
    for (const auto& kv : e->kwargs) h = std::max(h, kv.second->height);
    e->height = h + 1;
    return e->height > kMaxNestingDepth ? TooDeep(e->pos) : Status::Ok();
  }
  Status Unsupported(size_t pos, const std::string& what) const {
    return Unimplemented("chat template " + DescribePosition(src_, pos) +
                         ": unsupported Jinja construct: " + what);
  }
  std::string Describe(const Token& t) const {
    switch (t.kind) {
      case TokenKind::kEnd:
        return "end of template";
      case TokenKind::kVarEnd:
        return "'}}'";
      case TokenKind::kBlockEnd:
        return "'%}'";
      case TokenKind::kText:
        return "template text";
      default:
        return "'" + t.value + "'";
    }
  }
  Status ExpectOp(const char* op) {
    if (AcceptOp(op)) return Status::Ok();
    return Error(Peek().pos, std::string("expected '") + op + "', found " + Describe(Peek()));
  }
  Status ExpectKind(TokenKind kind, const char* what) {
    if (Peek().kind == kind) {
      ++i_;
      return Status::Ok();
    }
    return Error(Peek().pos, std::string("expected ") + what + ", found " + Describe(Peek()));
  }
  StatusOr<std::string> ExpectName() {
    if (Peek().kind != TokenKind::kName)
      return Error(Peek().pos, "expected a name, found " + Describe(Peek()));
    return Advance().value;
  }

  // Parses statements until a block tag whose name is in `ends` (consumed up to and including the name).
  Status ParseBody(std::initializer_list<const char*> ends, Body* body, std::string* end_tag) {
    while (true) {
      const Token& t = Peek();
      if (t.kind == TokenKind::kEnd) {
        if (ends.size() == 0) return Status::Ok();
        return Error(t.pos, std::string("unexpected end of template: missing {% ") + *ends.begin() + " %}");
      }
      if (t.kind == TokenKind::kText) {
        auto s = MakeStmt(Stmt::Kind::kText, t.pos);
        s->text = t.value;
        body->push_back(std::move(s));
        ++i_;
      } else if (t.kind == TokenKind::kVarBegin) {
        ++i_;
        auto s = MakeStmt(Stmt::Kind::kOutput, t.pos);
        ASSIGN_OR_RETURN(s->expr, ParseExpression());
        RETURN_IF_ERROR(ExpectKind(TokenKind::kVarEnd, "'}}'"));
        body->push_back(std::move(s));
      } else if (t.kind == TokenKind::kBlockBegin) {
        const size_t tag_pos = t.pos;
        ++i_;
        ASSIGN_OR_RETURN(std::string tag, ExpectName());
        for (const char* e : ends) {
          if (tag == e) {
            *end_tag = tag;
            return Status::Ok();
          }
        }
        ASSIGN_OR_RETURN(StmtPtr s, ParseBlock(tag, tag_pos));
        body->push_back(std::move(s));
      } else {
        return Error(t.pos, "unexpected " + Describe(t));
      }
    }
  }

  StatusOr<StmtPtr> ParseBlock(const std::string& tag, size_t pos) {
    Nest nest(&depth_);
    RETURN_IF_ERROR(CheckDepth(pos));
    if (tag == "if") return ParseIf(pos);
    if (tag == "for") return ParseFor(pos);
    if (tag == "set") return ParseSet(pos);
    if (tag == "break" || tag == "continue") {
      RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "'%}'"));
      return MakeStmt(tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue, pos);
    }
    if (tag == "generation") {  // transformers' AssistantTracker block: renders its body unchanged
      RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "'%}'"));
      StmtPtr s = MakeStmt(Stmt::Kind::kIf, pos);
      ExprPtr always = Node(Kind::kLiteral, pos);
      always->literal = true;
      Body body;
      std::string end;
      RETURN_IF_ERROR(ParseBody({"endgeneration"}, &body, &end));
      RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "'%}'"));
      s->branches.emplace_back(std::move(always), std::move(body));
      return s;
    }
    static const char* kKnownEnds[] = {"endif", "endfor", "elif", "else", "endset", "endgeneration"};
    for (const char* e : kKnownEnds) {
      if (tag == e) return Error(pos, "unexpected {% " + tag + " %} (no matching opening tag)");
    }
    return Unsupported(pos, "{% " + tag + " %} tag");
  }

  // The tail of an if / for block whose body stopped at tag `end` ("else" or end_tag, its "%}" not read yet):
  // that "%}", then for "else" the else body up to end_tag and its "%}".
  Status ParseElse(const std::string& end, const char* end_tag, Body* else_body) {
    RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "'%}'"));
    if (end != "else") return Status::Ok();
    std::string else_end;
    RETURN_IF_ERROR(ParseBody({end_tag}, else_body, &else_end));
    return ExpectKind(TokenKind::kBlockEnd, "'%}'");
  }

  StatusOr<StmtPtr> ParseIf(size_t pos) {
    auto s = MakeStmt(Stmt::Kind::kIf, pos);
    while (true) {
      ASSIGN_OR_RETURN(ExprPtr cond, ParseExpression());
      RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "'%}'"));
      Body body;
      std::string end;
      RETURN_IF_ERROR(ParseBody({"elif", "else", "endif"}, &body, &end));
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") continue;
      RETURN_IF_ERROR(ParseElse(end, "endif", &s->else_body));
      return s;
    }
  }

  StatusOr<StmtPtr> ParseFor(size_t pos) {
    auto s = MakeStmt(Stmt::Kind::kFor, pos);
    bool paren = AcceptOp("(");
    do {
      ASSIGN_OR_RETURN(std::string name, ExpectName());
      s->targets.push_back(std::move(name));
    } while (AcceptOp(","));
    if (paren) RETURN_IF_ERROR(ExpectOp(")"));
    if (!AcceptName("in")) return Error(Peek().pos, "expected 'in' in for loop, found " + Describe(Peek()));
    ASSIGN_OR_RETURN(s->expr, ParseOr());  // no conditional expression: "if" filters the loop
    if (AcceptName("if")) {
      ASSIGN_OR_RETURN(s->cond, ParseOr());
    }
    if (IsName("recursive")) return Unsupported(Peek().pos, "recursive for loop");
    RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "'%}'"));
    std::string end;
    RETURN_IF_ERROR(ParseBody({"else", "endfor"}, &s->body, &end));
    RETURN_IF_ERROR(ParseElse(end, "endfor", &s->else_body));
    return s;
  }

  StatusOr<StmtPtr> ParseSet(size_t pos) {
    auto s = MakeStmt(Stmt::Kind::kSet, pos);
    ASSIGN_OR_RETURN(std::string name, ExpectName());
    s->targets.push_back(std::move(name));
    if (AcceptOp(".")) {
      ASSIGN_OR_RETURN(s->attr, ExpectName());
    }
    if (IsOp(",")) return Unsupported(Peek().pos, "{% set %} with several targets");
    if (Peek().kind == TokenKind::kBlockEnd)
      return Unsupported(Peek().pos, "block {% set %} ... {% endset %}");
    RETURN_IF_ERROR(ExpectOp("="));
    ASSIGN_OR_RETURN(s->expr, ParseExpression());
    RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "'%}'"));
    return s;
  }

  // ---- expressions, lowest precedence first ----
  static ExprPtr Node(Kind kind, size_t pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }
  StatusOr<ExprPtr> Binary(const std::string& op, ExprPtr a, ExprPtr b, size_t pos) const {
    ExprPtr e = Node(Kind::kBinary, pos);
    e->name = op;
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    RETURN_IF_ERROR(Seal(e.get()));
    return e;
  }

  StatusOr<ExprPtr> ParseExpression() {
    Nest nest(&depth_);
    RETURN_IF_ERROR(CheckDepth(Peek().pos));
    ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
    while (IsName("if")) {
      const size_t pos = Advance().pos;
      ExprPtr c = Node(Kind::kCond, pos);
      ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(cond));
      ExprPtr other;
      if (AcceptName("else")) {
        ASSIGN_OR_RETURN(other, ParseExpression());
      }
      c->args.push_back(std::move(other));
      RETURN_IF_ERROR(Seal(c.get()));
      e = std::move(c);
    }
    return e;
  }

  // One left-associative binary level, as jinja2's parser loops: operand (op operand)*. ops are keywords
  // (kName tokens such as "or") when keywords, else operator tokens.
  StatusOr<ExprPtr> LeftAssociative(std::initializer_list<const char*> ops, bool keywords,
                                    StatusOr<ExprPtr> (Parser::*operand)()) {
    auto at_op = [&] {
      for (const char* op : ops)
        if (keywords ? IsName(op) : IsOp(op)) return true;
      return false;
    };
    ASSIGN_OR_RETURN(ExprPtr e, (this->*operand)());
    while (at_op()) {
      const Token& t = Advance();
      ASSIGN_OR_RETURN(ExprPtr r, (this->*operand)());
      ASSIGN_OR_RETURN(e, Binary(t.value, std::move(e), std::move(r), t.pos));
    }
    return e;
  }

  StatusOr<ExprPtr> ParseOr() { return LeftAssociative({"or"}, /*keywords=*/true, &Parser::ParseAnd); }
  StatusOr<ExprPtr> ParseAnd() { return LeftAssociative({"and"}, /*keywords=*/true, &Parser::ParseNot); }

  StatusOr<ExprPtr> ParseNot() {
    if (IsName("not")) {
      Nest nest(&depth_);
      ExprPtr e = Node(Kind::kUnary, Advance().pos);
      RETURN_IF_ERROR(CheckDepth(e->pos));
      e->name = "not";
      ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
      e->args.push_back(std::move(operand));
      RETURN_IF_ERROR(Seal(e.get()));
      return e;
    }
    return ParseCompare();
  }

  StatusOr<ExprPtr> ParseCompare() {
    ASSIGN_OR_RETURN(ExprPtr e, ParseMath1());
    while (true) {
      std::string op;
      const size_t pos = Peek().pos;
      if (Peek().kind == TokenKind::kOperator &&
          (Peek().value == "==" || Peek().value == "!=" || Peek().value == "<" || Peek().value == ">" ||
           Peek().value == "<=" || Peek().value == ">=")) {
        op = Advance().value;
      } else if (IsName("in")) {
        ++i_;
        op = "in";
      } else if (IsName("not") && IsName("in", 1)) {
        i_ += 2;
        op = "not in";
      } else {
        return e;
      }
      ASSIGN_OR_RETURN(ExprPtr r, ParseMath1());
      ASSIGN_OR_RETURN(e, Binary(op, std::move(e), std::move(r), pos));
    }
  }

  StatusOr<ExprPtr> ParseMath1() {
    return LeftAssociative({"+", "-"}, /*keywords=*/false, &Parser::ParseConcat);
  }
  StatusOr<ExprPtr> ParseConcat() { return LeftAssociative({"~"}, /*keywords=*/false, &Parser::ParseMath2); }
  StatusOr<ExprPtr> ParseMath2() {
    return LeftAssociative({"*", "/", "//", "%"}, /*keywords=*/false, &Parser::ParsePow);
  }
  StatusOr<ExprPtr> ParsePow() { return LeftAssociative({"**"}, /*keywords=*/false, &Parser::ParseUnary); }

  StatusOr<ExprPtr> ParseUnary() {
    if (IsOp("-") || IsOp("+")) {
      Nest nest(&depth_);
      const Token& t = Advance();
      ExprPtr e = Node(Kind::kUnary, t.pos);
      RETURN_IF_ERROR(CheckDepth(t.pos));
      e->name = t.value;
      ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary());
      e->args.push_back(std::move(operand));
      RETURN_IF_ERROR(Seal(e.get()));
      return e;
    }
    ASSIGN_OR_RETURN(ExprPtr e, ParsePrimary());
    ASSIGN_OR_RETURN(e, ParsePostfix(std::move(e)));
    return ParseFilterAndTest(std::move(e));
  }

  StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Peek();
    switch (t.kind) {
      case TokenKind::kName: {
        ++i_;
        ExprPtr e = Node(Kind::kLiteral, t.pos);
        if (t.value == "true" || t.value == "True") {
          e->literal = true;
        } else if (t.value == "false" || t.value == "False") {
          e->literal = false;
        } else if (t.value == "none" || t.value == "None") {
          e->literal = nullptr;
        } else {
          e->kind = Kind::kName;
          e->name = t.value;
        }
        return e;
      }
      case TokenKind::kString: {
        ExprPtr e = Node(Kind::kLiteral, t.pos);
        std::string s;
        while (Peek().kind == TokenKind::kString) s += Advance().value;  // adjacent literals concatenate
        e->literal = s;
        return e;
      }
      case TokenKind::kInteger: {
        ++i_;
        ExprPtr e = Node(Kind::kLiteral, t.pos);
        if (t.value.size() > 18) return Error(t.pos, "integer literal too large");
        e->literal = static_cast<int64_t>(std::stoll(t.value));
        return e;
      }
      case TokenKind::kFloat: {
        ++i_;
        ExprPtr e = Node(Kind::kLiteral, t.pos);
        e->literal = std::stod(t.value);
        return e;
      }
      case TokenKind::kOperator:
        if (t.value == "(") return ParseParenthesized();
        if (t.value == "[") return ParseListLiteral();
        if (t.value == "{") return ParseDictLiteral();
        break;
      default:
        break;
    }
    return Error(t.pos, "expected an expression, found " + Describe(t));
  }

  // (expr) or a tuple (a, b) — tuples are lists here.
  StatusOr<ExprPtr> ParseParenthesized() {
    const size_t pos = Advance().pos;
    if (AcceptOp(")")) return Node(Kind::kList, pos);
    ASSIGN_OR_RETURN(ExprPtr first, ParseExpression());
    if (AcceptOp(")")) return first;
    ExprPtr list = Node(Kind::kList, pos);
    list->args.push_back(std::move(first));
    while (AcceptOp(",")) {
      if (IsOp(")")) break;
      ASSIGN_OR_RETURN(ExprPtr item, ParseExpression());
      list->args.push_back(std::move(item));
    }
    RETURN_IF_ERROR(ExpectOp(")"));
    RETURN_IF_ERROR(Seal(list.get()));
    return list;
  }

  StatusOr<ExprPtr> ParseListLiteral() {
    ExprPtr list = Node(Kind::kList, Advance().pos);
    while (!IsOp("]")) {
      ASSIGN_OR_RETURN(ExprPtr item, ParseExpression());
      list->args.push_back(std::move(item));
      if (!AcceptOp(",")) break;
    }
    RETURN_IF_ERROR(ExpectOp("]"));
    RETURN_IF_ERROR(Seal(list.get()));
    return list;
  }

  StatusOr<ExprPtr> ParseDictLiteral() {
    ExprPtr dict = Node(Kind::kDict, Advance().pos);
    while (!IsOp("}")) {
      ASSIGN_OR_RETURN(ExprPtr key, ParseExpression());
      RETURN_IF_ERROR(ExpectOp(":"));
      ASSIGN_OR_RETURN(ExprPtr value, ParseExpression());
      dict->args.push_back(std::move(key));
      dict->args.push_back(std::move(value));
      if (!AcceptOp(",")) break;
    }
    RETURN_IF_ERROR(ExpectOp("}"));
    RETURN_IF_ERROR(Seal(dict.get()));
    return dict;
  }

  // Call arguments after "(": positional first, then name=value.
  Status ParseCallArgs(Expr* call) {
    while (!IsOp(")")) {
      if (Peek().kind == TokenKind::kName && IsOp("=", 1)) {
        std::string key = Advance().value;
        ++i_;
        ASSIGN_OR_RETURN(ExprPtr v, ParseExpression());
        call->kwargs.emplace_back(std::move(key), std::move(v));
      } else {
        if (!call->kwargs.empty()) return Error(Peek().pos, "positional argument after a keyword argument");
        ASSIGN_OR_RETURN(ExprPtr v, ParseExpression());
        call->args.push_back(std::move(v));
      }
      if (!AcceptOp(",")) break;
    }
    return ExpectOp(")");
  }

  StatusOr<ExprPtr> ParsePostfix(ExprPtr e) {
    while (true) {
      if (IsOp(".")) {
        const size_t pos = Advance().pos;
        ExprPtr g = Node(Kind::kGetAttr, pos);
        if (Peek().kind == TokenKind::kInteger) {  // a.0 is a[0]
          g->kind = Kind::kGetItem;
          ExprPtr idx = Node(Kind::kLiteral, Peek().pos);
          idx->literal = static_cast<int64_t>(std::stoll(Advance().value));
          g->args.push_back(std::move(e));
          g->args.push_back(std::move(idx));
        } else {
          ASSIGN_OR_RETURN(g->name, ExpectName());
          g->args.push_back(std::move(e));
        }
        RETURN_IF_ERROR(Seal(g.get()));
        e = std::move(g);
      } else if (IsOp("[")) {
        ASSIGN_OR_RETURN(e, ParseSubscript(std::move(e)));
      } else if (IsOp("(")) {
        ExprPtr call = Node(Kind::kCall, e->pos);  // errors point at the function's name
        ++i_;
        call->args.push_back(std::move(e));
        RETURN_IF_ERROR(ParseCallArgs(call.get()));
        RETURN_IF_ERROR(Seal(call.get()));
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  StatusOr<ExprPtr> ParseSubscript(ExprPtr e) {
    const size_t pos = Advance().pos;
    ExprPtr parts[3];
    int n = 0;
    bool is_slice = false;
    while (true) {
      if (!IsOp(":") && !IsOp("]")) {
        ASSIGN_OR_RETURN(parts[n], ParseExpression());
      }
      if (IsOp(":") && n < 2) {
        ++i_;
        ++n;
        is_slice = true;
        continue;
      }
      break;
    }
    RETURN_IF_ERROR(ExpectOp("]"));
    ExprPtr g = Node(is_slice ? Kind::kSlice : Kind::kGetItem, pos);
    if (!is_slice && !parts[0]) return Error(pos, "empty subscript");
    g->args.push_back(std::move(e));
    for (int k = 0; k < (is_slice ? 3 : 1); ++k) g->args.push_back(std::move(parts[k]));
    RETURN_IF_ERROR(Seal(g.get()));
    return g;
  }

  StatusOr<ExprPtr> ParseFilterAndTest(ExprPtr e) {
    while (true) {
      if (IsOp("|")) {
        const size_t pos = Advance().pos;
        ExprPtr f = Node(Kind::kFilter, pos);
        ASSIGN_OR_RETURN(f->name, ExpectName());
        f->args.push_back(std::move(e));
        if (AcceptOp("(")) RETURN_IF_ERROR(ParseCallArgs(f.get()));
        RETURN_IF_ERROR(Seal(f.get()));
        e = std::move(f);
      } else if (IsName("is")) {
        const size_t pos = Advance().pos;
        ExprPtr t = Node(Kind::kTest, pos);
        t->negated = AcceptName("not");
        ASSIGN_OR_RETURN(t->name, ExpectName());
        t->args.push_back(std::move(e));
        if (AcceptOp("(")) {
          RETURN_IF_ERROR(ParseCallArgs(t.get()));
        } else if (Peek().kind == TokenKind::kString || Peek().kind == TokenKind::kInteger ||
                   Peek().kind == TokenKind::kFloat) {
          ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());  // "is divisibleby 3", "is equalto 'x'"
          t->args.push_back(std::move(arg));
        }
        RETURN_IF_ERROR(Seal(t.get()));
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  std::string_view src_;
  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;  // current nesting (Nest), bounded by kMaxNestingDepth
};

}  // namespace

StatusOr<Body> Parse(std::string_view source) {
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Lex(source));
  return Parser(source, std::move(tokens)).ParseTemplate();
}

}  // namespace idefics::tokenizer::jinja
