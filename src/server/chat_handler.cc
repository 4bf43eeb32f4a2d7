// POST /v1/chat/completions (see chat_handler.h).
// Mirrors OpenAI's chat completions endpoint (JSON and server-sent-event responses).
#include "server/chat_handler.h"

#include <httplib.h>

#include <random>
#include <unordered_map>

#include "server/connection_probe.h"
#include "server/image_source.h"
#include "server/openai_format.h"
#include "server/routes.h"

namespace idefics::server {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(250);
// A streaming client that hears nothing for this long gets an SSE comment; writing it is how a vanished
// client is noticed while its request waits in the queue or in a long prefill.
constexpr auto kKeepAliveAfter = std::chrono::seconds(2);

ApiError ErrorFromJob(const Status& st) {
  if (st.code() == StatusCode::kCancelled) return {503, st.message(), "server_error", "", "cancelled"};
  return FromStatus(st, "");
}

// State of one streaming response, shared by httplib's content provider calls.
struct StreamState {
  std::shared_ptr<Job> job;
  CompletionMeta meta;
  bool include_usage = false;
  bool sent_role = false;
  Clock::time_point last_write = Clock::now();
  int64_t completion_tokens = 0;
};

bool Write(httplib::DataSink& sink, StreamState& s, const std::string& data) {
  s.last_write = Clock::now();
  return sink.write(data.data(), data.size());
}

// One call of the chunked content provider: forwards what the scheduler produced. Returning false ends the
// response (httplib then closes the connection), which we do when a write fails: the client is gone.
bool PumpStream(StreamState& s, httplib::DataSink& sink) {
  if (!s.sent_role) {
    s.sent_role = true;
    if (!Write(sink, s, SseRoleChunk(s.meta))) return false;
  }
  JobEvent ev;
  if (!s.job->Next(&ev, kPollInterval)) {
    if (Clock::now() - s.last_write > kKeepAliveAfter) return Write(sink, s, ": keep-alive\n\n");
    return true;
  }
  if (!ev.text.empty() && !Write(sink, s, SseContentChunk(s.meta, ev.text))) return false;
  if (!ev.done) return true;
  if (!ev.error.ok()) {
    if (!Write(sink, s, SseData(ErrorFromJob(ev.error).ToJson()))) return false;
    ThreadLogNote() += " error=\"" + ev.error.message() + "\"";
  } else {
    if (!Write(sink, s, SseFinalChunk(s.meta, FinishReasonName(ev.finish)))) return false;
    if (s.include_usage && !Write(sink, s, SseUsageChunk(s.meta, ev.prompt_tokens, ev.completion_tokens)))
      return false;
    ThreadLogNote() += " prompt_tokens=" + std::to_string(ev.prompt_tokens) +
                       " completion_tokens=" + std::to_string(ev.completion_tokens) +
                       " finish=" + FinishReasonName(ev.finish);
  }
  if (!Write(sink, s, kSseDone)) return false;
  sink.done();
  return true;
}

}  // namespace

std::string& ThreadLogNote() {
  thread_local std::string note;
  return note;
}

std::variant<PreparedJob, ApiError> BuildJob(ServerState& state, const ChatRequest& request) {
  Backend* backend = state.backend();
  if (!backend) return ApiError{503, "the model is still loading", "server_error", "", "model_loading"};
  const ServerOptions& opt = state.options;
  const bool split = request.do_image_splitting.value_or(backend->DefaultImageSplitting());

  JobInput input;
  PreparedJob out;
  std::unordered_map<std::string, size_t> seen;  // the same image twice in one request is prepared once
  ImageSourceOptions source{opt.allow_local_dir, opt.max_body_bytes};
  for (size_t i = 0; i < request.image_urls.size(); ++i) {
    const std::string& param = request.image_params[i];
    auto bytes = LoadImageUrl(request.image_urls[i], source);
    if (!bytes.ok()) return FromStatus(bytes.status(), param);
    JobImage image;
    image.cache_key = ImageFeatureCache::Key(Sha256Hex(*bytes), split);
    if (auto it = seen.find(image.cache_key); it != seen.end()) {
      image = input.images[it->second];
    } else if ((image.features = state.cache.Get(image.cache_key))) {
      ++out.cache_hits;
    } else {
      auto prepared = backend->PrepareImage(*bytes, split, opt.max_image_pixels);
      if (!prepared.ok()) return FromStatus(prepared.status(), param);
      image.prepared = std::make_shared<PreparedImage>(std::move(prepared).value());
    }
    seen.emplace(image.cache_key, input.images.size());
    input.images.push_back(std::move(image));
  }

  auto prompt = backend->BuildPrompt(request.messages, split);
  if (!prompt.ok()) return FromStatus(prompt.status(), "messages");
  input.prompt = std::move(prompt).value();
  const int64_t context = backend->ContextLength();
  const int64_t n_prompt = static_cast<int64_t>(input.prompt.size());
  if (n_prompt >= context)
    return Unprocessable("the prompt has " + std::to_string(n_prompt) + " tokens; the context holds " +
                             std::to_string(context) + " (prompt + completion)",
                         "messages", "context_length_exceeded");
  // Absent max_tokens means "up to the cap"; either way the completion is clamped to the context left.
  GenerationSettings& settings = input.settings;
  settings.max_tokens = std::min(request.max_tokens.value_or(opt.max_tokens_cap), context - n_prompt);
  settings.sampling = request.sampling;
  if (!request.seed_given) settings.sampling.seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  settings.stop = request.stop;
  settings.ignore_eos = request.ignore_eos;
  input.arrival = Clock::now();
  input.deadline = input.arrival + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(opt.timeout_s));
  out.job = std::make_shared<Job>(std::move(input));
  return out;
}

