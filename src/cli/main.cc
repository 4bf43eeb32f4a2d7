// idefics: command-line front end. Dispatches to one subcommand per file (see commands.h).
#include <cstdio>
#include <cstring>
#include <string>

#include "core/build_info.h"
#include "cli/commands.h"

namespace {

struct Command {
  const char* name;
  const char* help;
  int (*run)(int argc, char** argv);
};

constexpr Command kCommands[] = {
    {"run", "answer a prompt about images (the main job)", idefics::cli::RunRun},
    {"chat", "interactive multi-turn chat in the terminal", idefics::cli::RunChat},
    {"serve", "OpenAI-compatible HTTP server with a web chat page", idefics::cli::RunServe},
    {"tokenize", "print the token ids of a text as a JSON array", idefics::cli::RunTokenize},
    {"preprocess", "run the image processor and write pixel_values to safetensors", idefics::cli::RunPreprocess},
    {"inspect", "print a model folder's configuration, tensors and shards", idefics::cli::RunInspect},
    {"quantize", "convert a model folder to bf16 / q8_0 / q4_0 weights", idefics::cli::RunQuantize},
    {"bench", "measure vision, prefill and decode speed against the machine's limits", idefics::cli::RunBench},
    {"bench-serve", "measure server throughput at several concurrency levels", idefics::cli::RunBenchServe},
    {"synth", "write a random-weight model folder at real or reduced dimensions", idefics::cli::RunSynth},
};

void PrintUsage(std::FILE* out) {
  std::fprintf(out, "idefics.cpp — Idefics2 inference on the CPU\n\nusage: idefics <command> [options]\n\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-12s %s\n", c.name, c.help);
  std::fprintf(out, "\n'idefics <command> --help' lists a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(stderr);
    return 2;
  }
  const char* name = argv[1];
  if (!std::strcmp(name, "--help") || !std::strcmp(name, "-h") || !std::strcmp(name, "help")) {
    PrintUsage(stdout);
    return 0;
  }
  if (!std::strcmp(name, "--version")) {
    std::printf("idefics.cpp %s\n", idefics::GitCommit());
    return 0;
  }
  for (const Command& c : kCommands) {
    if (std::strcmp(c.name, name) == 0) return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "idefics: unknown command '%s'\n\n", name);
  PrintUsage(stderr);
  return 2;
}
