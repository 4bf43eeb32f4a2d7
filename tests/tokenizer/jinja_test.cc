// The Jinja subset interpreter: expressions, statements, whitespace control, builtins, and the errors for
// constructs outside the subset (which must name the construct and its position).
#include "tokenizer/jinja.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/jinja_limits.h"

namespace idefics::tokenizer::jinja {
namespace {

using nlohmann::json;

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::string Render(const std::string& src, const json& ctx = json::object()) {
  auto t = Template::Parse(src);
  if (!t.ok()) return "PARSE ERROR: " + t.status().ToString();
  auto r = t->Render(ctx);
  if (!r.ok()) return "RENDER ERROR: " + r.status().ToString();
  return *r;
}

Status RenderStatus(const std::string& src, const json& ctx = json::object()) {
  auto t = Template::Parse(src);
  if (!t.ok()) return t.status();
  auto r = t->Render(ctx);
  return r.ok() ? Status::Ok() : r.status();
}

TEST(Jinja, LiteralsAndOutput) {
  EXPECT_EQ(Render("a{{ 'b' }}c{{ \"d\" }}"), "abcd");
  EXPECT_EQ(Render("{{ 1 }} {{ 2.5 }} {{ true }} {{ none }} {{ 3.0 }}"), "1 2.5 True None 3.0");
  EXPECT_EQ(Render("{{ 'it\\'s' }}|{{ 'a\\nb' }}"), "it's|a\nb");
  EXPECT_EQ(Render("{{ undefined_var }}x"), "x");
  EXPECT_EQ(Render("{{ [1, 'a'] }} {{ {'k': 1} }}"), "[1, 'a'] {'k': 1}");
}

TEST(Jinja, Operators) {
  EXPECT_EQ(Render("{{ 'a' + 'b' }}{{ 1 ~ 'x' ~ none }}"), "ab1xNone");
  EXPECT_EQ(
      Render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -1 % 3 }} {{ 7 / 2 }} {{ 2 ** 3 }}"),
      "7 3 -4 1 2 3.5 8");
  EXPECT_EQ(Render("{{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 2 < 3 }} {{ 'b' >= 'a' }}"), "True True True True");
  EXPECT_EQ(Render("{{ 'ell' in 'hello' }} {{ 3 not in [1, 2] }} {{ 'k' in {'k': 0} }}"), "True True True");
  EXPECT_EQ(Render("{{ true and false }} {{ false or 'x' }} {{ not 0 }} {{ not 1 and true }}"),
            "False x True False");
  EXPECT_EQ(Render("{{ 'y' if 1 > 2 else 'n' }}{{ 'z' if false }}"), "n");
  EXPECT_EQ(Render("{{ 'ab' * 3 }}"), "ababab");
  // Integer overflow falls back to floats instead of wrapping (Python ints are unbounded).
  EXPECT_EQ(Render("{{ 999999999999999999 * 999999999999999999 > 0 }}"), "True");
}

TEST(Jinja, SubscriptsAndAttributes) {
  const json ctx = {{"m", {{"role", "user"}, {"content", json::array({{{"type", "image"}}})}}}};
  EXPECT_EQ(Render("{{ m['role'] }} {{ m.role }} {{ m['content'][0]['type'] }} {{ m.content[0].type }}", ctx),
            "user user image image");
  EXPECT_EQ(Render("{{ m['missing'] is defined }} {{ m.role is defined }}", ctx), "False True");
  EXPECT_EQ(Render("{{ [1, 2, 3][-1] }} {{ [1, 2, 3][1:] }} {{ 'hello'[::-1] }} {{ 'héllo'[1] }}"),
            "3 [2, 3] olleh é");
  // A string's item 'type' is undefined (not an error), as in jinja2.
  EXPECT_EQ(Render("{{ 'text'[0]['type'] == 'image' }}"), "False");
  EXPECT_NE(Render("{{ nothing.attr }}").find("undefined"), std::string::npos);
}

