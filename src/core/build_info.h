// The git commit the binary was built from (recorded at build time by cmake/build_info.cmake), for `idefics
// --version`, bench reports and the kernel benchmark context. Mirrors no reference class.
#pragma once

namespace idefics {

// Short hash of HEAD when the binary was built, with "-dirty" when tracked files differed from it, or
// "unknown" outside a git checkout.
const char* GitCommit();

}  // namespace idefics
