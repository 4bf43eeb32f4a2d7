// `idefics quantize` and quantized folders: the converted folder loads zero-copy and computes exactly what
// load-time quantization computes; sharding, layout validation, CLI round trip and every refusal.
#include "model/quantize_folder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "idefics/engine.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/weight_registry.h"
#include "model/weight_formats.h"
#include "model/weights.h"
#include "support/golden.h"
#include "support/golden_pixels.h"
#include "support/model_cases.h"

namespace idefics::test {
namespace {

namespace fs = std::filesystem;

std::string TinyA() {
  return TinyModelDir("idefics2-tiny-a");
}

StatusOr<QuantizeFolderResult> Quantize(const std::string& in, const std::string& out, WeightFormat f,
                                        uint64_t shard_bytes = 4000000000ull, bool force = false) {
  QuantizeFolderOptions o;
  o.format = f;
  o.shard_bytes = shard_bytes;
  o.force = force;
  return QuantizeModelFolder(in, out, o);
}

// Prefill logits of every position of the one_image case, plus 8 greedy tokens.
std::vector<float> CaseLogits(Idefics2Model* m, const std::string& model_name) {
  auto gf = OpenGolden("model_cases/" + model_name + "/one_image.safetensors");
  const std::vector<GoldenSample> samples = GoldenSamples(*gf);
  auto images = GoldenCaseImages(model_name, "one_image");
  auto feat = m->EncodeImages(images.at(0));
  EXPECT_TRUE(feat.ok());
  const int64_t Ht = m->config().text.hidden_size, V = m->config().text.vocab_size;
  const auto& ids = samples.at(0).ids;
  const int64_t T = static_cast<int64_t>(ids.size());
  auto cache = m->NewCache(T + 8);
  std::vector<float> logits(T * V);
  EXPECT_TRUE(m->Forward(ids.data(), T, feat->data(), static_cast<int64_t>(feat->size()) / Ht, *cache,
                         logits.data(), true)
                  .ok());
  std::vector<float> step(logits.end() - V, logits.end());
  for (int g = 0; g < 8; ++g) {
    const int32_t tok = static_cast<int32_t>(Argmax(step.data(), V));
    EXPECT_TRUE(m->Forward(&tok, 1, nullptr, 0, *cache, step.data(), false).ok());
    logits.insert(logits.end(), step.begin(), step.end());
  }
  return logits;
}

std::unique_ptr<Idefics2Model> LoadModel(const std::string& dir, WeightFormat f, ThreadPool* pool) {
  auto folder = ModelFolder::Load(dir);
  EXPECT_TRUE(folder.ok()) << folder.status().ToString();
  ModelLoadOptions o;
  o.matrix_format = f;
  o.pool = pool;
  auto m = Idefics2Model::Load(*folder, o);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : nullptr;
}

TEST(QuantizeFolder, LoadsZeroCopyAndMatchesLoadTimeQuantization) {
  ThreadPool pool(2);
  for (const char* name : {"idefics2-tiny-a", "idefics2-tiny-b"}) {
    for (WeightFormat f : {WeightFormat::kQ8_0, WeightFormat::kQ4_0, WeightFormat::kBF16}) {
      SCOPED_TRACE(std::string(name) + " " + WeightFormatName(f));
      const std::string out = MakeTempDir("quant") + "/out";
      auto r = Quantize(TinyModelDir(name), out, f);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->shards, 1);
      EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
      EXPECT_FALSE(fs::exists(out + "/model.safetensors.index.json"));
      for (const char* file :
           {"config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
            "chat_template.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
        EXPECT_TRUE(fs::exists(out + "/" + file)) << file;
      EXPECT_LE(r->output_bytes, r->input_bytes);  // tiny-b is bf16 already

      // The stored matrices are used straight from the mapping.
      auto folder = ModelFolder::Load(out);
      ASSERT_TRUE(folder.ok());
      ModelLoadOptions o;
      o.matrix_format = f;
      auto w = LoadModelWeights(out, folder->config, o);
      ASSERT_TRUE(w.ok()) << w.status().ToString();
      const WeightMatrix& q = (*w)->text.layers.at(0).q;
      EXPECT_EQ(q.format, f);
      EXPECT_EQ((*w)->vision.layers.at(0).q.format, IsBlockFormat(f) ? WeightFormat::kQ8_0 : f);
      EXPECT_EQ((*w)->text.embed.format, WeightFormat::kBF16);
      // Every matrix points into the mapping (vectors of a bf16 checkpoint are converted to f32, so they may
      // not).
      const TensorStore& st = *(*w)->store;
      auto in_place = [&](const WeightMatrix& m, const std::string& tensor) {
        EXPECT_EQ(m.data, st.Find(tensor)->data) << tensor;
      };
      in_place(q, "model.text_model.layers.0.self_attn.q_proj.weight");
      in_place((*w)->text.layers.at(0).down, "model.text_model.layers.0.mlp.down_proj.weight");
      in_place((*w)->vision.layers.at(0).fc2, "model.vision_model.encoder.layers.0.mlp.fc2.weight");
      in_place((*w)->connector.layers.at(0).q,
               "model.connector.perceiver_resampler.layers.0.self_attn.q_proj.weight");
      in_place((*w)->text.lm_head, "lm_head.weight");
      in_place((*w)->text.embed, "model.text_model.embed_tokens.weight");
      // Tensors whose size is a multiple of 64 bytes start on a cache line in the file (so a mapped
      // matrix's rows are line-aligned when its row size is too).
      for (const TensorInfo* t : st.All()) {
        if (t->nbytes % 64 == 0) {
          EXPECT_EQ(t->file_offset % 64, 0u) << t->name;
        }
      }

      // Same numbers as quantizing at load time (bf16: the embedding table is bf16 in the folder but f32
      // at load, so only block formats are compared bitwise).
      if (IsBlockFormat(f)) {
        auto a = LoadModel(TinyModelDir(name), f, &pool);
        auto b = LoadModel(out, f, &pool);
        ASSERT_TRUE(a && b);
        const std::vector<float> la = CaseLogits(a.get(), name), lb = CaseLogits(b.get(), name);
        ASSERT_EQ(la.size(), lb.size());
        EXPECT_EQ(la, lb);
        // Loading it with any requested format keeps the stored blocks.
        auto c = LoadModel(out, WeightFormat::kF32, &pool);
        ASSERT_TRUE(c);
      }
    }
  }
}

TEST(QuantizeFolder, ShardsWithIndex) {
  const std::string out = MakeTempDir("quant_shards") + "/q";
  auto r = Quantize(TinyA(), out, WeightFormat::kQ4_0, /*shard_bytes=*/200000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->shards, 1);
  std::ifstream f(out + "/model.safetensors.index.json");
  auto j = nlohmann::json::parse(f, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["metadata"]["idefics_quant"], "q4_0");
  auto store = TensorStore::OpenFolder(out);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(StoreQuantFormat(**store), "q4_0");
  ThreadPool pool(2);
  auto a = LoadModel(TinyA(), WeightFormat::kQ4_0, &pool);
  auto b = LoadModel(out, WeightFormat::kQ4_0, &pool);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(CaseLogits(a.get(), "idefics2-tiny-a"), CaseLogits(b.get(), "idefics2-tiny-a"));
}

TEST(QuantizeFolder, Refusals) {
  const std::string tmp = MakeTempDir("quant_refuse");
  // Missing input.
  auto r = Quantize(tmp + "/nope", tmp + "/out", WeightFormat::kQ8_0);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("nope"), std::string::npos);
  // f32 is not a target.
  EXPECT_EQ(Quantize(TinyA(), tmp + "/out", WeightFormat::kF32).status().code(),
            StatusCode::kInvalidArgument);
  // Output = input.
  EXPECT_FALSE(Quantize(TinyA(), TinyA(), WeightFormat::kQ8_0).ok());
  // Non-empty output without force; with force it is replaced.
  fs::create_directories(tmp + "/busy");
  { std::ofstream(tmp + "/busy/keep.txt") << "x"; }
  r = Quantize(TinyA(), tmp + "/busy", WeightFormat::kQ8_0);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("--force"), std::string::npos);
  EXPECT_TRUE(fs::exists(tmp + "/busy/keep.txt"));
  ASSERT_TRUE(Quantize(TinyA(), tmp + "/busy", WeightFormat::kQ8_0, 4000000000ull, true).ok());
  EXPECT_FALSE(fs::exists(tmp + "/busy/keep.txt"));
  EXPECT_TRUE(fs::exists(tmp + "/busy/model.safetensors"));
  // An empty output folder is fine.
  fs::create_directories(tmp + "/empty");
  EXPECT_TRUE(Quantize(TinyA(), tmp + "/empty", WeightFormat::kQ8_0).ok());
  // Already quantized input.
  r = Quantize(tmp + "/empty", tmp + "/again", WeightFormat::kQ4_0);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("already"), std::string::npos);
  // A bad input (config without weights) leaves nothing behind.
  fs::create_directories(tmp + "/broken");
  fs::copy_file(TinyA() + "/config.json", tmp + "/broken/config.json");
  EXPECT_FALSE(Quantize(tmp + "/broken", tmp + "/out2", WeightFormat::kQ8_0).ok());
  for (const auto& e : fs::directory_iterator(tmp)) {
    EXPECT_EQ(e.path().filename().string().find("quantize-tmp"), std::string::npos) << e.path();
    EXPECT_NE(e.path().filename(), "out2");
  }
}

