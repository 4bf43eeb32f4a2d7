// Allocation of large working and weight buffers: first touch of fresh memory is the expensive part on the
// measurement VM (0.3-3 GB/s with 4 KiB pages), so buffers of 2 MiB and more are 2 MiB-aligned and advised as
// huge pages. Free with std::free. No reference counterpart.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace idefics {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// At least `bytes` bytes, 64-byte aligned; from kHugePageBytes on, huge-page aligned and advised. Throws
// std::bad_alloc when the memory is not there.
inline void* AllocLarge(size_t bytes) {
  const size_t align = bytes >= kHugePageBytes ? kHugePageBytes : 64;
  const size_t rounded = (std::max<size_t>(bytes, 1) + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  if (!p) throw std::bad_alloc();
  if (align == kHugePageBytes) madvise(p, rounded, MADV_HUGEPAGE);
  return p;
}

}  // namespace idefics
