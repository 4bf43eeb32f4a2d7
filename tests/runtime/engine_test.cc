// The Engine end to end on the tiny golden models: greedy generation reproduces transformers' generated_ids
// (prompt ids, prefill logits too), 1 vs 2 threads identical, streaming, cancellation, context checks,
// stop strings, seeded sampling, session prefix reuse, and a DecodeBatch-driven loop like the server's.
#include "idefics/engine.h"

#include <gtest/gtest.h>

#include "model/idefics2_model.h"
#include "runtime/runtime_test_util.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace idefics {
namespace {

using test::ToI64;

std::unique_ptr<Engine> LoadTiny(const std::string& model, int threads, int64_t ctx = 0) {
  EngineOptions o;
  o.model_dir = test::TinyModelDir(model);
  o.threads = threads;
  o.ctx = ctx;
  auto e = Engine::Load(o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

struct CaseParam {
  const char* model;
  const char* name;
};

class EngineGoldenTest : public ::testing::TestWithParam<CaseParam> {};

TEST_P(EngineGoldenTest, GreedyMatchesTransformersOneAndTwoThreads) {
  const test::ModelCase c = test::FindCase(GetParam().model, GetParam().name);
  std::vector<int32_t> first_ids;
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads=" + std::to_string(threads));
    auto engine = LoadTiny(c.model, threads);
    ASSERT_NE(engine, nullptr);
    std::string streamed;
    auto r = engine->Generate(c.request, [&](std::string_view piece) {
      EXPECT_TRUE(tokenizer::IsValidUtf8(piece));
      streamed += piece;
      return true;
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(ToI64(r->prompt_ids), c.input_ids);
    EXPECT_EQ(ToI64(r->generated_ids), c.generated_ids);
    EXPECT_EQ(r->finish_reason, FinishReason::kLength);
    EXPECT_EQ(streamed, r->text);
    EXPECT_EQ(r->text, engine->tokenizer().Decode(r->generated_ids));
    EXPECT_EQ(r->timings.prompt_tokens, static_cast<int64_t>(c.input_ids.size()));
    EXPECT_EQ(r->timings.generated_tokens, 16);
    if (threads == 1)
      first_ids = r->generated_ids;
    else
      EXPECT_EQ(r->generated_ids, first_ids);
  }
}

TEST_P(EngineGoldenTest, PromptLogitsMatchGolden) {
  const test::ModelCase c = test::FindCase(GetParam().model, GetParam().name);
  auto engine = LoadTiny(c.model, 2);
  ASSERT_NE(engine, nullptr);
  GenerationRequest req = c.request;
  req.max_tokens = 1;
  GenerateOptions opts;
  opts.prompt_logits = true;
  auto r = engine->Generate(req, nullptr, opts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto golden = test::OpenGolden(c.file);
  ASSERT_NE(golden, nullptr);
  const std::vector<float> expected = test::GoldenF32(*golden, "logits");
  ASSERT_EQ(r->prompt_logits.size(), expected.size());
  EXPECT_TRUE(
      test::AllClose("logits", r->prompt_logits.data(), expected.data(), expected.size(), 1e-4f, 1e-4f));
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, EngineGoldenTest,
    ::testing::Values(CaseParam{"idefics2-tiny-a", "text_only"}, CaseParam{"idefics2-tiny-a", "one_image"},
                      CaseParam{"idefics2-tiny-a", "one_image_split"},
                      CaseParam{"idefics2-tiny-a", "two_images"}, CaseParam{"idefics2-tiny-b", "text_only"},
                      CaseParam{"idefics2-tiny-b", "one_image"},
                      CaseParam{"idefics2-tiny-b", "one_image_split"},
                      CaseParam{"idefics2-tiny-b", "two_images"}),
    [](const auto& info) {
      return std::string(1, std::string(info.param.model).back()) + "_" + info.param.name;
    });

TEST(EngineTest, BannedImageTokensAndEosIdsComeFromTheFolder) {
  auto engine = LoadTiny("idefics2-tiny-a", 1);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->banned_ids(), (std::vector<int32_t>{4001, 4000}));
  EXPECT_EQ(engine->eos_ids(), (std::vector<int32_t>{2, 4002}));
  EXPECT_EQ(engine->context_length(), 4096);
  test::ModelCase c = test::FindCase("idefics2-tiny-a", "one_image");
  c.request.ban_image_tokens = true;
  auto r = engine->Generate(c.request);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (int32_t id : r->generated_ids) EXPECT_TRUE(id != 4000 && id != 4001);
}

TEST(EngineTest, ContextOverflowIsRefusedBeforeCompute) {
  auto engine = LoadTiny("idefics2-tiny-a", 1, 40);
  ASSERT_NE(engine, nullptr);
  test::ModelCase c = test::FindCase("idefics2-tiny-a", "one_image");  // 27 prompt tokens
  auto r = engine->Generate(c.request);                                // + 16 > 40
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("use at most 13 new tokens"), std::string::npos)
      << r.status().message();
  c.request.max_tokens = 13;
  EXPECT_TRUE(engine->Generate(c.request).ok());
  auto small = LoadTiny("idefics2-tiny-a", 1, 20);
  ASSERT_NE(small, nullptr);
  c.request.max_tokens = 1;
  auto s = small->Generate(c.request);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("27 tokens"), std::string::npos) << s.status().message();
  // Bad context sizes and dtypes at load time.
  EngineOptions o;
  o.model_dir = test::TinyModelDir("idefics2-tiny-a");
  o.ctx = 5000;
  EXPECT_FALSE(Engine::Load(o).ok());
  o.ctx = 0;
  o.weights_dtype = "int3";
  EXPECT_FALSE(Engine::Load(o).ok());
  o.weights_dtype = "auto";
  o.bf16_dot = "sometimes";
  auto bad_dot = Engine::Load(o);
  ASSERT_FALSE(bad_dot.ok());
  EXPECT_NE(bad_dot.status().message().find("bf16_dot"), std::string::npos);
  o.bf16_dot = "auto";
  o.model_dir = "/nonexistent/model";
  o.weights_dtype = "f32";
  auto missing = Engine::Load(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/model"), std::string::npos);
}

TEST(EngineTest, WeightBytesEstimate) {
  auto f32 = EstimateWeightBytes(test::TinyModelDir("idefics2-tiny-a"), "f32");
  auto bf16 = EstimateWeightBytes(test::TinyModelDir("idefics2-tiny-a"), "bf16");
  ASSERT_TRUE(f32.ok() && bf16.ok());
  EXPECT_EQ(*f32, 513648u * 4);  // the parameter count of cases.json / README
  EXPECT_LT(*bf16, *f32);
  EXPECT_GT(*bf16, *f32 / 2);
  EXPECT_FALSE(EstimateWeightBytes(test::TinyModelDir("idefics2-tiny-a"), "f64").ok());
}

TEST(EngineTest, CancelAndStopStrings) {
  auto engine = LoadTiny("idefics2-tiny-a", 1);
  ASSERT_NE(engine, nullptr);
  test::ModelCase c = test::FindCase("idefics2-tiny-a", "text_only");
  auto full = engine->Generate(c.request);
  ASSERT_TRUE(full.ok());
  // Golden text: "fail DAMAGшro saCoffee desertа washis designatedishing againizatedvers".
  int calls = 0;
  auto cancelled = engine->Generate(c.request, [&](std::string_view) { return ++calls < 3; });
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->finish_reason, FinishReason::kCancelled);
  EXPECT_LT(cancelled->generated_ids.size(), 16u);

  const size_t cut = full->text.find(" sa");
  ASSERT_NE(cut, std::string::npos) << full->text;
  GenerationRequest req = c.request;
  req.stop = {" sa"};
  std::string streamed;
  auto stopped = engine->Generate(req, [&](std::string_view p) {
    streamed += p;
    return true;
  });
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->finish_reason, FinishReason::kStop);
  EXPECT_EQ(stopped->text, full->text.substr(0, cut));
  EXPECT_EQ(streamed, stopped->text);
}

TEST(EngineTest, SeededSamplingIsReproducible) {
  auto engine = LoadTiny("idefics2-tiny-b", 2);
  ASSERT_NE(engine, nullptr);
  test::ModelCase c = test::FindCase("idefics2-tiny-b", "text_only");
  c.request.sampling.greedy = false;
  c.request.sampling.temperature = 1.5f;
  c.request.sampling.top_k = 50;
  c.request.sampling.top_p = 0.95f;
  c.request.sampling.seed = 7;
  auto a = engine->Generate(c.request);
  auto b = engine->Generate(c.request);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->generated_ids, b->generated_ids);
  c.request.sampling.seed = 8;
  auto d = engine->Generate(c.request);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(a->generated_ids, d->generated_ids);
  c.request.sampling.temperature = 0.0f;
  EXPECT_FALSE(engine->Generate(c.request).ok());
}

