// The interrupt flag of core/interrupt.h.
#include "core/interrupt.h"

#include <csignal>

namespace idefics {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void OnInterrupt(int sig) {
  g_interrupted = 1;
  std::signal(sig, SIG_DFL);  // a second Ctrl-C is not ignored
}

}  // namespace

void CatchInterrupts() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool InterruptRequested() {
  return g_interrupted != 0;
}

}  // namespace idefics