TEST(Jinja, ForLoop) {
  const json ctx = {{"xs", {"a", "b", "c"}}};
  EXPECT_EQ(
      Render("{% for x in xs %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", ctx),
      "1a,2b,3c");
  EXPECT_EQ(Render("{% for x in xs %}{{ loop.index0 }}{{ loop.first }}{{ loop.length }} {% endfor %}", ctx),
            "0True3 1False3 2False3 ");
  EXPECT_EQ(Render("{% for x in xs if x != 'b' %}{{ x }}{{ loop.length }}{% endfor %}", ctx), "a2c2");
  EXPECT_EQ(Render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(Render("{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}"), "a=1");
  EXPECT_EQ(Render("{% for x in xs %}{% if x == 'b' %}{% break %}{% endif %}{{ x }}{% endfor %}", ctx), "a");
  EXPECT_EQ(Render("{% for x in xs %}{% if x == 'b' %}{% continue %}{% endif %}{{ x }}{% endfor %}", ctx),
            "ac");
  // Nested loops restore the outer loop variable.
  EXPECT_EQ(Render("{% for x in [1, 2] %}{% for y in [1] %}{% endfor %}{{ loop.index }}{% endfor %}"), "12");
}

TEST(Jinja, IfAndSet) {
  EXPECT_EQ(Render("{% if 0 %}a{% elif '' %}b{% elif [1] %}c{% else %}d{% endif %}"), "c");
  EXPECT_EQ(Render("{% if 0 %}a{% else %}d{% endif %}"), "d");
  EXPECT_EQ(Render("{% set x = 'v' %}{{ x }}"), "v");
  EXPECT_EQ(Render("a{% generation %}b{{ 'c' }}{% endgeneration %}d"), "abcd");
  // A set inside a loop does not leak out; a namespace attribute does.
  EXPECT_EQ(Render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = i %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(Render("{% set ns = namespace(n=0) %}{% for i in [1, 2] %}{% set ns.n = ns.n + i %}{% endfor "
                   "%}{{ ns.n }}"),
            "3");
}

TEST(Jinja, FiltersMethodsTests) {
  EXPECT_EQ(
      Render("{{ 'hELLO wORLD'.capitalize() }} {{ 'hi' | upper }} {{ 'HI'.lower() }} {{ 'ab cd' | title }}"),
      "Hello world HI hi Ab Cd");
  EXPECT_EQ(Render("[{{ '  x \\n' | trim }}][{{ '  y '.strip() }}][{{ 'xxy'.lstrip('x') }}]"), "[x][y][y]");
  EXPECT_EQ(
      Render(
          "{{ 'abc' | length }} {{ [1, 2] | length }} {{ 'ab'.startswith('a') }} {{ 'ab'.endswith('a') }}"),
      "3 2 True False");
  EXPECT_EQ(Render("{{ 'user' | capitalize }} {{ ['a', 'b'] | join(', ') }} {{ x | default('d') }}"),
            "User a, b d");
  EXPECT_EQ(Render("{{ 'a,b'.split(',') }} {{ 'aXbX'.replace('X', '-') }} {{ [1, 2] | first }}"),
            "['a', 'b'] a-b- 1");
  EXPECT_EQ(Render("{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ 3 is not string }}"),
            "False True True True");
  EXPECT_EQ(Render("{{ {'a': 1}.get('b', 'z') }} {{ {'a': [1, 'x']} | tojson }}"), "z {\"a\": [1, \"x\"]}");
}

TEST(Jinja, WhitespaceControl) {
  EXPECT_EQ(Render("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(Render("a\n  {%- if true -%}\n  b\n{%- endif %}"), "ab");
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it goes.
  EXPECT_EQ(Render("{% if true %}\nx\n    {% endif %}\ny"), "x\ny");
  EXPECT_EQ(Render("{{ 'v' }}\nz"), "v\nz");  // not after an expression
  EXPECT_EQ(Render("a{# comment #}b{#- c -#} c"), "abc");
  EXPECT_EQ(Render("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(Render("x\n"), "x");  // keep_trailing_newline=False
  EXPECT_EQ(Render("x\n\n"), "x\n");
}

TEST(Jinja, RaiseException) {
  Status s = RenderStatus("{% if messages | length == 0 %}{{ raise_exception('need messages') }}{% endif %}",
                          json{{"messages", json::array()}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("need messages"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("line 1"), std::string::npos) << s.message();
}

TEST(Jinja, UnsupportedConstructsAreNamed) {
  struct Case {
    const char* src;
    const char* needle;
  };
  for (const Case& c : {Case{"{% macro m() %}x{% endmacro %}", "macro"}, Case{"{% include 'x' %}", "include"},
                        Case{"{{ x | wordwrap }}", "filter 'wordwrap'"}, Case{"{{ 'a'.zfill(3) }}", "zfill"},
                        Case{"{{ x is divisibleby(3) }}", "test 'divisibleby'"},
                        Case{"\n{{ strftime_now('%Y') }}", "strftime_now"},
                        Case{"{% set a, b = 1, 2 %}", "several targets"}}) {
    Status s = RenderStatus(c.src, json{{"x", 1}});
    ASSERT_FALSE(s.ok()) << c.src;
    EXPECT_EQ(s.code(), StatusCode::kUnimplemented) << c.src << ": " << s.ToString();
    EXPECT_NE(s.message().find(c.needle), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("line "), std::string::npos) << s.message();
  }
  Status s = RenderStatus("\n\n  {{ strftime_now() }}");
  EXPECT_NE(s.message().find("line 3, column 6"), std::string::npos) << s.message();
}

TEST(Jinja, SyntaxErrors) {
  for (const char* src : {"{{ 'unterminated }}", "{% if x %}no end", "{{ 1 + }}", "{% for x %}{% endfor %}",
                          "{% endif %}", "{{ x ", "{# open", "{{ a[ }}", "{{ @ }}"}) {
    Status s = RenderStatus(src);
    ASSERT_FALSE(s.ok()) << src;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << src << ": " << s.ToString();
    EXPECT_NE(s.message().find("line 1"), std::string::npos) << s.message();
  }
}

TEST(Jinja, RuntimeErrors) {
  EXPECT_FALSE(RenderStatus("{{ 1 + 'a' }}").ok());
  EXPECT_FALSE(RenderStatus("{{ 1 // 0 }}").ok());
  EXPECT_FALSE(RenderStatus("{% for x in 3 %}{% endfor %}").ok());
  EXPECT_FALSE(RenderStatus("{{ 1 < 'a' }}").ok());
}

// A hostile template from a model folder must fail with an error, never overflow the stack or hang.
// Parse / render time is bounded loosely here (sanitizer builds are slow); before the limits these cases
// crashed or ran for minutes.
void ExpectFailsFast(const std::string& src, StatusCode code, const std::string& needle) {
  const auto start = std::chrono::steady_clock::now();
  Status s = RenderStatus(src);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(s.ok()) << src.substr(0, 80);
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  EXPECT_LT(seconds, 30.0) << src.substr(0, 80);
}

TEST(JinjaLimits, DeepNestingIsASyntaxError) {
  const std::string limit = "nesting deeper than " + std::to_string(kMaxNestingDepth);
  const StatusCode kInvalid = StatusCode::kInvalidArgument;
  ExpectFailsFast("{{ " + Repeat("(", 20000) + "1" + Repeat(")", 20000) + " }}", kInvalid, limit);
  ExpectFailsFast(Repeat("{% if true %}", 5000) + "x" + Repeat("{% endif %}", 5000), kInvalid, limit);
  ExpectFailsFast(Repeat("{% for i in [1] %}", 2000) + "x" + Repeat("{% endfor %}", 2000), kInvalid, limit);
  ExpectFailsFast("{{ " + Repeat("not ", 20000) + "1 }}", kInvalid, limit);
  ExpectFailsFast("{{ " + Repeat("-", 20000) + "1 }}", kInvalid, limit);
  ExpectFailsFast("{{ [" + Repeat("[", 20000) + Repeat("]", 20000) + "] }}", kInvalid, limit);
  // Chains build tall trees without deep parser recursion; evaluating them would recurse per link.
  ExpectFailsFast("{{ 1" + Repeat(" + 1", 100000) + " }}", kInvalid, limit);
  ExpectFailsFast("{{ 'x'" + Repeat(" | string", 100000) + " }}", kInvalid, limit);
  ExpectFailsFast("{{ x" + Repeat(".a", 100000) + " }}", kInvalid, limit);
  ExpectFailsFast("{{ 1" + Repeat(" if true", 100000) + " }}", kInvalid, limit);
  // The error names where: the parse error's usual "line L, column C".
  EXPECT_NE(
      RenderStatus("\n{{ " + Repeat("(", 1000) + "1" + Repeat(")", 1000) + " }}").message().find("line 2"),
      std::string::npos);
}

TEST(JinjaLimits, NestingJustUnderTheLimitRenders) {
  // The {{ }} expression is one level, each parenthesis one more.
  const int n = kMaxNestingDepth - 1;
  EXPECT_EQ(Render("{{ " + Repeat("(", n) + "1" + Repeat(")", n) + " }}"), "1");
  EXPECT_EQ(Render("{{ " + Repeat("(", n + 1) + "1" + Repeat(")", n + 1) + " }}").rfind("PARSE ERROR", 0),
            0u);
  // Each block is one level and the innermost condition one more.
  EXPECT_EQ(Render(Repeat("{% if true %}", n) + "x" + Repeat("{% endif %}", n)), "x");
  EXPECT_EQ(Render(Repeat("{% for i in [1] %}", n) + "x" + Repeat("{% endfor %}", n)), "x");
  EXPECT_EQ(Render("{{ 0" + Repeat(" + 1", n) + " }}"), std::to_string(n));
}

TEST(JinjaLimits, WorkLimitsAreRenderErrors) {
  const StatusCode kExhausted = StatusCode::kResourceExhausted;
  ExpectFailsFast("{{ 'a' * 1000000000 }}", kExhausted, "exceeds the chat template limit");
  ExpectFailsFast("{{ ('a' * 1000000).replace('a', 'abcdefghijklmnopqrstuvwxyz') }}", kExhausted, "limit");
  ExpectFailsFast("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                  kExhausted, "loop iterations");
  ExpectFailsFast("{% for i in range(100001) %}{% endfor %}", kExhausted, "range()");
  ExpectFailsFast("{{ range(-900000000000000000, 900000000000000000, 2) | length }}", kExhausted, "range()");
  ExpectFailsFast("{% for i in range(100000) %}{{ 'a' * 1000 }}{% endfor %}", kExhausted, "rendered output");
  // Doubling a string, a list or a nesting in a loop grows exponentially.
  ExpectFailsFast(
      "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      kExhausted, "limit");
  ExpectFailsFast(
      "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
      kExhausted, "list of");
  ExpectFailsFast(
      "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}",
      kExhausted, "nested deeper");
  ExpectFailsFast("{{ [[1, [2]]] | tojson(indent=100000000) }}", kExhausted, "indent");
  // Within the limits the same constructs work as in Python.
  EXPECT_EQ(Render("{{ range(100000) | length }} {{ range(10, 0, -3) | list }} {{ range(5, 5) | list }}"),
            "100000 [10, 7, 4, 1] []");
  EXPECT_EQ(Render("{{ 'ab' * 0 }}|{{ 'ab' * -2 }}|{{ '' * 1000000000 }}|{{ 'x' * 3 }}"), "|||xxx");
}

}  // namespace
}  // namespace idefics::tokenizer::jinja
