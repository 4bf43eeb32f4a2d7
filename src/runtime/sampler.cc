// Next-token choice (see sampler.h): the logits-processor chain of transformers' generate(), then argmax or a
// seeded categorical draw. Mirrors RepetitionPenalty/NoBadWords/Temperature/TopK/TopP/MinP logits processors.
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace idefics {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

bool Selectable(float x) {
  return !std::isnan(x) && x != kNegInf;
}

// exp(logit - max) for every selectable logit (0 otherwise), in double so the sums do not depend on the
// order in which float rounding happens. Returns the sum; *any is false when nothing is selectable.
double Exponentials(std::span<const float> logits, std::vector<double>* e, bool* any) {
  float mx = kNegInf;
  *any = false;
  for (float x : logits) {
    if (Selectable(x)) {
      if (!*any || x > mx) mx = x;
      *any = true;
    }
  }
  e->assign(logits.size(), 0.0);
  if (!*any) return 0.0;
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (Selectable(logits[i])) {
      (*e)[i] = std::exp(static_cast<double>(logits[i]) - static_cast<double>(mx));
      sum += (*e)[i];
    }
  }
  return sum;
}

// Indices ordered from most to least likely; ties by lower index first (a fixed order, unlike torch.sort).
std::vector<int32_t> DescendingOrder(std::span<const float> logits) {
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](int32_t i) { return Selectable(logits[i]) ? logits[i] : kNegInf; };
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return key(a) > key(b); });
  return order;
}

void ApplyRepetitionPenalty(float penalty, std::span<const int32_t> context_ids, std::span<float> logits) {
  if (penalty == 1.0f || context_ids.empty()) return;
  // transformers gathers the scores at the context ids and scatters the penalized values back, so an id that
  // occurs several times is penalized once.
  std::vector<bool> seen(logits.size(), false);
  for (int32_t id : context_ids) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size() || seen[id]) continue;
    seen[id] = true;
    float& x = logits[id];
    x = x < 0 ? x * penalty : x / penalty;
  }
}

// OpenAI: logit[j] -= frequency * c[j] + presence * (c[j] > 0), c[j] = occurrences of j in the generated ids.
void ApplyPresenceFrequency(float presence, float frequency, std::span<const int32_t> generated,
                            std::span<float> logits) {
  if ((presence == 0.0f && frequency == 0.0f) || generated.empty()) return;
  std::vector<int32_t> count(logits.size(), 0);
  for (int32_t id : generated) {
    if (id >= 0 && static_cast<size_t>(id) < logits.size()) ++count[id];
  }
  for (size_t j = 0; j < logits.size(); ++j) {
    if (count[j] > 0) logits[j] -= frequency * static_cast<float>(count[j]) + presence;
  }
}

void ApplyTopK(int32_t top_k, std::span<float> logits) {
  if (top_k <= 0 || static_cast<size_t>(top_k) >= logits.size()) return;
  std::vector<float> v(logits.begin(), logits.end());
  for (float& x : v) {
    if (std::isnan(x)) x = kNegInf;
  }
  std::nth_element(v.begin(), v.begin() + (top_k - 1), v.end(), std::greater<float>());
  const float kth = v[top_k - 1];
  for (float& x : logits) {
    if (std::isnan(x) || x < kth) x = kNegInf;  // ties with the k-th value are kept, as in TopKLogitsWarper
  }
}

void ApplyTopP(float top_p, std::span<float> logits) {
  if (top_p >= 1.0f) return;
  std::vector<double> e;
  bool any = false;
  const double sum = Exponentials(logits, &e, &any);
  if (!any) return;
  // TopPLogitsWarper sorts ascending and removes every token whose cumulative probability (summed from the
  // least likely up) is <= 1 - top_p, always keeping the most likely one.
  std::vector<int32_t> order = DescendingOrder(logits);
  std::reverse(order.begin(), order.end());  // ascending
  const double threshold = 1.0 - static_cast<double>(top_p);
  double cum = 0.0;
  for (size_t r = 0; r + 1 < order.size(); ++r) {
    const int32_t i = order[r];
    cum += e[i] / sum;
    if (cum <= threshold) logits[i] = kNegInf;
  }
}

