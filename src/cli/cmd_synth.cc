// idefics synth: not implemented yet (stub; replaced by its owner).
#include <cstdio>

#include "cli/commands.h"

namespace idefics::cli {

int RunSynth(int, char**) {
  std::fprintf(stderr, "idefics synth: not implemented yet\n");
  return 1;
}

}  // namespace idefics::cli
