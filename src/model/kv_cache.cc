// TextKvCache's memory: anonymous mappings on 2 MiB pages, written through once when mapped, grown by
// copying.
#include "model/kv_cache.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace idefics {

namespace {

constexpr size_t kHugeBytes = size_t{2} << 20;

// A zeroed, resident, read-write mapping of at least `bytes` bytes (2 MiB-aligned and advised huge from
// 2 MiB on); *mapped gets its length. Null when the memory is not there.
float* MapResident(size_t bytes, size_t* mapped) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const bool huge = bytes >= kHugeBytes;
  const size_t align = huge ? kHugeBytes : page;
  const size_t len = (bytes + align - 1) / align * align;
  void* r = ::mmap(nullptr, len + (huge ? kHugeBytes : 0), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) return nullptr;
  uintptr_t a = reinterpret_cast<uintptr_t>(r);
  if (huge) {
    const uintptr_t lo = a, hi = lo + len + kHugeBytes;
    a = (lo + kHugeBytes - 1) & ~(kHugeBytes - 1);
    if (a > lo) ::munmap(r, a - lo);
    if (hi > a + len) ::munmap(reinterpret_cast<void*>(a + len), hi - (a + len));
    ::madvise(reinterpret_cast<void*>(a), len, MADV_HUGEPAGE);  // advisory: ignored where THP is off
  }
  // Where the kernel lacks MADV_POPULATE_WRITE (EINVAL) the pages fault in on first write instead; any other
  // failure means the memory is not there.
  if (::madvise(reinterpret_cast<void*>(a), len, MADV_POPULATE_WRITE) != 0 && errno != EINVAL) {
    ::munmap(reinterpret_cast<void*>(a), len);
    return nullptr;
  }
  *mapped = len;
  return reinterpret_cast<float*>(a);
}

}  // namespace

TextKvCache::TextKvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t capacity)
    : n_layers_(n_layers), n_kv_heads_(n_kv_heads), head_dim_(head_dim), capacity_(capacity) {
  IDEFICS_CHECK(n_layers >= 0 && n_kv_heads >= 0 && head_dim >= 0 && capacity >= 0);
}

TextKvCache::~TextKvCache() {
  if (k_) ::munmap(k_, mapped_);
  if (v_) ::munmap(v_, mapped_);
}

bool TextKvCache::Reserve(int64_t n) {
  n = std::min(n, capacity_);
  if (n <= alloc_) return true;
  // The first mapping leaves room for kFirstRoom generated tokens; each growth adds half again.
  int64_t want = alloc_ == 0 ? n + kFirstRoom : std::max(n, alloc_ + alloc_ / 2);
  want = std::min(capacity_, (want + kReserveBlock - 1) / kReserveBlock * kReserveBlock);
  const int64_t runs = n_layers_ * n_kv_heads_;
  const size_t bytes = static_cast<size_t>(runs * want * head_dim_) * sizeof(float);
  if (bytes == 0) {  // an empty shape: nothing to hold
    alloc_ = want;
    return true;
  }
  size_t mapped_k = 0, mapped_v = 0;
  float* k = MapResident(bytes, &mapped_k);
  float* v = k ? MapResident(bytes, &mapped_v) : nullptr;
  if (!k || !v) {
    if (k) ::munmap(k, mapped_k);
    return false;
  }
  if (k_) {
    const size_t row_bytes = static_cast<size_t>(size_ * head_dim_) * sizeof(float);
    for (int64_t r = 0; r < runs; ++r) {
      std::memcpy(k + r * want * head_dim_, k_ + r * alloc_ * head_dim_, row_bytes);
      std::memcpy(v + r * want * head_dim_, v_ + r * alloc_ * head_dim_, row_bytes);
    }
    ::munmap(k_, mapped_);
    ::munmap(v_, mapped_);
  }
  k_ = k;
  v_ = v;
  mapped_ = mapped_k;
  alloc_ = want;
  return true;
}

}  // namespace idefics
