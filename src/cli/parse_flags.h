// Runs a subcommand's CLI11 parser and turns --help or a flag error into the process exit code.
// No reference counterpart: CLI plumbing shared by the cmd_*.cc files.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>

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

}  // namespace idefics::cli
