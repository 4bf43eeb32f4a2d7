// Accuracy of the weight formats against float32 on both tiny golden models over every golden model case:
// KL divergence of the next-token distribution (mean / max over prompt positions), top-1 agreement and
// greedy-sequence agreement (16 tokens). Bounds are docs/quantization.md's measured values plus headroom.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_config.h"
#include "model/quantize_folder.h"
#include "support/golden.h"
#include "support/golden_pixels.h"
#include "support/model_cases.h"

namespace idefics::test {
namespace {

constexpr int kGen = 16;

// Per prompt position / per sample results of one model in one format.
struct FormatRun {
  std::vector<std::vector<float>> logits;    // per sample: [T, V] log-softmax
  std::vector<std::vector<int32_t>> greedy;  // per sample: kGen tokens
};

void LogSoftmax(float* x, int64_t n) {
  double mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max<double>(mx, x[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(x[i] - mx);
  const double lse = mx + std::log(s);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(x[i] - lse);
}

const char* kCases[] = {"text_only", "one_image", "one_image_split", "two_images", "batch_padded"};

FormatRun RunAll(const std::string& model_name, Idefics2Model* model) {
  FormatRun r;
  EXPECT_NE(model, nullptr);
  if (!model) return r;
  const int64_t Ht = model->config().text.hidden_size, V = model->config().text.vocab_size;
  for (const char* c : kCases) {
    auto gf = OpenGolden("model_cases/" + model_name + "/" + c + ".safetensors");
    EXPECT_NE(gf, nullptr);
    if (!gf) continue;
    const std::vector<GoldenSample> samples = GoldenSamples(*gf);
    std::vector<std::vector<PixelImage>> images = GoldenCaseImages(model_name, c);
    images.resize(samples.size());
    for (size_t b = 0; b < samples.size(); ++b) {
      std::vector<float> features;
      if (!images[b].empty()) {
        auto feat = model->EncodeImages(images[b]);
        EXPECT_TRUE(feat.ok()) << feat.status().ToString();
        if (!feat.ok()) continue;
        features = std::move(feat).value();
      }
      const std::vector<int32_t>& ids = samples[b].ids;
      const int64_t T = static_cast<int64_t>(ids.size());
      auto cache = model->NewCache(T + kGen);
      std::vector<float> logits(T * V);
      EXPECT_TRUE(model
                      ->Forward(ids.data(), T, features.data(), static_cast<int64_t>(features.size()) / Ht,
                                *cache, logits.data(), true)
                      .ok());
      std::vector<float> step(logits.end() - V, logits.end());
      std::vector<int32_t> gen;
      for (int g = 0; g < kGen; ++g) {
        const int32_t tok = static_cast<int32_t>(Argmax(step.data(), V));
        gen.push_back(tok);
        if (g + 1 < kGen) {
          EXPECT_TRUE(model->Forward(&tok, 1, nullptr, 0, *cache, step.data(), false).ok());
        }
      }
      for (int64_t t = 0; t < T; ++t) LogSoftmax(logits.data() + t * V, V);
      r.logits.push_back(std::move(logits));
      r.greedy.push_back(std::move(gen));
    }
  }
  return r;
}

struct Metrics {
  double kl_mean = 0, kl_max = 0;
  double top1 = 0;        // fraction of prompt positions with the same argmax
  double greedy = 0;      // mean fraction of the 16 greedy tokens equal to float32's (position by position)
  double greedy_min = 1;  // the worst sample's fraction
};

Metrics Compare(const FormatRun& ref, const FormatRun& q, int64_t V) {
  Metrics m;
  int64_t positions = 0, same_top1 = 0;
  double kl_sum = 0;
  for (size_t s = 0; s < ref.logits.size() && s < q.logits.size(); ++s) {
    const int64_t T = static_cast<int64_t>(ref.logits[s].size()) / V;
    for (int64_t t = 0; t < T; ++t) {
      const float* p = ref.logits[s].data() + t * V;
      const float* l = q.logits[s].data() + t * V;
      double kl = 0;
      for (int64_t i = 0; i < V; ++i) kl += std::exp(static_cast<double>(p[i])) * (p[i] - l[i]);
      kl = std::max(0.0, kl);
      kl_sum += kl;
      m.kl_max = std::max(m.kl_max, kl);
      same_top1 += Argmax(p, V) == Argmax(l, V);
      ++positions;
    }
    int same = 0;
    for (int g = 0; g < kGen; ++g) same += ref.greedy[s][g] == q.greedy[s][g];
    m.greedy += same / static_cast<double>(kGen);
    m.greedy_min = std::min(m.greedy_min, same / static_cast<double>(kGen));
  }
  m.kl_mean = positions ? kl_sum / positions : 0;
  m.top1 = positions ? same_top1 / static_cast<double>(positions) : 0;
  m.greedy = ref.logits.empty() ? 0 : m.greedy / ref.logits.size();
  return m;
}

// Documented bounds (docs/quantization.md): measured values with headroom.
struct Bound {
  const char* model;
  WeightFormat format;
  double kl_mean, kl_max, min_top1, min_greedy;  // min_greedy: of the mean greedy agreement
};
constexpr Bound kBounds[] = {
    {"idefics2-tiny-a", WeightFormat::kBF16, 2e-4, 1.5e-3, 0.98, 0.9},
    {"idefics2-tiny-a", WeightFormat::kF16, 3e-6, 2e-5, 0.99, 0.9},
    {"idefics2-tiny-a", WeightFormat::kQ8_0, 1.5e-3, 1e-2, 0.93, 0.5},
    {"idefics2-tiny-a", WeightFormat::kQ4_0, 0.1, 0.3, 0.65, 0.05},
    {"idefics2-tiny-b", WeightFormat::kBF16, 1e-6, 1e-5, 0.99, 0.9},
    {"idefics2-tiny-b", WeightFormat::kF16, 1e-7, 1e-6, 0.99, 0.9},
    {"idefics2-tiny-b", WeightFormat::kQ8_0, 2e-3, 1e-2, 0.95, 0.7},
    {"idefics2-tiny-b", WeightFormat::kQ4_0, 0.15, 0.5, 0.55, 0.08},
};

// Prints m as a row of docs/quantization.md's table ("| model | variant | kl_mean | ... |") and checks it
// against b.
void ReportAndCheck(const char* model_name, const std::string& variant, const Metrics& m, const Bound& b) {
  std::printf("| %s | %s | %.3g | %.3g | %.4f | %.4f | %.4f |\n", model_name, variant.c_str(), m.kl_mean,
              m.kl_max, m.top1, m.greedy, m.greedy_min);
  EXPECT_LE(m.kl_mean, b.kl_mean);
  EXPECT_LE(m.kl_max, b.kl_max);
  EXPECT_GE(m.top1, b.min_top1);
  EXPECT_GE(m.greedy, b.min_greedy);
}

TEST(QuantizationAccuracy, WithinDocumentedBounds) {
  for (const char* model_name : {"idefics2-tiny-a", "idefics2-tiny-b"}) {
    SCOPED_TRACE(model_name);
    const FormatRun ref = RunAll(model_name, TinyModel(model_name, WeightFormat::kF32));
    ASSERT_FALSE(ref.logits.empty());
    const int64_t V = TinyModel(model_name)->config().text.vocab_size;
    for (const Bound& b : kBounds) {
      if (std::string(b.model) != model_name) continue;
      SCOPED_TRACE(WeightFormatName(b.format));
      const Metrics m = Compare(ref, RunAll(model_name, TinyModel(model_name, b.format)), V);
      ReportAndCheck(model_name, WeightFormatName(b.format), m, b);
    }
  }
}

// The fast path the engine takes by default for non-f32 weights (EngineOptions::bf16_dot "auto"): vision,
// connector and prefill matrix products on bf16 dot products (int8 dot products for q8_0/q4_0 matrices) and
// their attention on bf16 dot products. Bounds: docs/quantization.md.
constexpr Bound kBf16DotBounds[] = {
    {"idefics2-tiny-a", WeightFormat::kBF16, 3e-4, 1.5e-3, 0.98, 0.8},
    {"idefics2-tiny-a", WeightFormat::kQ8_0, 2e-3, 1e-2, 0.93, 0.4},
    {"idefics2-tiny-a", WeightFormat::kQ4_0, 0.1, 0.3, 0.65, 0.05},
    {"idefics2-tiny-b", WeightFormat::kBF16, 1.5e-4, 5e-4, 0.98, 0.9},
    {"idefics2-tiny-b", WeightFormat::kQ8_0, 2e-3, 1e-2, 0.95, 0.6},
    {"idefics2-tiny-b", WeightFormat::kQ4_0, 0.15, 0.5, 0.55, 0.08},
};

TEST(QuantizationAccuracy, Bf16DotPathWithinDocumentedBounds) {
  ThreadPool pool(2);
  for (const char* model_name : {"idefics2-tiny-a", "idefics2-tiny-b"}) {
    SCOPED_TRACE(model_name);
    const FormatRun ref = RunAll(model_name, TinyModel(model_name, WeightFormat::kF32));
    const int64_t V = TinyModel(model_name)->config().text.vocab_size;
    auto folder = ModelFolder::Load(TinyModelDir(model_name));
    ASSERT_TRUE(folder.ok());
    for (const Bound& b : kBf16DotBounds) {
      if (std::string(b.model) != model_name) continue;
      SCOPED_TRACE(WeightFormatName(b.format));
      ModelLoadOptions lo;
      lo.matrix_format = b.format;
      lo.matmul.bf16_dot = true;
      lo.matmul.int8_dot = true;  // as the engine sets it: q8_0/q4_0 large-M products on int8 dot products
      lo.pool = &pool;
      auto model = Idefics2Model::Load(*folder, lo);
      ASSERT_TRUE(model.ok()) << model.status().ToString();
      const Metrics m = Compare(ref, RunAll(model_name, model->get()), V);
      ReportAndCheck(model_name, std::string(WeightFormatName(b.format)) + " + fast path", m, b);
    }
  }
}

// The design choice behind kSideMatrixBlockFormat: the vision tower, connector and lm_head in q4_0, q8_0 or
// bf16 under a q4_0 / q8_0 text decoder (folders written by QuantizeModelFolder with side_format). Printed
// for docs/quantization.md; asserts only that each variant loads and runs, and that 8-bit side matrices are
// no worse than 4-bit ones on average.
TEST(QuantizationAccuracy, SideMatrixFormats) {
  ThreadPool pool(2);
  for (const char* model_name : {"idefics2-tiny-a", "idefics2-tiny-b"}) {
    SCOPED_TRACE(model_name);
    const FormatRun ref = RunAll(model_name, TinyModel(model_name, WeightFormat::kF32));
    const int64_t V = TinyModel(model_name)->config().text.vocab_size;
    for (WeightFormat text : {WeightFormat::kQ8_0, WeightFormat::kQ4_0}) {
      double kl_q4 = -1, kl_q8 = -1;
      for (WeightFormat side : {WeightFormat::kQ4_0, WeightFormat::kQ8_0, WeightFormat::kBF16}) {
        const std::string out = MakeTempDir("quant_side") + "/m";
        QuantizeFolderOptions o;
        o.format = text;
        o.side_format = side;
        auto r = QuantizeModelFolder(TinyModelDir(model_name), out, o);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        auto folder = ModelFolder::Load(out);
        ASSERT_TRUE(folder.ok());
        ModelLoadOptions lo;
        lo.matrix_format = side == WeightFormat::kBF16 ? WeightFormat::kBF16 : text;  // float side: as stored
        lo.pool = &pool;
        auto m = Idefics2Model::Load(*folder, lo);
        ASSERT_TRUE(m.ok()) << m.status().ToString();
        const Metrics mt = Compare(ref, RunAll(model_name, m->get()), V);
        std::printf("| %s | text %s, side %s | %.3g | %.3g | %.4f | %.4f | %.4f | %.3f MB |\n", model_name,
                    WeightFormatName(text), WeightFormatName(side), mt.kl_mean, mt.kl_max, mt.top1, mt.greedy,
                    mt.greedy_min, r->output_bytes / 1e6);
        if (side == WeightFormat::kQ4_0) kl_q4 = mt.kl_mean;
        if (side == WeightFormat::kQ8_0) kl_q8 = mt.kl_mean;
      }
      EXPECT_LE(kl_q8, kl_q4 * 1.5 + 1e-6);
    }
  }
}

}  // namespace
}  // namespace idefics::test
