// The per-sequence KV cache of the Mistral decoder: rotated keys and values of every layer, allocated once
// for `capacity` tokens. Mirrors transformers' DynamicCache (without its per-token growth).
#pragma once

#include <cstdint>
#include <memory>
#include <new>

#include "core/check.h"
#include "model/idefics2_model.h"

namespace idefics {

class TextKvCache : public KvCache {
 public:
  // Pages are touched lazily (no zero fill): a long capacity costs address space, not resident memory.
  // If the allocation fails the cache has capacity 0 (Forward then reports the capacity; nothing throws).
  TextKvCache(int64_t n_layers, int64_t kv_dim, int64_t capacity)
      : n_layers_(n_layers), kv_dim_(kv_dim), capacity_(capacity) {
    const size_t n = static_cast<size_t>(n_layers * capacity * kv_dim);
    k_.reset(new (std::nothrow) float[n]);
    v_.reset(new (std::nothrow) float[n]);
    if (!k_ || !v_) {
      k_.reset();
      v_.reset();
      capacity_ = 0;
    }
  }

  int64_t size() const override { return size_; }
  int64_t capacity() const override { return capacity_; }
  void Clear() override { size_ = 0; }
  void Truncate(int64_t n) override {
    IDEFICS_CHECK(n >= 0 && n <= size_);
    size_ = n;
  }

  int64_t n_layers() const { return n_layers_; }
  int64_t kv_dim() const { return kv_dim_; }
  // One layer's keys / values, head-major: [kv_heads, capacity, head_dim] (kv_dim = kv_heads * head_dim).
  // A head's keys are contiguous, so the decode attention streams them instead of touching one 4 KiB page
  // per key (the token-major layout cost half the decode time at 512 tokens of context in TLB misses).
  float* keys(int64_t layer) { return k_.get() + layer * capacity_ * kv_dim_; }
  float* values(int64_t layer) { return v_.get() + layer * capacity_ * kv_dim_; }
  void Advance(int64_t n) {
    IDEFICS_CHECK(size_ + n <= capacity_);
    size_ += n;
  }

 private:
  int64_t n_layers_, kv_dim_, capacity_;
  int64_t size_ = 0;
  std::unique_ptr<float[]> k_, v_;
};

}  // namespace idefics