void ApplyMinP(float min_p, std::span<float> logits) {
  if (min_p <= 0.0f) return;
  std::vector<double> e;
  bool any = false;
  const double sum = Exponentials(logits, &e, &any);
  if (!any) return;
  const double top = *std::max_element(e.begin(), e.end()) / sum;
  const double cut = static_cast<double>(min_p) * top;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (e[i] / sum < cut) logits[i] = kNegInf;  // the most likely token has p = top >= cut, so it stays
  }
}

}  // namespace

void ProcessLogits(const SamplingParams& p, std::span<const int32_t> context_ids,
                   std::span<const int32_t> banned_ids, std::span<float> logits,
                   std::span<const int32_t> generated_ids) {
  ApplyRepetitionPenalty(p.repetition_penalty, context_ids, logits);
  ApplyPresenceFrequency(p.presence_penalty, p.frequency_penalty, generated_ids, logits);
  for (int32_t id : banned_ids) {
    if (id >= 0 && static_cast<size_t>(id) < logits.size()) logits[id] = kNegInf;
  }
  if (p.greedy) return;
  if (p.temperature > 0.0f && p.temperature != 1.0f) {
    // A temperature so small that logit / T overflows (below ~1e-37) would make the distribution inf - inf =
    // NaN and the draw garbage; there, shift by the largest logit first: it becomes 0, the others -inf or
    // very negative, which is the greedy choice such a temperature means. Otherwise exactly
    // TemperatureLogitsWarper.
    bool overflow = false;
    for (float x : logits) overflow |= std::isfinite(x) && !std::isfinite(x / p.temperature);
    if (!overflow) {
      for (float& x : logits) x /= p.temperature;
    } else {
      float mx = kNegInf;
      for (float x : logits)
        if (Selectable(x)) mx = std::max(mx, x);
      for (float& x : logits)
        if (Selectable(x)) x = static_cast<float>((static_cast<double>(x) - mx) / p.temperature);
    }
  }
  ApplyTopK(p.top_k, logits);
  ApplyTopP(p.top_p, logits);
  ApplyMinP(p.min_p, logits);
}

int32_t ArgMax(std::span<const float> logits) {
  int32_t best = -1;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!Selectable(logits[i])) continue;
    if (best < 0 || logits[i] > logits[best])
      best = static_cast<int32_t>(i);  // strict: first index wins ties
  }
  return best;
}

int32_t SampleCategorical(std::span<const float> logits, double u) {
  std::vector<double> e;
  bool any = false;
  const double sum = Exponentials(logits, &e, &any);
  if (!any) return -1;
  const double target = u * sum;
  double cum = 0.0;
  int32_t last = -1;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e[i] == 0.0) continue;
    cum += e[i];
    last = static_cast<int32_t>(i);
    if (target < cum) return last;
  }
  return last;  // u * sum rounded up to the total: the last selectable token
}

Sampler::Sampler(const SamplingParams& params, std::vector<int32_t> banned_ids)
    : params_(params), banned_(std::move(banned_ids)), rng_(params.seed) {}

double Sampler::Uniform() {
  // The top 53 bits of one 64-bit draw, scaled to [0, 1): exact in double on every platform
  // (std::uniform_real_distribution is implementation-defined).
  return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::Next(std::span<float> logits, std::span<const int32_t> context_ids,
                      std::span<const int32_t> generated_ids) {
  ProcessLogits(params_, context_ids, banned_, logits, generated_ids);
  if (params_.greedy) return ArgMax(logits);
  return SampleCategorical(logits, Uniform());
}

}  // namespace idefics
