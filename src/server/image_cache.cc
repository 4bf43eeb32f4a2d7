// LRU cache of image features bounded in bytes (see image_cache.h).
// No transformers counterpart: a server-side optimization (features are a pure function of bytes + flag).
#include "server/image_cache.h"

namespace idefics::server {

std::shared_ptr<const ImageFeatures> ImageFeatureCache::Get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->features;
}

std::shared_ptr<const ImageFeatures> ImageFeatureCache::Peek(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->features;
}

void ImageFeatureCache::Put(const std::string& key, std::shared_ptr<const ImageFeatures> features) {
  if (!features) return;
  const int64_t bytes = static_cast<int64_t>(features->size() * sizeof(float) + key.size());
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    index_.erase(it);
  }
  if (bytes > capacity_) return;
  lru_.push_front(Entry{key, std::move(features), bytes});
  index_[key] = lru_.begin();
  bytes_ += bytes;
  EvictLocked();
}

void ImageFeatureCache::EvictLocked() {
  while (bytes_ > capacity_ && !lru_.empty()) {
    Entry& victim = lru_.back();
    bytes_ -= victim.bytes;
    index_.erase(victim.key);
    lru_.pop_back();
    ++evictions_;
  }
}

ImageFeatureCache::Stats ImageFeatureCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Stats{hits_, misses_, evictions_, static_cast<int64_t>(lru_.size()), bytes_, capacity_};
}

}  // namespace idefics::server