TEST(EngineTest, SessionReusesThePrefixWithIdenticalResults) {
  auto engine = LoadTiny("idefics2-tiny-a", 2);
  ASSERT_NE(engine, nullptr);
  test::ModelCase c = test::FindCase("idefics2-tiny-a", "one_image");
  c.request.max_tokens = 6;
  Session session;
  GenerateOptions with_session;
  with_session.session = &session;
  auto t1 = engine->Generate(c.request, nullptr, with_session);
  ASSERT_TRUE(t1.ok()) << t1.status().ToString();
  EXPECT_EQ(ToI64(t1->generated_ids),
            std::vector<int64_t>(c.generated_ids.begin(), c.generated_ids.begin() + 6));
  // Second turn: history + a new user message with another image.
  GenerationRequest turn2 = c.request;
  turn2.messages.push_back({"assistant", {ContentPart::Text(t1->text)}});
  turn2.messages.push_back({"user",
                            {ContentPart::ImagePath(test::GoldenDir() + "/images/rgb_300x200.png"),
                             ContentPart::Text("And this one?")}});
  const int64_t cached_before = session.cached_tokens();
  EXPECT_GT(cached_before, static_cast<int64_t>(c.input_ids.size()));
  auto reused = engine->Generate(turn2, nullptr, with_session);
  ASSERT_TRUE(reused.ok()) << reused.status().ToString();
  auto fresh = engine->Generate(turn2);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(reused->prompt_ids, fresh->prompt_ids);
  EXPECT_EQ(reused->generated_ids, fresh->generated_ids);
  EXPECT_EQ(reused->text, fresh->text);
  session.Reset();
  EXPECT_EQ(session.cached_tokens(), 0);
}

