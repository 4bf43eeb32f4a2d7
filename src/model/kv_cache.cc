// TextKvCache's memory: anonymous mappings made resident block by block ahead of the writes.
#include "model/kv_cache.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace idefics {

TextKvCache::TextKvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t capacity)
    : n_layers_(n_layers), n_kv_heads_(n_kv_heads), head_dim_(head_dim), capacity_(capacity) {
  IDEFICS_CHECK(n_layers >= 0 && n_kv_heads >= 0 && head_dim >= 0 && capacity >= 0);
  bytes_ = static_cast<size_t>(n_layers * n_kv_heads * head_dim * capacity) * sizeof(float);
  if (bytes_ == 0) return;
  void* k = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* v = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (k == MAP_FAILED || v == MAP_FAILED) {
    if (k != MAP_FAILED) ::munmap(k, bytes_);
    if (v != MAP_FAILED) ::munmap(v, bytes_);
    capacity_ = 0;
    bytes_ = 0;
    return;
  }
  k_ = static_cast<float*>(k);
  v_ = static_cast<float*>(v);
}

TextKvCache::~TextKvCache() {
  if (k_) ::munmap(k_, bytes_);
  if (v_) ::munmap(v_, bytes_);
}

void TextKvCache::Populate(float* base, int64_t from, int64_t to) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const int64_t region = capacity_ * head_dim_;  // floats per (layer, head)
  for (int64_t r = 0; r < n_layers_ * n_kv_heads_ && populate_ok_; ++r) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(base + r * region + from * head_dim_) & ~(page - 1);
    const uintptr_t b = reinterpret_cast<uintptr_t>(base + r * region + to * head_dim_);
    // Advisory: a kernel without MADV_POPULATE_WRITE (EINVAL) stops further tries; other failures leave the
    // pages to fault in on first write, as they would without this call.
    if (b > a && ::madvise(reinterpret_cast<void*>(a), b - a, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
      populate_ok_ = false;
  }
}

void TextKvCache::Reserve(int64_t n) {
  n = std::min(n, capacity_);
  if (n <= reserved_ || !k_) return;
  const int64_t to = std::min(capacity_, (n + kReserveBlock - 1) / kReserveBlock * kReserveBlock);
  Populate(k_, reserved_, to);
  Populate(v_, reserved_, to);
  reserved_ = to;
}

}  // namespace idefics
