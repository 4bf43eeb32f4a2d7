// Per-model scratch arena: named float buffers that grow to the largest size seen and are reused across
// layers and calls, so the forward passes allocate (and first-touch fresh pages) only when a shape grows.
#pragma once

#include <cstddef>
#include <memory>

namespace idefics {

class ScratchBuffer {
 public:
  // A buffer of at least n floats (contents unspecified); stable until the next Get with a larger n.
  float* Get(size_t n) {
    if (n > cap_) {
      cap_ = n + n / 4;  // headroom so slowly growing prompts do not reallocate every call
      data_ = std::make_unique_for_overwrite<float[]>(cap_);
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
  std::unique_ptr<float[]> data_;
  size_t cap_ = 0;
};

}  // namespace idefics
