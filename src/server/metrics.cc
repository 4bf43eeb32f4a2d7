// Prometheus text rendering of the server's counters (see metrics.h).
// Follows the Prometheus text exposition format 0.0.4.
#include "server/metrics.h"

#include <cstdio>
#include <sstream>

namespace idefics::server {
namespace {

std::string FoldPath(const std::string& path) {
  static const char* kKnown[] = {"/", "/health", "/metrics", "/v1/models", "/v1/chat/completions"};
  for (const char* k : kKnown)
    if (path == k) return k;
  return "other";  // keeps hostile paths from growing the label set
}

std::string Num(double v) {
  char buf[64];
  // Counters print exactly (no exponent) while they fit a double's integer range.
  if (v == static_cast<double>(static_cast<long long>(v)) && v < 1e15 && v > -1e15)
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v));
  else
    std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

}  // namespace

void Metrics::CountRequest(const std::string& path, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{FoldPath(path), status}];
}

void Metrics::ObserveTimeToFirstToken(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < kTtftBuckets.size(); ++i)
    if (seconds <= kTtftBuckets[i]) ++ttft_buckets_[i];
  ++ttft_count_;
  ttft_sum_ += seconds;
}

void Metrics::ObserveDecodeStep(int64_t n, double seconds) {
  if (seconds <= 0) return;
  ++decode_steps;
  std::lock_guard<std::mutex> lock(mu_);
  const double rate = static_cast<double>(n) / seconds;
  tokens_per_second_ = tokens_per_second_ == 0 ? rate : 0.9 * tokens_per_second_ + 0.1 * rate;
}

std::string Metrics::Render(const ImageCacheStatsView& cache) const {
  std::ostringstream o;
  auto gauge = [&](const char* name, const char* help, const char* type, double v) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << Num(v)
      << '\n';
  };
  std::lock_guard<std::mutex> lock(mu_);
  o << "# HELP idefics_requests_total HTTP requests by route and status code.\n"
       "# TYPE idefics_requests_total counter\n";
  for (const auto& [key, count] : requests_)
    o << "idefics_requests_total{path=\"" << key.first << "\",status=\"" << key.second << "\"} " << count << '\n';
  gauge("idefics_model_loaded", "1 once the model is loaded.", "gauge", model_loaded.load());
  gauge("idefics_prompt_tokens_total", "Prompt tokens processed.", "counter", prompt_tokens.load());
  gauge("idefics_generated_tokens_total", "Completion tokens generated.", "counter", generated_tokens.load());
  gauge("idefics_queue_depth", "Requests waiting for a slot.", "gauge", queue_depth.load());
  gauge("idefics_active_sequences", "Sequences being generated.", "gauge", active_sequences.load());
  gauge("idefics_parallel_slots", "Maximum concurrent sequences (--parallel).", "gauge", parallel_slots.load());
  gauge("idefics_completions_finished_total", "Completions that ran to the end.", "counter",
        completions_finished.load());
  gauge("idefics_completions_cancelled_total", "Completions stopped by a disconnect or timeout.", "counter",
        completions_cancelled.load());
  gauge("idefics_decode_steps_total", "Batched decode steps.", "counter", decode_steps.load());
  gauge("idefics_decode_tokens_per_second", "Aggregate decode throughput (moving average over steps).", "gauge",
        tokens_per_second_);
  gauge("idefics_images_encoded_total", "Images run through the vision encoder.", "counter",
        images_encoded.load());
  gauge("idefics_image_cache_hits_total", "Image-feature cache hits.", "counter", cache.hits);
  gauge("idefics_image_cache_misses_total", "Image-feature cache misses.", "counter", cache.misses);
  gauge("idefics_image_cache_evictions_total", "Image-feature cache evictions.", "counter", cache.evictions);
  gauge("idefics_image_cache_entries", "Images in the feature cache.", "gauge", cache.entries);
  gauge("idefics_image_cache_bytes", "Bytes held by the feature cache.", "gauge", cache.bytes);
  gauge("idefics_image_cache_capacity_bytes", "Feature cache budget (--image-cache-mb).", "gauge",
        cache.capacity_bytes);
  o << "# HELP idefics_time_to_first_token_seconds Time from request arrival to the first generated token.\n"
       "# TYPE idefics_time_to_first_token_seconds histogram\n";
  for (size_t i = 0; i < kTtftBuckets.size(); ++i)
    o << "idefics_time_to_first_token_seconds_bucket{le=\"" << Num(kTtftBuckets[i]) << "\"} " << ttft_buckets_[i]
      << '\n';
  o << "idefics_time_to_first_token_seconds_bucket{le=\"+Inf\"} " << ttft_count_ << '\n'
    << "idefics_time_to_first_token_seconds_sum " << Num(ttft_sum_) << '\n'
    << "idefics_time_to_first_token_seconds_count " << ttft_count_ << '\n';
  return o.str();
}

}  // namespace idefics::server
