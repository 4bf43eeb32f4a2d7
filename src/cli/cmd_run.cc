// idefics run: not implemented yet (stub; replaced by its owner).
#include <cstdio>

#include "cli/commands.h"

namespace idefics::cli {

int RunRun(int, char**) {
  std::fprintf(stderr, "idefics run: not implemented yet\n");
  return 1;
}

}  // namespace idefics::cli
