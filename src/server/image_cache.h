// LRU cache of vision-encoder outputs keyed by a hash of the image bytes (+ the splitting flag), bounded in
// bytes, so a follow-up question about the same image skips decoding, preprocessing and the vision encoder.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace idefics::server {

// [sub_images * n_latents, hidden] connector outputs of one image.
using ImageFeatures = std::vector<float>;

class ImageFeatureCache {
 public:
  explicit ImageFeatureCache(int64_t capacity_bytes) : capacity_(capacity_bytes) {}

  static std::string Key(const std::string& image_sha256, bool do_image_splitting) {
    return image_sha256 + (do_image_splitting ? ":split" : ":whole");
  }

  // The features, or null (counted as a miss). A hit moves the entry to the front. The returned pointer stays
  // valid after eviction.
  std::shared_ptr<const ImageFeatures> Get(const std::string& key);
  // Looks up without touching the statistics (the scheduler re-checks after a handler's miss).
  std::shared_ptr<const ImageFeatures> Peek(const std::string& key);
  // Inserts (or refreshes) an entry, evicting least-recently-used entries over the budget. An entry larger than
  // the whole budget is not stored.
  void Put(const std::string& key, std::shared_ptr<const ImageFeatures> features);

  struct Stats {
    int64_t hits = 0, misses = 0, evictions = 0, entries = 0, bytes = 0, capacity_bytes = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const ImageFeatures> features;
    int64_t bytes = 0;
  };
  void EvictLocked();

  mutable std::mutex mu_;
  const int64_t capacity_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  int64_t bytes_ = 0, hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace idefics::server
