// Model behaviour beyond parity: thread-count determinism, batched decode = separate decodes, cache truncation,
// clear errors for bad checkpoints and bad calls, reduced-precision weight formats.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/cpu_features.h"
#include "support/golden.h"
#include "support/golden_pixels.h"
#include "support/model_cases.h"

namespace idefics::test {
namespace {

struct Prompt {
  std::vector<int32_t> ids;
  std::vector<PixelImage> images;
};

Prompt CasePrompt(const std::string& model, const std::string& name, size_t sample = 0) {
  auto gf = OpenGolden("model_cases/" + model + "/" + name + ".safetensors");
  Prompt p;
  if (!gf) return p;
  p.ids = GoldenSamples(*gf).at(sample).ids;
  auto imgs = GoldenCaseImages(model, name);
  if (sample < imgs.size()) p.images = imgs[sample];
  return p;
}

// Features + all-position logits of one prompt.
void RunPrompt(Idefics2Model* m, const Prompt& p, std::vector<float>* features, std::vector<float>* logits) {
  const int64_t Ht = m->config().text.hidden_size, V = m->config().text.vocab_size;
  features->clear();
  if (!p.images.empty()) {
    auto f = m->EncodeImages(p.images);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    *features = std::move(f).value();
  }
  auto cache = m->NewCache(static_cast<int64_t>(p.ids.size()));
  logits->assign(p.ids.size() * V, 0.f);
  ASSERT_TRUE(m->Forward(p.ids.data(), p.ids.size(), features->data(), features->size() / Ht, *cache,
                         logits->data(), true)
                  .ok());
}

TEST(ModelThreads, OneTwoAndThreeThreadsAreBitwiseIdentical) {
  for (const char* name : {"idefics2-tiny-a", "idefics2-tiny-b"}) {
    SCOPED_TRACE(name);
    const Prompt p = CasePrompt(name, "two_images");
    std::vector<float> f1, l1;
    RunPrompt(TinyModel(name, WeightFormat::kF32, 1), p, &f1, &l1);
    for (int threads : {2, 3}) {
      std::vector<float> fn, ln;
      RunPrompt(TinyModel(name, WeightFormat::kF32, threads), p, &fn, &ln);
      ASSERT_EQ(f1.size(), fn.size());
      ASSERT_EQ(l1.size(), ln.size());
      EXPECT_EQ(0, std::memcmp(f1.data(), fn.data(), f1.size() * 4)) << threads << " threads: features differ";
      EXPECT_EQ(0, std::memcmp(l1.data(), ln.data(), l1.size() * 4)) << threads << " threads: logits differ";
    }
  }
}

// Vision and connector weights laid out once as bf16 GEMM panels (pack_image_weights) give the per-call
// packing's features and logits: bitwise for every product with M > GemvMaxRows (tests/kernels); here the
// tiny model's 8 latents would take the exact GEMV, which a matrix kept only as panels cannot, so those
// products round their activations to bf16 too (relative error <= 2^-8 each).
TEST(ModelPackedImageWeights, BitwiseThePerCallPacking) {
  auto folder = ModelFolder::Load(TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  ThreadPool pool(2);
  const Prompt p = CasePrompt("idefics2-tiny-a", "two_images");
  ASSERT_FALSE(p.images.empty());
  std::vector<float> f[2], l[2];
  size_t packed = 0;
  for (int pack = 0; pack < 2; ++pack) {
    ModelLoadOptions opts;
    opts.matrix_format = WeightFormat::kBF16;
    opts.matmul.bf16_dot = true;
    opts.pack_image_weights = pack == 1;
    opts.pool = &pool;
    auto m = Idefics2Model::Load(*folder, opts);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    if (pack) packed = (*m)->PrepareImageWeights();
    RunPrompt(m->get(), p, &f[pack], &l[pack]);
    EXPECT_EQ((*m)->PrepareImageWeights(), 0u);  // idempotent
  }
  if (ActiveIsa() == Isa::kAvx512) {
    EXPECT_GT(packed, 0u);
  }
  for (int which = 0; which < 2; ++which) {
    const std::vector<float>& a = which ? l[0] : f[0];
    const std::vector<float>& b = which ? l[1] : f[1];
    ASSERT_EQ(a.size(), b.size());
    double amax = 0, dmax = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      amax = std::max(amax, std::fabs(double(a[i])));
      dmax = std::max(dmax, std::fabs(double(a[i]) - b[i]));
    }
    EXPECT_LE(dmax, 0.02 * amax) << (which ? "logits" : "features");
  }
}

// With int8 dot products, q8_0 image-side matrices keep their rows for the int8 GEMM (faster than the bf16
// GEMM even from panels): packing leaves them alone, only the float ones (a K that is no multiple of 32)
// are laid out as panels.
TEST(ModelPackedImageWeights, Int8MatricesAreNotPacked) {
  if (ActiveIsa() != Isa::kAvx512) GTEST_SKIP() << "panels are packed on AVX-512 BF16 only";
  auto folder = ModelFolder::Load(TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  ThreadPool pool(2);
  size_t packed[2] = {0, 0};
  for (int int8 = 0; int8 < 2; ++int8) {
    ModelLoadOptions opts;
    opts.matrix_format = WeightFormat::kQ8_0;
    opts.matmul.bf16_dot = true;
    opts.matmul.int8_dot = int8 == 1;
    opts.pack_image_weights = true;
    opts.pool = &pool;
    auto m = Idefics2Model::Load(*folder, opts);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    packed[int8] = (*m)->PrepareImageWeights();
  }
  EXPECT_GT(packed[0], 0u);
  EXPECT_LT(packed[1], packed[0]);
}

// no_mmap copies the text decoder's matrices out of the mapping: the same numbers, bitwise.
TEST(ModelNoMmap, CopiedTextWeightsGiveBitwiseTheMappedResults) {
  for (const char* name : {"idefics2-tiny-a", "idefics2-tiny-b"}) {
    SCOPED_TRACE(name);
    auto folder = ModelFolder::Load(TinyModelDir(name));
    ASSERT_TRUE(folder.ok()) << folder.status().ToString();
    const Prompt p = CasePrompt(name, "two_images");
    std::vector<float> f[2], l[2];
    size_t bytes[2] = {0, 0};
    for (int copy = 0; copy < 2; ++copy) {
      ThreadPool pool(2);
      ModelLoadOptions opts;
      opts.no_mmap = copy == 1;
      opts.pool = &pool;
      auto m = Idefics2Model::Load(*folder, opts);
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      bytes[copy] = (*m)->weight_bytes();
      RunPrompt(m->get(), p, &f[copy], &l[copy]);
    }
    EXPECT_EQ(bytes[0], bytes[1]);
    ASSERT_EQ(l[0].size(), l[1].size());
    EXPECT_EQ(0, std::memcmp(f[0].data(), f[1].data(), f[0].size() * 4));
    EXPECT_EQ(0, std::memcmp(l[0].data(), l[1].data(), l[0].size() * 4));
  }
}

// Sequences of different lengths (17 and 52 tokens, over model b's sliding window of 24) decoded together
// must match decoding each one alone.
TEST(ModelDecodeBatch, MatchesSeparateForwardCalls) {
  Idefics2Model* m = TinyModel("idefics2-tiny-b");
  ASSERT_NE(m, nullptr);
  const int64_t Ht = m->config().text.hidden_size, V = m->config().text.vocab_size;
  const std::vector<Prompt> prompts = {CasePrompt("idefics2-tiny-b", "text_only"),
                                       CasePrompt("idefics2-tiny-b", "two_images"),
                                       CasePrompt("idefics2-tiny-b", "batch_padded", 0)};
  const int64_t S = static_cast<int64_t>(prompts.size());
  const int steps = 20;
  std::vector<std::unique_ptr<KvCache>> batched, alone;
  std::vector<int32_t> next(S);
  for (int64_t s = 0; s < S; ++s) {
    std::vector<float> feats;
    if (!prompts[s].images.empty()) feats = m->EncodeImages(prompts[s].images).value();
    const int64_t T = static_cast<int64_t>(prompts[s].ids.size());
    std::vector<float> lg(V);
    for (auto* set : {&batched, &alone}) {
      set->push_back(m->NewCache(T + steps));
      ASSERT_TRUE(m->Forward(prompts[s].ids.data(), T, feats.data(), feats.size() / Ht, *set->back(), lg.data(),
                             false)
                      .ok());
    }
    next[s] = static_cast<int32_t>(Argmax(lg.data(), V));
  }
  std::vector<KvCache*> ptrs;
  for (auto& c : batched) ptrs.push_back(c.get());
  std::vector<float> lb(S * V), la(V);
  for (int step = 0; step < steps; ++step) {
    ASSERT_TRUE(m->DecodeBatch(next.data(), ptrs.data(), S, lb.data()).ok());
    for (int64_t s = 0; s < S; ++s) {
      ASSERT_TRUE(m->Forward(&next[s], 1, nullptr, 0, *alone[s], la.data(), false).ok());
      ASSERT_TRUE(AllClose("decode step " + std::to_string(step) + " seq " + std::to_string(s),
                           lb.data() + s * V, la.data(), V, 1e-5f, 1e-5f));
      EXPECT_EQ(batched[s]->size(), alone[s]->size());
      next[s] = static_cast<int32_t>(Argmax(la.data(), V));
    }
  }
}

TEST(ModelCache, TruncateAndReplayGivesTheSameLogits) {
  Idefics2Model* m = TinyModel("idefics2-tiny-b");
  ASSERT_NE(m, nullptr);
  const int64_t V = m->config().text.vocab_size;
  const Prompt p = CasePrompt("idefics2-tiny-b", "text_only");
  const int64_t T = static_cast<int64_t>(p.ids.size());
  auto cache = m->NewCache(T + 40);
  std::vector<float> all(T * V), again(V);
  ASSERT_TRUE(m->Forward(p.ids.data(), T, nullptr, 0, *cache, all.data(), true).ok());
  // Drop the last 5 tokens and feed them one by one: same logits as the block prefill.
  cache->Truncate(T - 5);
  for (int64_t i = T - 5; i < T; ++i) {
    ASSERT_TRUE(m->Forward(&p.ids[i], 1, nullptr, 0, *cache, again.data(), false).ok());
    EXPECT_TRUE(AllClose("replayed position " + std::to_string(i), again.data(), all.data() + i * V, V, 1e-5f, 1e-5f));
  }
  cache->Clear();
  EXPECT_EQ(cache->size(), 0);
  EXPECT_EQ(cache->capacity(), T + 40);
  EXPECT_EQ(m->NewCache(-3)->capacity(), 0);
  EXPECT_EQ(m->NewCache(int64_t{1} << 40)->capacity(), m->config().text.max_position_embeddings);
}

// A 600-token prompt (over the 512-row MLP block and far over model b's window of 24) prefilled at once
// equals the same prompt fed in chunks of 100.
TEST(ModelCache, LongPromptInOneBlockEqualsChunkedPrefill) {
  Idefics2Model* m = TinyModel("idefics2-tiny-b");
  ASSERT_NE(m, nullptr);
  const int64_t V = m->config().text.vocab_size, T = 600;
  std::vector<int32_t> ids(T);
  for (int64_t i = 0; i < T; ++i) ids[i] = static_cast<int32_t>(3 + (i * 7919) % 3990);
  auto one = m->NewCache(T), chunked = m->NewCache(T);
  std::vector<float> a(T * V), b(T * V);
  ASSERT_TRUE(m->Forward(ids.data(), T, nullptr, 0, *one, a.data(), true).ok());
  for (int64_t s = 0; s < T; s += 100)
    ASSERT_TRUE(m->Forward(ids.data() + s, 100, nullptr, 0, *chunked, b.data() + s * V, true).ok());
  EXPECT_TRUE(AllClose("chunked prefill logits", b.data(), a.data(), T * V, 1e-5f, 1e-5f));
}

TEST(ModelErrors, BadForwardAndDecodeCallsReturnClearStatus) {
  Idefics2Model* m = TinyModel("idefics2-tiny-a");
  ASSERT_NE(m, nullptr);
  const int64_t Ht = m->config().text.hidden_size, V = m->config().text.vocab_size;
  const Prompt p = CasePrompt("idefics2-tiny-a", "one_image");
  const int64_t T = static_cast<int64_t>(p.ids.size());
  std::vector<float> logits(T * V);
  std::vector<float> feats = m->EncodeImages(p.images).value();  // 8 rows
  auto cache = m->NewCache(T);

  Status st = m->Forward(p.ids.data(), T, feats.data(), feats.size() / Ht - 1, *cache, logits.data(), false);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("image feature rows"), std::string::npos) << st.message();
  EXPECT_EQ(cache->size(), 0) << "a failed call leaves the cache untouched";

  auto small = m->NewCache(T - 1);
  st = m->Forward(p.ids.data(), T, feats.data(), feats.size() / Ht, *small, logits.data(), false);
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
  EXPECT_NE(st.message().find("capacity"), std::string::npos) << st.message();

  const int32_t bad_id = static_cast<int32_t>(V);
  st = m->Forward(&bad_id, 1, nullptr, 0, *cache, logits.data(), false);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("vocabulary"), std::string::npos) << st.message();