// The lower-level API as a continuous-batching server uses it: Prepare, prefill each sequence with Forward,
// then one DecodeBatch step for all live sequences at a time.
TEST(EngineTest, DecodeBatchLoopMatchesGolden) {
  auto engine = LoadTiny("idefics2-tiny-b", 2);
  ASSERT_NE(engine, nullptr);
  Idefics2Model& model = engine->model();
  const int64_t vocab = model.config().text.vocab_size;
  std::vector<test::ModelCase> cases = {test::FindCase("idefics2-tiny-b", "one_image"),
                                        test::FindCase("idefics2-tiny-b", "text_only"),
                                        test::FindCase("idefics2-tiny-b", "two_images")};
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<SequenceState> seqs;
  std::vector<int32_t> next;
  for (const auto& c : cases) {
    auto p = engine->Prepare(c.request);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    auto ids_only = engine->PromptIds(c.request);
    ASSERT_TRUE(ids_only.ok());
    EXPECT_EQ(*ids_only, p->ids);
    auto features = model.EncodeImages(p->images);
    ASSERT_TRUE(features.ok());
    caches.push_back(model.NewCache(static_cast<int64_t>(p->ids.size()) + p->max_tokens));
    const int64_t rows = static_cast<int64_t>(features->size()) / model.config().text.hidden_size;
    std::vector<float> logits(vocab);
    ASSERT_TRUE(model
                    .Forward(p->ids.data(), static_cast<int64_t>(p->ids.size()), features->data(), rows,
                             *caches.back(), logits.data(), false)
                    .ok());
    seqs.push_back(engine->NewSequence(c.request, p->ids));
    next.push_back(seqs.back().Advance(logits).token);
  }
  std::vector<float> logits(3 * vocab);
  while (!seqs[0].finished()) {
    std::vector<KvCache*> cs;
    for (auto& c : caches) cs.push_back(c.get());
    ASSERT_TRUE(model.DecodeBatch(next.data(), cs.data(), 3, logits.data()).ok());
    for (int s = 0; s < 3; ++s)
      next[s] = seqs[s].Advance(std::span<float>(logits.data() + s * vocab, vocab)).token;
  }
  for (int s = 0; s < 3; ++s) {
    SCOPED_TRACE(cases[s].name);
    EXPECT_TRUE(seqs[s].finished());
    EXPECT_EQ(ToI64(seqs[s].generated_ids()), cases[s].generated_ids);
  }
}

}  // namespace
}  // namespace idefics