TEST(QuantizeFolder, LayoutValidation) {
  const std::string tmp = MakeTempDir("quant_layout");
  std::vector<uint8_t> bytes(2 * 34);
  auto write = [&](const std::string& file, const std::string& layout, std::vector<int64_t> shape) {
    TensorToWrite t{"w", DType::kU8, shape, bytes.data(), nullptr};
    ASSERT_TRUE(WriteSafetensors(tmp + "/" + file, {t}, {{"idefics.w", layout}}).ok());
  };
  write("ok.safetensors", "q8_0:[2,32]", {2, 34});
  write("badfmt.safetensors", "q3_0:[2,32]", {2, 34});
  write("badshape.safetensors", "q8_0:[2,64]", {2, 34});
  write("garbage.safetensors", "q8_0:2x32", {2, 34});
  write("cols.safetensors", "q8_0:[1,68]", {1, 68});
  auto layout = [&](const std::string& file) {
    auto s = TensorStore::OpenFiles({tmp + "/" + file});
    EXPECT_TRUE(s.ok());
    return FindQuantizedLayout(**s, *(*s)->Find("w"));
  };
  auto ok = layout("ok.safetensors");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_TRUE(ok->has_value());
  EXPECT_EQ((**ok).format, WeightFormat::kQ8_0);
  EXPECT_EQ((**ok).cols, 32);
  for (const char* bad :
       {"badfmt.safetensors", "badshape.safetensors", "garbage.safetensors", "cols.safetensors"}) {
    auto r = layout(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("'w'"), std::string::npos) << r.status().ToString();
  }
}