  EXPECT_FALSE(m->Forward(p.ids.data(), 0, nullptr, 0, *cache, logits.data(), false).ok());

  // A cache of another model is refused.
  Idefics2Model* other = TinyModel("idefics2-tiny-b");
  auto foreign = other->NewCache(8);
  st = m->Forward(p.ids.data(), 1, nullptr, 0, *foreign, logits.data(), false);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.message();

  // DecodeBatch: the same cache twice, and a full cache.
  ASSERT_TRUE(m->Forward(p.ids.data(), T, feats.data(), feats.size() / Ht, *cache, logits.data(), false).ok());
  auto c2 = m->NewCache(4);
  KvCache* twice[2] = {c2.get(), c2.get()};
  const int32_t two_ids[2] = {5, 6};
  EXPECT_EQ(m->DecodeBatch(two_ids, twice, 2, logits.data()).code(), StatusCode::kInvalidArgument);
  KvCache* full[1] = {cache.get()};
  st = m->DecodeBatch(two_ids, full, 1, logits.data());
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << st.message();
}

TEST(ModelErrors, BadImagesReturnClearStatus) {
  Idefics2Model* m = TinyModel("idefics2-tiny-a");
  ASSERT_NE(m, nullptr);
  PixelImage tiny{10, 30, std::vector<float>(3 * 10 * 30, 0.5f)};
  auto r = m->EncodeImages({tiny});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("image 0"), std::string::npos) << r.status().message();
  PixelImage huge{14 * 71, 14, std::vector<float>(3 * 14 * 71 * 14, 0.5f)};
  EXPECT_EQ(m->EncodeImages({huge}).status().code(), StatusCode::kInvalidArgument);
  PixelImage short_buf{28, 28, std::vector<float>(10)};
  EXPECT_EQ(m->EncodeImages({short_buf}).status().code(), StatusCode::kInvalidArgument);
  auto none = m->EncodeImages({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// The conv drops the right/bottom remainder (< 14 pixels): junk there must not change anything.
TEST(ModelVision, RemainderPixelsAreIgnored) {
  Idefics2Model* m = TinyModel("idefics2-tiny-a");
  ASSERT_NE(m, nullptr);
  const PixelImage img = CasePrompt("idefics2-tiny-a", "one_image").images.at(0);
  PixelImage big;
  big.width = img.width + 13;
  big.height = img.height + 5;
  big.chw.assign(3 * big.width * big.height, 7.5f);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < img.height; ++y)
      std::copy_n(img.chw.data() + (c * img.height + y) * img.width, img.width,
                  big.chw.data() + (c * big.height + y) * big.width);
  auto a = m->EncodeImages({img});
  auto b = m->EncodeImages({big});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(ModelErrors, GeneratedImageTokenUsesItsEmbeddingInADecodeStep) {
  Idefics2Model* m = TinyModel("idefics2-tiny-a");
  ASSERT_NE(m, nullptr);
  const int32_t img = static_cast<int32_t>(m->config().image_token_id);
  std::vector<float> logits(m->config().text.vocab_size);
  auto cache = m->NewCache(4);
  const int32_t bos = 1;
  ASSERT_TRUE(m->Forward(&bos, 1, nullptr, 0, *cache, logits.data(), false).ok());
  EXPECT_TRUE(m->Forward(&img, 1, nullptr, 0, *cache, logits.data(), false).ok());
  const int32_t two[2] = {img, img};
  EXPECT_EQ(m->Forward(two, 2, nullptr, 0, *cache, logits.data(), false).code(), StatusCode::kInvalidArgument);
}

// A copy of tiny-a with one tensor missing and one mis-shaped: one error names both.
TEST(ModelErrors, MissingAndMisshapedTensorsAreReportedTogether) {
  namespace fs = std::filesystem;
  const std::string src = TinyModelDir("idefics2-tiny-a");
  const std::string dir = MakeTempDir("bad-weights");
  ASSERT_FALSE(dir.empty());
  for (const char* f : {"config.json", "generation_config.json", "preprocessor_config.json",
                        "processor_config.json"})
    fs::copy_file(fs::path(src) / f, fs::path(dir) / f);
  auto store = TensorStore::OpenFolder(src);
  ASSERT_TRUE(store.ok());
  const std::string missing = "model.text_model.layers.1.post_attention_layernorm.weight";
  const std::string misshaped = "model.connector.perceiver_resampler.latents";
  std::vector<TensorToWrite> out;
  for (const TensorInfo* t : (*store)->All()) {
    if (t->name == missing) continue;
    TensorToWrite w{t->name, t->dtype, t->shape, t->data, nullptr};
    if (t->name == misshaped) w.shape = {t->shape[0] - 1, t->shape[1]};  // a prefix of the data
    out.push_back(w);
  }
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", out).ok());
  auto folder = ModelFolder::Load(dir);
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  auto m = Idefics2Model::Load(*folder, ModelLoadOptions{});
  ASSERT_FALSE(m.ok());
  const std::string& msg = m.status().message();
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
  EXPECT_NE(msg.find(misshaped), std::string::npos) << msg;
  fs::remove_all(dir);
}

// A copy of tiny-a whose final norm holds a NaN: Forward reports non-finite logits instead of letting
// generation end silently (or draw from garbage), and the cache keeps its size.
TEST(ModelErrors, NonFiniteLogitsAreAnError) {
  namespace fs = std::filesystem;
  const std::string src = TinyModelDir("idefics2-tiny-a");
  const std::string dir = MakeTempDir("nan-weights");
  ASSERT_FALSE(dir.empty());
  for (const char* f :
       {"config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json"})
    fs::copy_file(fs::path(src) / f, fs::path(dir) / f);
  auto store = TensorStore::OpenFolder(src);
  ASSERT_TRUE(store.ok());
  const std::string poisoned = "model.text_model.norm.weight";
  std::vector<float> nan_norm;
  std::vector<TensorToWrite> out;
  for (const TensorInfo* t : (*store)->All()) {
    TensorToWrite w{t->name, t->dtype, t->shape, t->data, nullptr};
    if (t->name == poisoned) {
      ASSERT_EQ(t->dtype, DType::kF32);
      nan_norm.resize(t->shape[0]);
      std::memcpy(nan_norm.data(), t->data, nan_norm.size() * sizeof(float));
      nan_norm[0] = std::nanf("");
      w.data = nan_norm.data();
    }
    out.push_back(w);
  }
  ASSERT_FALSE(nan_norm.empty());
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", out).ok());
  auto folder = ModelFolder::Load(dir);
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  auto m = Idefics2Model::Load(*folder, ModelLoadOptions{});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const int32_t ids[2] = {1, 5};
  auto cache = (*m)->NewCache(8);
  std::vector<float> logits((*m)->config().text.vocab_size);
  const Status st = (*m)->Forward(ids, 2, nullptr, 0, *cache, logits.data(), false);
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_NE(st.message().find("non-finite logits"), std::string::npos) << st.message();
  EXPECT_EQ(cache->size(), 0);
  fs::remove_all(dir);
}

TEST(ModelLoad, F32CheckpointIsUsedInPlace) {
  Idefics2Model* m = TinyModel("idefics2-tiny-a");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->weight_bytes(), 513648u * 4);  // every tensor mmapped in place, nothing converted
}

TEST(ModelLoad, ProgressIsMonotonicAndEndsAtOne) {
  auto folder = ModelFolder::Load(TinyModelDir("idefics2-tiny-b"));
  ASSERT_TRUE(folder.ok());
  std::vector<double> seen;
  ModelLoadOptions opts;
  opts.progress = [&](double f) { seen.push_back(f); };
  ASSERT_TRUE(Idefics2Model::Load(*folder, opts).ok());
  ASSERT_FALSE(seen.empty());
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LE(seen[i - 1], seen[i]);
  EXPECT_DOUBLE_EQ(seen.back(), 1.0);
}

TEST(ModelLoad, BlockFormatsQuantizeAtLoad) {  // accuracy: tests/quant/quantization_accuracy_test.cc
  auto folder = ModelFolder::Load(TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(folder.ok());
  for (WeightFormat f : {WeightFormat::kQ8_0, WeightFormat::kQ4_0}) {
    ModelLoadOptions opts;
    opts.matrix_format = f;
    auto m = Idefics2Model::Load(*folder, opts);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
  }
}

double MaxAbsDiff(const std::vector<float>& a, const float* b) {
  double mx = 0;
  for (size_t i = 0; i < a.size(); ++i) mx = std::max(mx, std::fabs(static_cast<double>(a[i]) - b[i]));
  return mx;
}

// bf16 matrices: model b's weights are bf16 already, so the bf16 path is exact up to float32 noise; model a's
// float32 weights rounded to bf16 move the logits by ~1% of their range (transformers measured 0.16).
TEST(ModelBf16, MatrixFormatBf16StaysClose) {
  for (const char* name : {"idefics2-tiny-a", "idefics2-tiny-b"}) {
    SCOPED_TRACE(name);
    Idefics2Model* m = TinyModel(name, WeightFormat::kBF16);
    ASSERT_NE(m, nullptr);
    auto gf = OpenGolden(std::string("model_cases/") + name + "/one_image.safetensors");
    const std::vector<float> g_logits = GoldenF32(*gf, "logits");
    const Prompt p = CasePrompt(name, "one_image");
    std::vector<float> f, l;
    RunPrompt(m, p, &f, &l);
    ASSERT_EQ(l.size(), g_logits.size());
    const double d = MaxAbsDiff(l, g_logits.data());
    std::printf("[bf16 weights] %s one_image: max |logits - golden f32| = %.3g, weights %zu bytes\n", name, d,
                m->weight_bytes());
    if (std::string(name) == "idefics2-tiny-b") {
      EXPECT_LT(d, 1e-4);
    } else {
      EXPECT_LT(d, 0.5);
    }
  }
}

TEST(ModelF16, MatrixFormatF16StaysClose) {
  Idefics2Model* m = TinyModel("idefics2-tiny-a", WeightFormat::kF16);
  ASSERT_NE(m, nullptr);
  auto gf = OpenGolden("model_cases/idefics2-tiny-a/one_image.safetensors");
  const std::vector<float> g_logits = GoldenF32(*gf, "logits");
  std::vector<float> f, l;
  RunPrompt(m, CasePrompt("idefics2-tiny-a", "one_image"), &f, &l);
  const double d = MaxAbsDiff(l, g_logits.data());
  std::printf("[f16 weights] idefics2-tiny-a one_image: max |logits - golden f32| = %.3g\n", d);
  EXPECT_LT(d, 0.05);
}

}  // namespace
}  // namespace idefics::test
