// Internal invariants: a failed CHECK is a bug, so it aborts with file, line and message.
// Input errors never use these; they return a Status.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace idefics::detail {
[[noreturn]] inline void CheckFailed(const char* file, int line, const char* cond, const char* msg) {
  std::fprintf(stderr, "%s:%d: CHECK failed: %s %s\n", file, line, cond, msg ? msg : "");
  std::abort();
}
}  // namespace idefics::detail

#define IDEFICS_CHECK(cond) \
  ((cond) ? (void)0 : ::idefics::detail::CheckFailed(__FILE__, __LINE__, #cond, nullptr))
#define IDEFICS_CHECK_MSG(cond, msg) \
  ((cond) ? (void)0 : ::idefics::detail::CheckFailed(__FILE__, __LINE__, #cond, msg))
