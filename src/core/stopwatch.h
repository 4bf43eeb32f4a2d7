// Wall-clock milliseconds for the timings the runtime reports (load, preprocess, vision, prefill, decode).
#pragma once

#include <chrono>

namespace idefics {

// Milliseconds of steady_clock time since t0.
inline double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace idefics
