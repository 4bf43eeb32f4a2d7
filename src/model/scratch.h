// Per-model scratch arena: named float buffers that grow to the largest size seen and are reused across
// layers and calls, so the forward passes allocate (and first-touch fresh pages) only when a shape grows.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

#include "core/large_alloc.h"

namespace idefics {

class ScratchBuffer {
 public:
  // A buffer of at least n floats (contents unspecified); stable until the next Get with a larger n.
  // Large buffers come from AllocLarge (huge pages from 2 MiB on: fresh memory is first touched page by page).
  float* Get(size_t n) {
    if (n > cap_) {
      cap_ = n + n / 4;  // headroom so slowly growing prompts do not reallocate every call
      data_.reset();
      data_.reset(static_cast<float*>(AllocLarge(cap_ * sizeof(float))));
    }
    return data_.get();
  }
  size_t capacity() const { return cap_; }
  // Gives the memory back (the next Get allocates again).
  void Release() {
    data_.reset();
    cap_ = 0;
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  size_t cap_ = 0;
};

}  // namespace idefics