// The command line: quantize, inspect and run on the result (same ids as --weights-dtype q8_0 at load).
TEST(QuantizeCli, RoundTrip) {
  const std::string tmp = MakeTempDir("quant_cli");
  const std::string q = tmp + "/tiny-a-q8";
  std::string out;
  ASSERT_EQ(
      RunCommand(CliPath() + " quantize --model " + TinyA() + " --out " + q + " --type q8_0 --quiet", &out),
      0)
      << out;
  EXPECT_NE(out.find("q8_0"), std::string::npos);
  ASSERT_EQ(RunCommand(CliPath() + " inspect --model " + q, &out), 0) << out;
  EXPECT_NE(out.find("q8_0"), std::string::npos) << out;

  // The memory estimate of the folder = its tensor bytes = the estimate of load-time q8_0.
  auto store = TensorStore::OpenFolder(q);
  ASSERT_TRUE(store.ok());
  uint64_t stored = 0;
  for (const TensorInfo* t : (*store)->All()) stored += t->nbytes;
  auto est_folder = EstimateWeightBytes(q, "auto");
  auto est_load = EstimateWeightBytes(TinyA(), "q8_0");
  ASSERT_TRUE(est_folder.ok() && est_load.ok());
  EXPECT_EQ(*est_folder, stored);
  EXPECT_EQ(*est_load, stored);
  const std::string photo = GoldenDir() + "/images/photo_320x240.jpg";
  const std::string args =
      " --image " + photo + " --prompt 'What is shown?' --json --max-tokens 16 --no-split";
  std::string a, b;
  ASSERT_EQ(RunCommand(CliPath() + " run --model " + q + args + " 2>/dev/null", &a), 0) << a;
  ASSERT_EQ(
      RunCommand(CliPath() + " run --model " + TinyA() + " --weights-dtype q8_0" + args + " 2>/dev/null", &b),
      0)
      << b;
  auto ja = nlohmann::json::parse(a, nullptr, false), jb = nlohmann::json::parse(b, nullptr, false);
  ASSERT_FALSE(ja.is_discarded() || jb.is_discarded());
  EXPECT_EQ(ja["generated_ids"], jb["generated_ids"]);
  EXPECT_EQ(ja["text"], jb["text"]);

  // Refusals with a message and a non-zero exit code.
  EXPECT_EQ(
      RunCommand(CliPath() + " quantize --model " + TinyA() + " --out " + tmp + "/x --type q3_k 2>&1", &out),
      1);
  EXPECT_NE(out.find("q3_k"), std::string::npos);
  EXPECT_EQ(
      RunCommand(CliPath() + " quantize --model " + TinyA() + " --out " + q + " --type q4_0 --quiet 2>&1",
                 &out),
      1);
  EXPECT_NE(out.find("--force"), std::string::npos);
  EXPECT_EQ(
      RunCommand(CliPath() + " quantize --model " + tmp + "/missing --out " + tmp + "/y --type q8_0 2>&1",
                 &out),
      1);
  EXPECT_NE(out.find("missing"), std::string::npos);
}

}  // namespace
}  // namespace idefics::test
