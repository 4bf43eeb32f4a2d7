// The per-sequence KV cache of the Mistral decoder: rotated keys and values of every layer, allocated once
// for `capacity` tokens. Mirrors transformers' DynamicCache (without its per-token growth).
#pragma once

#include <cstdint>

#include "core/check.h"
#include "model/idefics2_model.h"

namespace idefics {

class TextKvCache : public KvCache {
 public:
  // Positions are made resident in blocks of this many (Reserve): at most this many positions' worth of
  // memory (256 KiB each at idefics2-8b's size) sits resident ahead of use.
  static constexpr int64_t kReserveBlock = 64;

  // Pages are touched lazily: a long capacity costs address space, not resident memory. If the allocation
  // fails the cache has capacity 0 (Forward then reports the capacity; nothing throws).
  TextKvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t capacity);
  ~TextKvCache() override;
  TextKvCache(const TextKvCache&) = delete;
  TextKvCache& operator=(const TextKvCache&) = delete;

  int64_t size() const override { return size_; }
  int64_t capacity() const override { return capacity_; }
  void Clear() override { size_ = 0; }
  void Truncate(int64_t n) override {
    IDEFICS_CHECK(n >= 0 && n <= size_);
    size_ = n;
  }

  int64_t n_layers() const { return n_layers_; }
  int64_t kv_dim() const { return n_kv_heads_ * head_dim_; }
  // One layer's keys / values, head-major: [kv_heads, capacity, head_dim] (kv_dim = kv_heads * head_dim).
  // A head's keys are contiguous, so the decode attention streams them instead of touching one 4 KiB page
  // per key (the token-major layout cost half the decode time at 512 tokens of context in TLB misses).
  float* keys(int64_t layer) { return k_ + layer * capacity_ * kv_dim(); }
  float* values(int64_t layer) { return v_ + layer * capacity_ * kv_dim(); }
  // Makes the memory of positions [0, n) resident ahead of their first write, kReserveBlock positions at a
  // time, with one MADV_POPULATE_WRITE per (layer, head) range instead of one page fault per 4 KiB page: a
  // fault measured 16 µs per page on the measurement VM, populating 0.9 (the decode step's KV writes took
  // 1.7 ms per token in faults). Where the kernel lacks it, the pages fault in as before.
  void Reserve(int64_t n);
  void Advance(int64_t n) {
    IDEFICS_CHECK(size_ + n <= capacity_);
    size_ += n;
  }

 private:
  void Populate(float* base, int64_t from, int64_t to);

  int64_t n_layers_, n_kv_heads_, head_dim_, capacity_;
  int64_t size_ = 0;
  int64_t reserved_ = 0;  // positions [0, reserved_) are resident
  bool populate_ok_ = true;
  size_t bytes_ = 0;  // of each mapping
  float* k_ = nullptr;
  float* v_ = nullptr;
};

}  // namespace idefics
