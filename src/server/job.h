// One chat completion in flight: its inputs (built by the HTTP handler) and the event channel through which the
// scheduler thread streams text back. No transformers counterpart (a generate() call split across threads).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "idefics/status.h"
#include "server/backend.h"
#include "server/image_cache.h"

namespace idefics::server {

using Clock = std::chrono::steady_clock;

// An image of the request: cached features (a hit at parse time) or the preprocessed pixels to encode.
struct JobImage {
  std::string cache_key;
  std::shared_ptr<const ImageFeatures> features;  // set on a cache hit
  std::shared_ptr<PreparedImage> prepared;        // set on a miss
};

struct JobInput {
  std::vector<int32_t> prompt;  // token ids, images expanded
  std::vector<JobImage> images; // in prompt order
  GenerationSettings settings;
  Clock::time_point arrival = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();
};

struct JobEvent {
  std::string text;                   // new text (may be empty on the final event)
  bool done = false;                  // last event of the job
  FinishReason finish = FinishReason::kNone;
  Status error;                       // set when the job failed
  int64_t prompt_tokens = 0;          // on the final event
  int64_t completion_tokens = 0;
};

class Job {
 public:
  explicit Job(JobInput input) : input_(std::move(input)) {}

  const JobInput& input() const { return input_; }
  JobInput& mutable_input() { return input_; }

  // Consumer (HTTP handler): waits up to `wait` for the next event; false on timeout.
  bool Next(JobEvent* event, std::chrono::milliseconds wait);
  // Stops the job (client gone, timeout); the scheduler frees its slot at the next step.
  void Cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // Producer (scheduler thread).
  void Emit(std::string text);
  void Finish(FinishReason reason, int64_t prompt_tokens, int64_t completion_tokens);
  void Fail(Status status);
  bool finished() const { return finished_.load(); }

 private:
  void Push(JobEvent event);

  JobInput input_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<JobEvent> events_;
};

}  // namespace idefics::server
