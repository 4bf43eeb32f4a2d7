// Runs a subcommand's CLI11 parser and turns --help or a flag error into the process exit code.
// No reference counterpart: CLI plumbing shared by the cmd_*.cc files.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

namespace idefics::cli {

// Parses argv into app. Returns nullopt when the command should go on; otherwise CLI11 has printed the help
// (exit code 0) or the error (exit code 1) and the caller returns the code:
//   if (std::optional<int> rc = ParseFlags(app, argc, argv)) return *rc;
inline std::optional<int> ParseFlags(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  return std::nullopt;
}

// The most worker threads a --threads flag takes (far past any CPU this runs on; each thread is a real one).
inline constexpr int kMaxThreads = 1024;

// Flag validators whose messages name what is expected and what was given (CLI11's PositiveNumber printed
// "Value 0 not in range 0.000000 to 1797693...", even for a word).
inline CLI::Validator IntegerIn(long long lo, long long hi) {
  const std::string want = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, want](std::string& s) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || v < lo || v > hi)
          return "must be " + want + " (got '" + s + "')";
        return "";
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

// Any unsigned 64-bit integer (a seed).
inline CLI::Validator Unsigned64() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        errno = 0;
        char* end = nullptr;
        std::strtoull(s.c_str(), &end, 10);
        if (s.empty() || s[0] == '-' || end != s.c_str() + s.size() || errno == ERANGE)
          return "must be an integer from 0 to 18446744073709551615 (got '" + s + "')";
        return "";
      },
      "UINT64");
}

// A finite number in [lo, hi], or (lo, hi] when lo_open.
inline CLI::Validator NumberIn(double lo, double hi, bool lo_open = false) {
  auto fmt = [](double v) {
    std::string t = std::to_string(v);
    t.erase(t.find_last_not_of('0') + 1);
    if (!t.empty() && t.back() == '.') t.pop_back();
    return t;
  };
  const std::string want = "a number in " + std::string(lo_open ? "(" : "[") + fmt(lo) + ", " + fmt(hi) + "]";
  return CLI::Validator(
      [lo, hi, lo_open, want](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v) || v > hi || v < lo ||
            (lo_open && v == lo))
          return "must be " + want + " (got '" + s + "')";
        return "";
      },
      "NUMBER in " + want.substr(12));
}

}  // namespace idefics::cli
