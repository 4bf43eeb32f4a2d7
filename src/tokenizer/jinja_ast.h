// Syntax tree of the Jinja subset used by chat templates (expressions and statements), built by
// jinja_parser and walked by jinja_eval. Mirrors the node kinds of jinja2.nodes that templates use.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace idefics::tokenizer::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // literal
    kName,     // name
    kList,     // args = items
    kDict,     // args = key0, value0, key1, value1, ...
    kGetAttr,  // args[0].name
    kGetItem,  // args[0][args[1]]
    kSlice,    // args[0][args[1]:args[2]:args[3]], missing parts are null
    kCall,     // args[0](args[1..], kwargs)
    kFilter,   // args[0] | name(args[1..], kwargs)
    kTest,     // args[0] is [not] name(args[1..]); negated when name_negated
    kUnary,    // op args[0]: "not", "-", "+"
    kBinary,   // args[0] op args[1]
    kCond,     // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Kind kind;
  size_t pos = 0;  // byte offset in the template, for errors
  int height = 1;  // of this subtree (a leaf is 1); the parser bounds it by kMaxNestingDepth
  nlohmann::json literal;
  std::string name;  // name / attribute / filter / test / operator
  bool negated = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    kText,    // text
    kOutput,  // {{ expr }}
    kIf,      // branches (condition, body); else_body
    kFor,     // {% for targets in expr [if cond] %} body {% else %} else_body {% endfor %}
    kSet,     // {% set targets[0][.attr] = expr %}
    kBreak,
    kContinue,
  };
  Kind kind;
  size_t pos = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr cond;
  std::vector<std::string> targets;
  std::string attr;  // kSet on a namespace attribute: {% set ns.attr = ... %}
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
};

}  // namespace idefics::tokenizer::jinja
