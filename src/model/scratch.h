// Per-model scratch arena: named float buffers that grow to the largest size seen and are reused across
// layers and calls, so the forward passes allocate (and first-touch fresh pages) only when a shape grows.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace idefics {

class ScratchBuffer {
 public:
  // A buffer of at least n floats (contents unspecified); stable until the next Get with a larger n.
  // Buffers of 2 MiB and more are 2 MiB-aligned and advised as huge pages: fresh memory is first touched
  // page by page, and on the measurement VM a 4 KiB page fault cost ~2x a 2 MiB one per byte.
  float* Get(size_t n) {
    if (n > cap_) {
      cap_ = n + n / 4;  // headroom so slowly growing prompts do not reallocate every call
      data_.reset();
      const size_t bytes = cap_ * sizeof(float);
      void* p = nullptr;
      if (bytes >= kHuge) {
        const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
        p = std::aligned_alloc(kHuge, rounded);
        if (p) madvise(p, rounded, MADV_HUGEPAGE);
      } else {
        p = std::malloc(bytes);
      }
      if (!p) throw std::bad_alloc();
      data_.reset(static_cast<float*>(p));
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
  static constexpr size_t kHuge = size_t{2} << 20;
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  size_t cap_ = 0;
};

}  // namespace idefics
