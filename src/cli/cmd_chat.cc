// idefics chat: not implemented yet (stub; replaced by its owner).
#include <cstdio>

#include "cli/commands.h"

namespace idefics::cli {

int RunChat(int, char**) {
  std::fprintf(stderr, "idefics chat: not implemented yet\n");
  return 1;
}

}  // namespace idefics::cli
