// Server counters and gauges rendered in the Prometheus text exposition format at GET /metrics.
// No transformers counterpart (operations), names follow Prometheus conventions (_total, _seconds).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace idefics::server {

struct ImageCacheStatsView {
  int64_t hits = 0, misses = 0, evictions = 0, entries = 0, bytes = 0, capacity_bytes = 0;
};

class Metrics {
 public:
  // One finished HTTP request; path is folded to a known route or "other".
  void CountRequest(const std::string& path, int status);

  std::atomic<int64_t> prompt_tokens{0};
  std::atomic<int64_t> generated_tokens{0};
  std::atomic<int64_t> queue_depth{0};
  std::atomic<int64_t> active_sequences{0};
  std::atomic<int64_t> parallel_slots{0};
  std::atomic<int64_t> images_encoded{0};
  std::atomic<int64_t> completions_cancelled{0};
  std::atomic<int64_t> completions_finished{0};
  std::atomic<int64_t> decode_steps{0};
  std::atomic<int64_t> model_loaded{0};

  void ObserveTimeToFirstToken(double seconds);
  // A batched decode step produced n tokens in `seconds` (feeds the tokens/s gauge, smoothed).
  void ObserveDecodeStep(int64_t n, double seconds);

  // Prometheus text; the cache figures are passed in (the cache owns them).
  std::string Render(const ImageCacheStatsView& cache) const;

 private:
  static constexpr std::array<double, 12> kTtftBuckets = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                           1.0,  2.5,   5.0,  10.0, 30.0, 60.0};
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::array<int64_t, kTtftBuckets.size()> ttft_buckets_{};
  int64_t ttft_count_ = 0;
  double ttft_sum_ = 0;
  double tokens_per_second_ = 0;  // exponential moving average over decode steps
};

}  // namespace idefics::server
