// The event channel between the scheduler thread and an HTTP handler (see job.h).
// No transformers counterpart (a generate() streamer, made thread-safe).
#include "server/job.h"

namespace idefics::server {

bool Job::Next(JobEvent* event, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, wait, [&] { return !events_.empty(); })) return false;
  *event = std::move(events_.front());
  events_.pop_front();
  return true;
}

void Job::Push(JobEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(event));
  }
  cv_.notify_all();
}

void Job::Emit(std::string text) {
  if (text.empty()) return;
  JobEvent e;
  e.text = std::move(text);
  Push(std::move(e));
}

void Job::Finish(FinishReason reason, int64_t prompt_tokens, int64_t completion_tokens) {
  if (finished_.exchange(true)) return;
  JobEvent e;
  e.done = true;
  e.finish = reason;
  e.prompt_tokens = prompt_tokens;
  e.completion_tokens = completion_tokens;
  Push(std::move(e));
}

void Job::Fail(Status status) {
  if (finished_.exchange(true)) return;
  JobEvent e;
  e.done = true;
  e.error = std::move(status);
  Push(std::move(e));
}

}  // namespace idefics::server
