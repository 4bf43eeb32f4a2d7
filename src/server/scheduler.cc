// Continuous batching scheduler (see scheduler.h).
// Mirrors the role of TGI's / vLLM's schedulers; numerics are Idefics2Model::Forward / DecodeBatch.
#include "server/scheduler.h"

#include <algorithm>
#include <condition_variable>

namespace idefics::server {

struct Scheduler::Sequence {
  std::shared_ptr<Job> job;
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<SequenceDecoder> decoder;
  int32_t last_token = 0;
  int64_t prompt_tokens = 0;
};

Scheduler::Scheduler(Backend& backend, ImageFeatureCache& cache, Metrics& metrics, SchedulerOptions options)
    : backend_(backend), cache_(cache), metrics_(metrics), options_(options) {
  metrics_.parallel_slots = options_.parallel;
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::deque<std::shared_ptr<Job>> queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued.swap(queue_);
    in_slots_.clear();
  }
  for (auto& job : queued) job->Fail(Cancelled("the server is shutting down"));
  for (auto& seq : active_) seq->job->Fail(Cancelled("the server is shutting down"));
  active_.clear();
  PublishGauges();
}

Status Scheduler::Submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return Cancelled("the server is shutting down");
    // Jobs in queue_ that a free slot will take at the scheduler's next step are not waiting: refuse only
    // when the running and the queued jobs together fill every slot and the whole queue.
    const auto busy =
        std::count_if(in_slots_.begin(), in_slots_.end(), [](const auto& j) { return !j->finished(); });
    if (static_cast<int>(busy + queue_.size()) >= options_.parallel + options_.queue)
      return ResourceExhausted("the request queue is full (" + std::to_string(options_.parallel) +
                               " running, " + std::to_string(options_.queue) + " waiting); retry later");
    queue_.push_back(std::move(job));
    metrics_.queue_depth = static_cast<int64_t>(queue_.size());
  }
  cv_.notify_all();
  return Status::Ok();
}

void Scheduler::PublishGauges() { metrics_.active_sequences = static_cast<int64_t>(active_.size()); }

void Scheduler::Loop() {
  for (;;) {
    std::shared_ptr<Job> next;
    {
      std::unique_lock<std::mutex> lock(mu_);
      std::erase_if(in_slots_, [](const auto& j) { return j->finished(); });
      // Wake for work: a step to run, or a queued job and a free slot. Periodic wake-ups reap timeouts.
      cv_.wait_for(lock, std::chrono::milliseconds(200), [&] {
        return stop_ || !active_.empty() ||
               (!queue_.empty() && static_cast<int>(active_.size()) < options_.parallel);
      });
      if (stop_) return;
      // One admission per step: a new request's prefill (and vision encoding) delays the active sequences
      // by one prefill, never per token.
      if (!queue_.empty() && static_cast<int>(active_.size()) < options_.parallel) {
        next = std::move(queue_.front());
        queue_.pop_front();
        in_slots_.push_back(next);
        metrics_.queue_depth = static_cast<int64_t>(queue_.size());
      }
      // Jobs waiting in the queue can time out or be abandoned too.
      for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->cancelled() || Clock::now() > (*it)->input().deadline) {
          (*it)->Fail(Cancelled((*it)->cancelled() ? "client disconnected" : "request timed out in the queue"));
          ++metrics_.completions_cancelled;
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      metrics_.queue_depth = static_cast<int64_t>(queue_.size());
    }
    ReapCancelled();
    if (next) Admit(next);
    if (!active_.empty()) DecodeStep();
    PublishGauges();
  }
}

void Scheduler::ReapCancelled() {
  const auto now = Clock::now();
  auto gone = [&](const std::unique_ptr<Sequence>& s) {
    if (s->job->cancelled()) {
      s->job->Fail(Cancelled("client disconnected"));
    } else if (now > s->job->input().deadline) {
      s->job->Fail(Cancelled("request exceeded the server's --timeout"));
    } else {
      return false;
    }
    ++metrics_.completions_cancelled;
    return true;
  };
  active_.erase(std::remove_if(active_.begin(), active_.end(), gone), active_.end());
}

