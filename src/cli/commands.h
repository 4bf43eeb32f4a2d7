// The idefics subcommands. Each lives in its own cmd_<name>.cc, parses its own flags (CLI11) and
// returns a process exit code. The CLI only parses and formats; numerics live in the library.
#pragma once

namespace idefics::cli {

// argv[0] is the subcommand name.
int RunTokenize(int argc, char** argv);
int RunPreprocess(int argc, char** argv);
int RunInspect(int argc, char** argv);
int RunRun(int argc, char** argv);
int RunChat(int argc, char** argv);
int RunBench(int argc, char** argv);
int RunSynth(int argc, char** argv);
int RunQuantize(int argc, char** argv);
int RunServe(int argc, char** argv);
int RunBenchServe(int argc, char** argv);

}  // namespace idefics::cli
