// The per-sequence KV cache of the Mistral decoder: rotated keys and values of every layer, allocated once
// for `capacity` tokens. Mirrors transformers' DynamicCache (without its per-token growth).
#pragma once

#include <cstdint>

#include "core/check.h"
#include "model/idefics2_model.h"

namespace idefics {

class TextKvCache : public KvCache {
 public:
  // Positions are allocated in multiples of this many (Reserve), the first time with room for kFirstRoom more
  // than asked (a prompt's answer usually fits without a growth).
  static constexpr int64_t kReserveBlock = 64;
  static constexpr int64_t kFirstRoom = 256;

  // Holds up to `capacity` positions; memory comes with Reserve, so a long capacity costs nothing until used.
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
  // Makes room for positions [0, n) (n clamped to the capacity), keeping [0, size()). Returns false when the
  // memory is not there (the cache is then unchanged). The memory is one AllocLarge buffer per keys / values
  // on 2 MiB pages, written through once when allocated (MADV_POPULATE_WRITE): on the measurement VM the
  // first write to a 4 KiB page cost 16 µs (0.25 GB/s), to a 2 MiB page 15-20 GB/s. It grows by half again
  // (and at least to n), copying the cached positions: a few ms at 512 tokens, while both buffers exist.
  bool Reserve(int64_t n);
  // Positions reserved per (layer, head) run: the stride of keys(l) / values(l) below.
  int64_t stride() const { return alloc_; }
  // One layer's keys / values after Reserve, head-major: [kv_heads, stride(), head_dim]. A head's keys are
  // contiguous, so the decode attention streams them instead of touching one 4 KiB page per key (the
  // token-major layout cost half the decode time at 512 tokens of context in TLB misses).
  float* keys(int64_t layer) { return k_ + layer * alloc_ * kv_dim(); }
  float* values(int64_t layer) { return v_ + layer * alloc_ * kv_dim(); }
  void Advance(int64_t n) {
    IDEFICS_CHECK(size_ + n <= capacity_ && size_ + n <= alloc_);
    size_ += n;
  }

 private:
  int64_t n_layers_, n_kv_heads_, head_dim_, capacity_;
  int64_t size_ = 0;
  int64_t alloc_ = 0;  // positions per run in the current buffers
  float* k_ = nullptr;
  float* v_ = nullptr;
};

}  // namespace idefics