void HandleChatCompletions(ServerState& state, const httplib::Request& req, httplib::Response& res) {
  ParseLimits limits;
  limits.max_images = state.options.max_images;
  limits.max_tokens_cap = state.options.max_tokens_cap;
  auto parsed = ParseChatRequest(req.body, limits);
  if (auto* err = std::get_if<ApiError>(&parsed)) return SendError(res, *err);
  const ChatRequest& request = std::get<ChatRequest>(parsed);

  auto built = BuildJob(state, request);
  if (auto* err = std::get_if<ApiError>(&built)) return SendError(res, *err);
  PreparedJob& prepared = std::get<PreparedJob>(built);
  std::shared_ptr<Job> job = prepared.job;
  ThreadLogNote() = " images=" + std::to_string(request.image_urls.size()) +
                    " cache_hits=" + std::to_string(prepared.cache_hits) +
                    " stream=" + (request.stream ? "1" : "0");

  Scheduler* scheduler = state.scheduler();
  Status submitted = scheduler ? scheduler->Submit(job) : Cancelled("the model is not loaded");
  if (!submitted.ok()) {
    res.set_header("Retry-After", "1");
    if (submitted.code() == StatusCode::kResourceExhausted)
      return SendError(res, {429, submitted.message(), "server_error", "", "queue_full"});
    return SendError(res, {503, submitted.message(), "server_error", "", "unavailable"});
  }

  CompletionMeta meta{NewCompletionId(), UnixSeconds(), state.backend()->ModelName()};
  if (request.stream) {
    auto stream = std::make_shared<StreamState>();
    stream->job = job;
    stream->meta = meta;
    stream->include_usage = request.include_usage;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [stream](size_t, httplib::DataSink& sink) {
          if (PumpStream(*stream, sink)) return true;
          stream->job->Cancel();
          return false;
        },
        // Called when the response ends for any reason: a job still running has lost its reader.
        [job](bool) { job->Cancel(); });
    return;
  }

  // Non-streaming: wait for the whole answer (the scheduler enforces --timeout). Nothing is written before
  // the answer is complete (its status is not known earlier), so a client that leaves is noticed by peeking
  // at its socket; cancelling frees the --parallel slot as a broken stream does.
  std::string text;
  JobEvent ev;
  const ConnectionProbe client(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  auto next_check = Clock::now() + kPollInterval;
  const auto give_up = job->input().deadline + std::chrono::seconds(30);  // the scheduler fails it before
  for (;;) {
    if (Clock::now() >= next_check) {
      next_check = Clock::now() + kPollInterval;
      if (client.ClientGone()) {
        job->Cancel();
        ThreadLogNote() += " client_gone=1";
        return SendError(res, {503, "client disconnected", "server_error", "", "cancelled"});
      }
    }
    if (!job->Next(&ev, kPollInterval)) {
      if (Clock::now() < give_up) continue;
      job->Cancel();
      return SendError(res, {503, "request timed out", "server_error", "", "timeout"});
    }
    text += ev.text;
    if (ev.done) break;
  }
  if (!ev.error.ok()) {
    ThreadLogNote() += " error=\"" + ev.error.message() + "\"";
    return SendError(res, ErrorFromJob(ev.error));
  }
  ThreadLogNote() += " prompt_tokens=" + std::to_string(ev.prompt_tokens) +
                     " completion_tokens=" + std::to_string(ev.completion_tokens) +
                     " finish=" + FinishReasonName(ev.finish);
  res.set_content(CompletionJson(meta, text, FinishReasonName(ev.finish), ev.prompt_tokens, ev.completion_tokens),
                  "application/json");
}

}  // namespace idefics::server
