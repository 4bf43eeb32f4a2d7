// TextKvCache's memory: buffers on 2 MiB pages (AllocLarge), written through once when allocated, grown by
// copying.
#include "model/kv_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/large_alloc.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace idefics {

namespace {

// A resident buffer of `bytes` bytes from AllocLarge (2 MiB-aligned and advised huge from 2 MiB on), written
// through at once. Null when the memory is not there.
float* AllocResident(size_t bytes) {
  void* p = nullptr;
  try {
    p = AllocLarge(bytes);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
  // Only whole huge-page buffers are populated (smaller ones need not start on a page). Where the kernel
  // lacks MADV_POPULATE_WRITE (EINVAL) the pages fault in on first write instead; any other failure means the
  // memory is not there.
  if (bytes >= kHugePageBytes && ::madvise(p, bytes, MADV_POPULATE_WRITE) != 0 && errno != EINVAL) {
    std::free(p);
    return nullptr;
  }
  return static_cast<float*>(p);
}

}  // namespace

TextKvCache::TextKvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t capacity)
    : n_layers_(n_layers), n_kv_heads_(n_kv_heads), head_dim_(head_dim), capacity_(capacity) {
  IDEFICS_CHECK(n_layers >= 0 && n_kv_heads >= 0 && head_dim >= 0 && capacity >= 0);
}

TextKvCache::~TextKvCache() {
  std::free(k_);
  std::free(v_);
}

bool TextKvCache::Reserve(int64_t n) {
  n = std::min(n, capacity_);
  if (n <= alloc_) return true;
  // The first buffer leaves room for kFirstRoom generated tokens; each growth adds half again.
  int64_t want = alloc_ == 0 ? n + kFirstRoom : std::max(n, alloc_ + alloc_ / 2);
  want = std::min(capacity_, (want + kReserveBlock - 1) / kReserveBlock * kReserveBlock);
  const int64_t runs = n_layers_ * n_kv_heads_;
  const size_t bytes = static_cast<size_t>(runs * want * head_dim_) * sizeof(float);
  if (bytes == 0) {  // an empty shape: nothing to hold
    alloc_ = want;
    return true;
  }
  float* k = AllocResident(bytes);
  float* v = k ? AllocResident(bytes) : nullptr;
  if (!k || !v) {
    std::free(k);
    return false;
  }
  if (k_) {
    const size_t row_bytes = static_cast<size_t>(size_ * head_dim_) * sizeof(float);
    for (int64_t r = 0; r < runs; ++r) {
      std::memcpy(k + r * want * head_dim_, k_ + r * alloc_ * head_dim_, row_bytes);
      std::memcpy(v + r * want * head_dim_, v_ + r * alloc_ * head_dim_, row_bytes);
    }
    std::free(k_);
    std::free(v_);
  }
  k_ = k;
  v_ = v;
  alloc_ = want;
  return true;
}

}  // namespace idefics
