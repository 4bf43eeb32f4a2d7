// Helpers of the model tests (see model_cases.h).
#include "support/model_cases.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>

#include "support/golden.h"

namespace idefics::test {

Idefics2Model* TinyModel(const std::string& name, WeightFormat format, int threads) {
  struct Loaded {
    std::unique_ptr<ThreadPool> pool;
    std::unique_ptr<Idefics2Model> model;
  };
  static std::map<std::string, Loaded>* cache = new std::map<std::string, Loaded>();
  const std::string key = name + "/" + WeightFormatName(format) + "/" + std::to_string(threads);
  auto it = cache->find(key);
  if (it != cache->end()) return it->second.model.get();
  auto folder = ModelFolder::Load(TinyModelDir(name));
  EXPECT_TRUE(folder.ok()) << folder.status().ToString();
  if (!folder.ok()) return nullptr;
  Loaded l;
  l.pool = std::make_unique<ThreadPool>(threads);
  ModelLoadOptions opts;
  opts.matrix_format = format;
  opts.pool = l.pool.get();
  auto m = Idefics2Model::Load(*folder, opts);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return nullptr;
  l.model = std::move(m).value();
  Idefics2Model* r = l.model.get();
  cache->emplace(key, std::move(l));
  return r;
}

DumpFn Dumps::fn() {
  return [this](const std::string& name, const float* data, const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    by_name[name].push_back(Entry{std::vector<float>(data, data + n), shape});
  };
}

namespace {
struct MaxDiffTable {
  std::mutex mu;
  std::map<std::string, std::map<std::string, double>> diffs;
  ~MaxDiffTable() {
    if (diffs.empty()) return;
    std::printf("\nLargest |ours - golden| per tensor (float32 weights unless noted):\n");
    for (const auto& [model, m] : diffs)
      for (const auto& [tensor, d] : m) std::printf("  %-28s %-34s %.3g\n", model.c_str(), tensor.c_str(), d);
  }
};
MaxDiffTable& Table() {
  static MaxDiffTable t;
  return t;
}
}  // namespace

void RecordMaxDiff(const std::string& model, const std::string& tensor, const float* a, const float* e, size_t n) {
  double mx = 0;
  for (size_t i = 0; i < n; ++i) mx = std::max(mx, std::fabs(static_cast<double>(a[i]) - e[i]));
  std::lock_guard<std::mutex> lock(Table().mu);
  double& slot = Table().diffs[model][tensor];
  slot = std::max(slot, mx);
}

std::vector<GoldenSample> GoldenSamples(const SafetensorsFile& f) {
  std::vector<GoldenSample> out;
  const TensorInfo* t = f.Find("input_ids");
  EXPECT_NE(t, nullptr);
  if (!t) return out;
  const std::vector<int64_t> ids = GoldenI64(f, "input_ids");
  const std::vector<int64_t> mask = GoldenI64(f, "attention_mask");
  const int64_t B = t->shape[0], L = t->shape[1];
  for (int64_t b = 0; b < B; ++b) {
    GoldenSample s;
    while (s.pad < L && mask[b * L + s.pad] == 0) ++s.pad;
    for (int64_t i = s.pad; i < L; ++i) {
      EXPECT_EQ(mask[b * L + i], 1) << "padding is not on the left";
      s.ids.push_back(static_cast<int32_t>(ids[b * L + i]));
    }
    out.push_back(std::move(s));
  }
  return out;
}

int64_t Argmax(const float* x, int64_t n) {
  return std::max_element(x, x + n) - x;  // first maximum, like torch.argmax
}

}  // namespace idefics::test