StatusOr<std::vector<float>> Scheduler::GatherImageFeatures(JobInput& input) {
  std::vector<float> all;
  for (JobImage& image : input.images) {
    std::shared_ptr<const ImageFeatures> features = image.features;
    // A request that missed at parse time may find the features encoded since (same image sent twice).
    if (!features) features = cache_.Peek(image.cache_key);
    if (!features) {
      if (!image.prepared) return InternalError("image has neither features nor pixels");
      ASSIGN_OR_RETURN(std::vector<float> encoded, backend_.EncodeImage(*image.prepared));
      ++metrics_.images_encoded;
      features = std::make_shared<const ImageFeatures>(std::move(encoded));
      cache_.Put(image.cache_key, features);
    }
    image.prepared.reset();  // pixels are no longer needed
    all.insert(all.end(), features->begin(), features->end());
  }
  return all;
}

void Scheduler::Admit(const std::shared_ptr<Job>& job) {
  if (job->cancelled()) {
    job->Fail(Cancelled("client disconnected"));
    ++metrics_.completions_cancelled;
    return;
  }
  JobInput& input = job->mutable_input();
  auto features = GatherImageFeatures(input);
  if (!features.ok()) {
    job->Fail(features.status());
    return;
  }
  auto seq = std::make_unique<Sequence>();
  seq->job = job;
  seq->prompt_tokens = static_cast<int64_t>(input.prompt.size());
  seq->cache = backend_.NewCache(seq->prompt_tokens + input.settings.max_tokens);
  seq->decoder = backend_.NewSequence(input.settings, input.prompt);
  const int64_t vocab = backend_.VocabSize();
  std::vector<float> logits(static_cast<size_t>(vocab));  // [vocab]
  Status st = backend_.Prefill(input.prompt, *features, *seq->cache, logits.data());
  if (!st.ok()) {
    job->Fail(st);
    return;
  }
  metrics_.prompt_tokens += seq->prompt_tokens;
  metrics_.ObserveTimeToFirstToken(std::chrono::duration<double>(Clock::now() - input.arrival).count());
  if (!Consume(*seq, std::span<float>(logits))) active_.push_back(std::move(seq));
}

void Scheduler::DecodeStep() {
  const int64_t n = static_cast<int64_t>(active_.size());
  const int64_t vocab = backend_.VocabSize();
  std::vector<int32_t> ids(static_cast<size_t>(n));   // [n]
  std::vector<KvCache*> caches(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    ids[i] = active_[i]->last_token;
    caches[i] = active_[i]->cache.get();
  }
  logits_.resize(static_cast<size_t>(n * vocab));  // [n, vocab]
  const auto t0 = Clock::now();
  Status st = backend_.DecodeBatch(ids.data(), caches.data(), n, logits_.data());
  if (!st.ok()) {
    for (auto& seq : active_) seq->job->Fail(st);
    active_.clear();
    return;
  }
  metrics_.ObserveDecodeStep(n, std::chrono::duration<double>(Clock::now() - t0).count());
  std::vector<std::unique_ptr<Sequence>> still;
  still.reserve(active_.size());
  for (int64_t i = 0; i < n; ++i) {
    Sequence& seq = *active_[i];
    if (!Consume(seq, std::span<float>(logits_.data() + i * vocab, static_cast<size_t>(vocab))))
      still.push_back(std::move(active_[i]));
  }
  active_.swap(still);
}

bool Scheduler::Consume(Sequence& seq, std::span<float> logits) {
  Job& job = *seq.job;
  SequenceDecoder::Step step = seq.decoder->Advance(logits);
  if (step.token >= 0) ++metrics_.generated_tokens;
  job.Emit(std::move(step.text));
  // The sampled token is fed at the next step, so it needs one free cache position (always there when
  // capacity = prompt + max_tokens; checked anyway).
  if (step.finish == FinishReason::kNone && seq.cache->size() >= seq.cache->capacity())
    step.finish = FinishReason::kLength;
  if (step.finish != FinishReason::kNone) {
    job.Finish(step.finish, seq.prompt_tokens, seq.decoder->generated_tokens());
    ++metrics_.completions_finished;
    return true;
  }
  seq.last_token = step.token;
  return false;
}

}  // namespace idefics::server
