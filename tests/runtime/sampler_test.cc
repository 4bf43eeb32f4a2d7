// Tests for the sampler: processor order and semantics as transformers' logits processors, greedy ties,
// seeded determinism and the empirical distribution of categorical draws.
#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <vector>

namespace idefics {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams Sampling() {
  SamplingParams p;
  p.greedy = false;
  return p;
}

TEST(SamplerTest, ArgMaxTakesLowestIndexOnTies) {
  std::vector<float> l = {1.0f, 3.0f, 2.0f, 3.0f};
  EXPECT_EQ(ArgMax(l), 1);
  std::vector<float> none = {-kInf, std::nanf(""), -kInf};
  EXPECT_EQ(ArgMax(none), -1);
  std::vector<float> with_nan = {std::nanf(""), -5.0f, -kInf};
  EXPECT_EQ(ArgMax(with_nan), 1);
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveMultipliesNegativeOnce) {
  SamplingParams p;  // greedy: only the penalty and banned ids apply
  p.repetition_penalty = 2.0f;
  std::vector<float> l = {4.0f, -1.0f, 3.0f, 0.5f};
  std::vector<int32_t> ctx = {0, 1, 1, 0, 99, -3};  // repeated and out-of-range ids
  ProcessLogits(p, ctx, {}, l);
  EXPECT_FLOAT_EQ(l[0], 2.0f);
  EXPECT_FLOAT_EQ(l[1], -2.0f);
  EXPECT_FLOAT_EQ(l[2], 3.0f);
  EXPECT_FLOAT_EQ(l[3], 0.5f);
}

// OpenAI semantics: over the generated ids only, logit -= frequency * count + presence * (count > 0).
TEST(SamplerTest, PresenceAndFrequencyPenaltiesCountGeneratedIds) {
  SamplingParams p;  // greedy: the penalties still apply
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  std::vector<float> l = {4.0f, -1.0f, 3.0f, 0.5f};
  const std::vector<int32_t> prompt_and_generated = {3, 3, 0, 2, 2, 2};  // the prompt (3, 3) is not counted
  const std::vector<int32_t> generated = {0, 2, 2, 2, 77, -1};          // out-of-range ids are ignored
  ProcessLogits(p, prompt_and_generated, {}, l, generated);
  EXPECT_FLOAT_EQ(l[0], 4.0f - 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(l[1], -1.0f);
  EXPECT_FLOAT_EQ(l[2], 3.0f - 0.75f - 0.5f);
  EXPECT_FLOAT_EQ(l[3], 0.5f);
  // Negative penalties (allowed by the API) encourage repeats; a sampler applies them at every step.
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 0.0f;
  Sampler s(p, {});
  std::vector<float> m = {1.0f, 0.0f};
  const std::vector<int32_t> gen = {1};
  EXPECT_EQ(s.Next(m, gen, gen), 1);
}

TEST(SamplerTest, BannedIdsNeverChosen) {
  SamplingParams p;
  std::vector<float> l = {0.0f, 10.0f, 9.0f, 1.0f};
  std::vector<int32_t> banned = {1, 2};
  Sampler s(p, banned);
  EXPECT_EQ(s.Next(l, {}), 3);
  Sampler t(Sampling(), banned);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> m = {0.0f, 10.0f, 9.0f, 1.0f};
    const int32_t id = t.Next(m, {});
    EXPECT_TRUE(id == 0 || id == 3) << id;
  }
}

TEST(SamplerTest, GreedyIgnoresWarpers) {
  SamplingParams p;
  p.temperature = 0.1f;
  p.top_k = 1;
  p.top_p = 0.1f;
  std::vector<float> l = {1.0f, 2.0f, 3.0f};
  ProcessLogits(p, {}, {}, l);
  EXPECT_EQ(l, (std::vector<float>{1.0f, 2.0f, 3.0f}));
}

TEST(SamplerTest, TemperatureThenTopKKeepsTies) {
  SamplingParams p = Sampling();
  p.temperature = 2.0f;
  p.top_k = 2;
  std::vector<float> l = {4.0f, 2.0f, 4.0f, 2.0f, 1.0f};
  ProcessLogits(p, {}, {}, l);
  EXPECT_FLOAT_EQ(l[0], 2.0f);
  EXPECT_FLOAT_EQ(l[2], 2.0f);
  EXPECT_EQ(l[1], -kInf);
  EXPECT_EQ(l[3], -kInf);
  EXPECT_EQ(l[4], -kInf);
  // Ties at the k-th value are kept (TopKLogitsWarper removes only scores < k-th).
  SamplingParams q = Sampling();
  q.top_k = 2;
  std::vector<float> m = {5.0f, 3.0f, 3.0f, 1.0f};
  ProcessLogits(q, {}, {}, m);
  EXPECT_FLOAT_EQ(m[1], 3.0f);
  EXPECT_FLOAT_EQ(m[2], 3.0f);
  EXPECT_EQ(m[3], -kInf);
}

TEST(SamplerTest, TopPMatchesTransformersRule) {
  // probs 0.5, 0.3, 0.15, 0.05. Ascending cumulative: 0.05, 0.20, 0.50, 1.0.
  std::vector<float> base = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  {
    SamplingParams p = Sampling();
    p.top_p = 0.75f;  // remove cum <= 0.25 -> tokens 3 and 2 (cum 0.05, 0.20)
    std::vector<float> l = base;
    ProcessLogits(p, {}, {}, l);
    EXPECT_GT(l[0], -kInf);
    EXPECT_GT(l[1], -kInf);
    EXPECT_EQ(l[2], -kInf);
    EXPECT_EQ(l[3], -kInf);
  }
  {
    SamplingParams p = Sampling();
    p.top_p = 0.01f;  // only the most likely token survives (always kept)
    std::vector<float> l = base;
    ProcessLogits(p, {}, {}, l);
    EXPECT_GT(l[0], -kInf);
    EXPECT_EQ(l[1], -kInf);
  }
}

TEST(SamplerTest, MinPRelativeToTopProbability) {
  SamplingParams p = Sampling();
  p.min_p = 0.4f;  // cut = 0.2: drop 0.15 and 0.05
  std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  ProcessLogits(p, {}, {}, l);
  EXPECT_GT(l[1], -kInf);
  EXPECT_EQ(l[2], -kInf);
  EXPECT_EQ(l[3], -kInf);
}

TEST(SamplerTest, CategoricalUsesCumulativeOrder) {
  std::vector<float> l = {std::log(0.25f), -kInf, std::log(0.75f)};
  EXPECT_EQ(SampleCategorical(l, 0.0), 0);
  EXPECT_EQ(SampleCategorical(l, 0.2499), 0);
  EXPECT_EQ(SampleCategorical(l, 0.2501), 2);
  EXPECT_EQ(SampleCategorical(l, 0.99999999), 2);
  std::vector<float> none = {-kInf, -kInf};
  EXPECT_EQ(SampleCategorical(none, 0.5), -1);
}

TEST(SamplerTest, SeededDrawsAreDeterministicAndFollowTheDistribution) {
  SamplingParams p = Sampling();
  p.seed = 1234;
  const std::vector<float> base = {std::log(0.1f), std::log(0.2f), std::log(0.7f)};
  auto draw = [&](uint64_t seed, int n) {
    SamplingParams q = p;
    q.seed = seed;
    Sampler s(q, {});
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      std::vector<float> l = base;
      out.push_back(s.Next(l, {}));
    }
    return out;
  };
  const std::vector<int32_t> a = draw(1234, 20000), b = draw(1234, 20000), c = draw(99, 20000);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::map<int32_t, int> counts;
  for (int32_t id : a) ++counts[id];
  EXPECT_NEAR(counts[0] / 20000.0, 0.1, 0.01);
  EXPECT_NEAR(counts[1] / 20000.0, 0.2, 0.015);
  EXPECT_NEAR(counts[2] / 20000.0, 0.7, 0.015);
  // The first draws of seed 1234 are pinned so a change of RNG or of the uniform derivation is noticed.
  std::vector<int32_t> first(a.begin(), a.begin() + 8);
  std::vector<int32_t> again = draw(1234, 8);
  EXPECT_EQ(first, again);
}

TEST(SamplerTest, TinyTemperaturesPickTheLargestLogitInsteadOfGarbage) {
  // logit / T overflows float for these: the draw must still be the most likely token, never a token the
  // NaN arithmetic happened to leave.
  for (float t : {1e-38f, 1e-40f, 1e-45f}) {
    for (uint64_t seed : {1, 2, 3, 4, 5}) {
      SamplingParams p = Sampling();
      p.temperature = t;
      p.seed = seed;
      Sampler s(p, {});
      std::vector<float> l = {1.5f, -3.f, 7.25f, 0.f, 7.f, -kInf};
      EXPECT_EQ(s.Next(l, {}), 2) << "T=" << t << " seed=" << seed;
    }
  }
}

TEST(SamplerTest, UniformIsPortable) {
  // mt19937_64 is fully specified by the standard: its 10000th output for the default seed is fixed.
  std::mt19937_64 rng;
  rng.discard(9999);
  EXPECT_EQ(rng(), 9981545732273789042ull);
}

}  // namespace
}  // namespace idefics
