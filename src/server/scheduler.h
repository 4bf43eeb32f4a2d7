// Continuous batching: one thread keeps up to `parallel` sequences active, each with its own KV cache, sampler
// and detokenizer; new requests are prefilled (images encoded, cached) between batched decode steps.
// Mirrors the role of text-generation-inference's / vLLM's schedulers; numerics are Idefics2Model's.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "server/backend.h"
#include "server/image_cache.h"
#include "server/job.h"
#include "server/metrics.h"

namespace idefics::server {

struct SchedulerOptions {
  int parallel = 4;  // sequences decoded together
  int queue = 64;    // requests waiting while every slot is busy; Submit refuses beyond
};

class Scheduler {
 public:
  Scheduler(Backend& backend, ImageFeatureCache& cache, Metrics& metrics, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void Start();
  // Stops the thread; queued and active jobs fail with kCancelled.
  void Stop();
  // Queues a job; kResourceExhausted when every slot is taken and `queue` jobs already wait.
  Status Submit(std::shared_ptr<Job> job);

 private:
  struct Sequence;
  void Loop();
  void ReapCancelled();
  void Admit(const std::shared_ptr<Job>& job);
  void DecodeStep();
  // Samples the next token from the sequence's logits and forwards its text; true when the sequence is
  // finished (and its job told so).
  bool Consume(Sequence& seq, std::span<float> logits);
  StatusOr<std::vector<float>> GatherImageFeatures(JobInput& input);
  void PublishGauges();

  Backend& backend_;
  ImageFeatureCache& cache_;
  Metrics& metrics_;
  const SchedulerOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;  // guarded by mu_
  // Jobs taken from queue_ (being admitted or active), so that Submit counts a job as waiting only when no
  // slot is free for it. A job holds its slot until it is finished: Job::finished() turns true before its
  // client hears the answer, so a client's next request never finds its own old job counted. Finished ones
  // are pruned by the scheduler. Guarded by mu_.
  std::vector<std::shared_ptr<Job>> in_slots_;
  bool stop_ = false;                       // guarded by mu_
  std::vector<std::unique_ptr<Sequence>> active_;  // scheduler thread only
  std::vector<float> logits_;                      // [n_active, vocab], scheduler thread only
  std::thread thread_;
};

}  // namespace idefics::server
