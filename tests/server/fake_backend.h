// A deterministic stand-in for the model stack, for server tests: byte tokens, a hash-chain "decoder" whose
// logits depend on every previous token (and image feature), real image decoding and the runtime's sampler.
#pragma once

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "image/decode.h"
#include "runtime/sampler.h"
#include "runtime/stop_rules.h"
#include "server/backend.h"

namespace idefics::server::test {

class FakeCache : public KvCache {
 public:
  explicit FakeCache(int64_t capacity) : capacity_(capacity) {}
  int64_t size() const override { return static_cast<int64_t>(states.size()); }
  int64_t capacity() const override { return capacity_; }
  void Clear() override { states.clear(); }
  void Truncate(int64_t n) override { states.resize(static_cast<size_t>(n)); }
  std::vector<uint64_t> states;  // hash after each position

 private:
  int64_t capacity_;
};

class FakeSequence : public SequenceDecoder {
 public:
  FakeSequence(const GenerationSettings& s, const std::vector<int32_t>& prompt)
      : sampler_(s.sampling, s.ignore_eos ? std::vector<int32_t>{2} : std::vector<int32_t>{}),
        stop_(StopConfig{{2}, s.stop, s.max_tokens}),
        context_(prompt) {}
  Step Advance(std::span<float> logits) override {
    Step step;
    step.token = sampler_.Next(logits, context_);
    context_.push_back(step.token);
    ++generated_;
    std::string piece;
    if (step.token >= 3 && step.token < 259) piece.push_back(static_cast<char>(step.token - 3));
    auto st = stop_.OnToken(step.token, piece);
    step.text = std::move(st.emit);
    step.finish = st.finish;
    return step;
  }
  int64_t generated_tokens() const override { return generated_; }

 private:
  Sampler sampler_;
  StopRules stop_;
  std::vector<int32_t> context_;
  int64_t generated_ = 0;
};

struct FakeOptions {
  int64_t context = 1024;
  std::chrono::microseconds step_delay{0};      // per DecodeBatch call (models a memory-bound step)
  std::chrono::microseconds per_seq_delay{0};   // per sequence in a step
  std::chrono::microseconds prefill_delay{0};
  std::chrono::microseconds encode_delay{0};
};

class FakeBackend : public Backend {
 public:
  static constexpr int64_t kVocab = 260;
  static constexpr int32_t kImageToken = 259;
  static constexpr int kLatents = 4, kHidden = 4;

  explicit FakeBackend(FakeOptions o = {}) : o_(o) {}

  std::atomic<int64_t> encode_calls{0};
  std::atomic<int64_t> max_batch{0};

  std::string ModelName() const override { return "fake-idefics2"; }
  int64_t ContextLength() const override { return o_.context; }
  bool DefaultImageSplitting() const override { return false; }
  int64_t VocabSize() const override { return kVocab; }

  StatusOr<PreparedImage> PrepareImage(const std::string& bytes, bool split, int64_t max_pixels) const override {
    DecodeOptions opts;
    opts.max_pixels = max_pixels;
    auto rgb = DecodeImageBytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "image", opts);
    if (!rgb.ok()) return rgb.status();
    PixelImage p;  // 1x1 "image": the mean colour
    p.width = p.height = 1;
    p.chw.assign(3, 0.f);
    for (size_t i = 0; i < rgb->pixels.size(); ++i) p.chw[i % 3] += rgb->pixels[i];
    for (float& v : p.chw) v /= static_cast<float>(rgb->pixels.size() / 3) * 255.f;
    PreparedImage out;
    for (int i = 0; i < (split ? 5 : 1); ++i) out.sub_images.push_back(p);
    return out;
  }

  StatusOr<std::vector<int32_t>> BuildPrompt(const std::vector<ChatMessage>& messages, bool split) const override {
    std::vector<int32_t> ids = {1};
    auto text = [&](const std::string& s) {
      for (unsigned char c : s) ids.push_back(3 + c);
    };
    for (const ChatMessage& m : messages) {
      text(m.role + ":");
      for (const ChatPart& p : m.parts) {
        if (p.is_image) ids.insert(ids.end(), static_cast<size_t>(kLatents * (split ? 5 : 1)), kImageToken);
        else text(p.text);
      }
      text("\n");
    }
    text("assistant:");
    return ids;
  }

  std::unique_ptr<SequenceDecoder> NewSequence(const GenerationSettings& s,
                                               const std::vector<int32_t>& prompt) const override {
    return std::make_unique<FakeSequence>(s, prompt);
  }

  StatusOr<std::vector<float>> EncodeImage(const PreparedImage& image) override {
    ++encode_calls;
    std::this_thread::sleep_for(o_.encode_delay);
    std::vector<float> f;  // [subs * kLatents, kHidden]
    for (const PixelImage& p : image.sub_images)
      for (int r = 0; r < kLatents * kHidden; ++r) f.push_back(p.chw[r % 3] + 0.01f * static_cast<float>(r));
    return f;
  }

  std::unique_ptr<KvCache> NewCache(int64_t capacity) override { return std::make_unique<FakeCache>(capacity); }

  Status Prefill(const std::vector<int32_t>& ids, const std::vector<float>& features, KvCache& cache,
                 float* logits) override {
    std::this_thread::sleep_for(o_.prefill_delay);
    auto& c = static_cast<FakeCache&>(cache);
    size_t row = 0;
    uint64_t h = c.states.empty() ? 1469598103934665603ull : c.states.back();
    for (int32_t id : ids) {
      if (c.size() >= c.capacity()) return OutOfRange("fake cache full");
      uint64_t v = static_cast<uint64_t>(id);
      if (id == kImageToken) {
        if ((row + 1) * kHidden > features.size()) return InternalError("too few image features");
        float x = features[row++ * kHidden];
        uint32_t bits;
        std::memcpy(&bits, &x, 4);
        v ^= uint64_t{bits} << 16;
      }
      h = Mix(h, v);
      c.states.push_back(h);
    }
    if (row * kHidden != features.size()) return InternalError("unused image features");
    FillLogits(h, logits);
    return Status::Ok();
  }

  Status DecodeBatch(const int32_t* ids, KvCache* const* caches, int64_t n, float* logits) override {
    int64_t m = max_batch.load();
    while (n > m && !max_batch.compare_exchange_weak(m, n)) {}
    std::this_thread::sleep_for(o_.step_delay + o_.per_seq_delay * n);
    for (int64_t s = 0; s < n; ++s) {
      auto& c = static_cast<FakeCache&>(*caches[s]);
      if (c.size() >= c.capacity()) return OutOfRange("fake cache full");
      const uint64_t h = Mix(c.states.back(), static_cast<uint64_t>(ids[s]));
      c.states.push_back(h);
      FillLogits(h, logits + s * kVocab);
    }
    return Status::Ok();
  }

  static uint64_t Mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
  }

  // The most likely token is a letter or a space (EOS about once in 20 tokens); a runner-up gives sampling
  // something to choose.
  static void FillLogits(uint64_t h, float* logits) {
    for (int64_t i = 0; i < kVocab; ++i) logits[i] = 0.f;
    int32_t best = (h % 7 == 0) ? 3 + ' ' : 3 + 'a' + static_cast<int32_t>((h >> 8) % 26);
    if ((h >> 32) % 20 == 0) best = 2;
    logits[best] = 4.f;
    logits[3 + 'a' + static_cast<int32_t>((h >> 40) % 26)] += 3.f;
  }

 private:
  FakeOptions o_;
};

}  // namespace idefics::server::test
