// Parity of the whole model with the transformers goldens: every case of both tiny models, every stage
// (vision position ids, vision output, connector output, decoder hidden states, logits, greedy tokens).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "model/position_ids.h"
#include "support/golden.h"
#include "support/golden_pixels.h"
#include "support/model_cases.h"

namespace idefics::test {
namespace {

constexpr float kAtol = 1e-4f, kRtol = 1e-4f;  // docs/numerics.md

struct CaseParam {
  std::string model;
  std::string name;
};

std::string ParamName(const ::testing::TestParamInfo<CaseParam>& p) {
  std::string s = p.param.model.substr(p.param.model.size() - 1) + "_" + p.param.name;
  return s;
}

class ModelGoldenTest : public ::testing::TestWithParam<CaseParam> {};

// Gathers golden [N, Ph*Pw, D] rows of image n's valid nb_h x nb_w patches into [nb_h*nb_w, D].
std::vector<float> ValidPatches(const std::vector<float>& g, int64_t n, int64_t Ph, int64_t Pw, int64_t D,
                                int64_t nb_h, int64_t nb_w) {
  std::vector<float> r;
  r.reserve(nb_h * nb_w * D);
  for (int64_t y = 0; y < nb_h; ++y)
    for (int64_t x = 0; x < nb_w; ++x) {
      const float* src = g.data() + ((n * Ph + y) * Pw + x) * D;
      r.insert(r.end(), src, src + D);
    }
  return r;
}

// AllClose at the golden tolerances; also records the largest difference under `table` (the tensor's row of
// the summary printed at exit).
::testing::AssertionResult CloseToGolden(const std::string& tag, const std::string& name,
                                         const std::string& table, const float* ours, const float* golden,
                                         size_t n) {
  RecordMaxDiff(tag, table, ours, golden, n);
  return AllClose(name, ours, golden, n, kAtol, kRtol);
}
::testing::AssertionResult CloseToGolden(const std::string& tag, const std::string& name, const float* ours,
                                         const float* golden, size_t n) {
  return CloseToGolden(tag, name, name, ours, golden, n);
}

TEST_P(ModelGoldenTest, MatchesTransformers) {
  const CaseParam& cp = GetParam();
  Idefics2Model* model = TinyModel(cp.model);
  ASSERT_NE(model, nullptr);
  const Idefics2Config& cfg = model->config();
  auto gf = OpenGolden("model_cases/" + cp.model + "/" + cp.name + ".safetensors");
  ASSERT_NE(gf, nullptr);
  const std::vector<GoldenSample> samples = GoldenSamples(*gf);
  std::vector<std::vector<PixelImage>> images = GoldenCaseImages(cp.model, cp.name);
  images.resize(samples.size());
  const int64_t Hv = cfg.vision.hidden_size, Ht = cfg.text.hidden_size, V = cfg.text.vocab_size;
  const int64_t nl = cfg.perceiver.resampler_n_latents, nps = cfg.vision.num_patches_per_side();
  const int64_t B = static_cast<int64_t>(samples.size());
  const int64_t L = gf->Find("input_ids")->shape[1];
  const int64_t n_text_layers = cfg.text.num_hidden_layers;

  // Golden vision tensors are [N, P, ...] over the padded grid of all real images, sample-major.
  const bool has_images = gf->Find("vision_position_ids") != nullptr;
  std::vector<int64_t> g_pos, g_pmask;
  std::vector<float> g_vis_last, g_conn, g_vis_emb, g_vis_hidden, g_proj;
  int64_t Ph = 0, Pw = 0, N = 0;
  if (has_images) {
    g_pos = GoldenI64(*gf, "vision_position_ids");
    g_pmask = GoldenI64(*gf, "vision_patch_attention_mask");
    const TensorInfo* pm = gf->Find("vision_patch_attention_mask");
    N = pm->shape[0], Ph = pm->shape[1], Pw = pm->shape[2];
    g_vis_last = GoldenF32(*gf, "vision_last_hidden_state");
    g_conn = GoldenF32(*gf, "connector_output");
    if (gf->Find("vision_embeddings")) g_vis_emb = GoldenF32(*gf, "vision_embeddings");
    if (gf->Find("vision_hidden_states")) g_vis_hidden = GoldenF32(*gf, "vision_hidden_states");
    if (gf->Find("connector_modality_projection")) g_proj = GoldenF32(*gf, "connector_modality_projection");
  }
  const std::vector<float> g_hidden = GoldenF32(*gf, "text_hidden_states");  // [layers+1, B, L, Ht]
  const std::vector<float> g_logits = GoldenF32(*gf, "logits");              // [B, L, V]
  const std::vector<float> g_last = GoldenF32(*gf, "logits_last");           // [B, V]
  const std::vector<int64_t> g_gen = GoldenI64(*gf, "generated_ids");        // [B, 16]
  const std::vector<float> g_gen_top = GoldenF32(*gf, "generation_topk_values");  // [B, 16, 8]
  const int64_t n_gen = gf->Find("generated_ids")->shape[1];
  const std::string tag = cp.model;

  int64_t image_index = 0;  // global (sample-major) index into the golden vision tensors
  for (int64_t b = 0; b < B; ++b) {
    SCOPED_TRACE("sample " + std::to_string(b));
    const GoldenSample& s = samples[b];
    std::vector<float> features;
    if (!images[b].empty()) {
      Dumps d;
      auto f = model->EncodeImages(images[b], d.fn());
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      features = std::move(f).value();
      ASSERT_EQ(features.size(), images[b].size() * nl * Ht);
      for (size_t i = 0; i < images[b].size(); ++i, ++image_index) {
        SCOPED_TRACE("image " + std::to_string(image_index));
        ASSERT_LT(image_index, N);
        const int64_t nb_h = images[b][i].height / cfg.vision.patch_size;
        const int64_t nb_w = images[b][i].width / cfg.vision.patch_size;
        // Valid patches form the nb_h x nb_w top-left rectangle of the golden patch mask.
        for (int64_t y = 0; y < Ph; ++y)
          for (int64_t x = 0; x < Pw; ++x)
            ASSERT_EQ(g_pmask[(image_index * Ph + y) * Pw + x], (y < nb_h && x < nb_w) ? 1 : 0);
        const std::vector<int64_t> ids = VisionPositionIds(nb_h, nb_w, nps);
        for (int64_t y = 0; y < nb_h; ++y)
          for (int64_t x = 0; x < nb_w; ++x)
            ASSERT_EQ(ids[y * nb_w + x], g_pos[image_index * Ph * Pw + y * Pw + x]) << "patch " << y << "," << x;

        const auto& last = d.by_name["vision_last_hidden_state"].at(i).data;
        const std::vector<float> e_last = ValidPatches(g_vis_last, image_index, Ph, Pw, Hv, nb_h, nb_w);
        ASSERT_EQ(last.size(), e_last.size());
        EXPECT_TRUE(CloseToGolden(tag, "vision_last_hidden_state", last.data(), e_last.data(), last.size()));
        if (!g_vis_emb.empty()) {
          const auto& emb = d.by_name["vision_embeddings"].at(i).data;
          const std::vector<float> e = ValidPatches(g_vis_emb, image_index, Ph, Pw, Hv, nb_h, nb_w);
          EXPECT_TRUE(CloseToGolden(tag, "vision_embeddings", emb.data(), e.data(), e.size()));
        }
        if (!g_vis_hidden.empty()) {
          const int64_t n_layers = cfg.vision.num_hidden_layers;
          for (int64_t l = 0; l <= n_layers; ++l) {
            const std::string name = "vision_hidden_states." + std::to_string(l);
            const auto& hs = d.by_name[name].at(i).data;
            std::vector<float> slab(g_vis_hidden.begin() + l * N * Ph * Pw * Hv,
                                    g_vis_hidden.begin() + (l + 1) * N * Ph * Pw * Hv);
            const std::vector<float> e = ValidPatches(slab, image_index, Ph, Pw, Hv, nb_h, nb_w);
            EXPECT_TRUE(CloseToGolden(tag, name, "vision_hidden_states.*", hs.data(), e.data(), e.size()));
          }
        }
        if (!g_proj.empty()) {
          const auto& pr = d.by_name["connector_modality_projection"].at(i).data;
          const std::vector<float> e = ValidPatches(g_proj, image_index, Ph, Pw, Ht, nb_h, nb_w);
          EXPECT_TRUE(CloseToGolden(tag, "connector_modality_projection", pr.data(), e.data(), e.size()));
        }
        const float* ours = features.data() + i * nl * Ht;
        const float* exp = g_conn.data() + image_index * nl * Ht;
        EXPECT_TRUE(CloseToGolden(tag, "connector_output", ours, exp, nl * Ht));
      }
    }

    // Prefill of this sample alone (left padding stripped), all positions.
    const int64_t T = static_cast<int64_t>(s.ids.size());
    auto cache = model->NewCache(T + n_gen);
    std::vector<float> logits(T * V);
    Dumps d;
    ASSERT_TRUE(model->Forward(s.ids.data(), T, features.data(), static_cast<int64_t>(features.size()) / Ht,
                               *cache, logits.data(), /*all_positions=*/true, d.fn())
                    .ok());
    EXPECT_EQ(cache->size(), T);
    for (int64_t l = 0; l <= n_text_layers; ++l) {
      const std::string name = "text_hidden_states." + std::to_string(l);
      ASSERT_EQ(d.by_name[name].size(), 1u) << name;
      const auto& hs = d.by_name[name][0].data;
      const float* e = g_hidden.data() + ((l * B + b) * L + s.pad) * Ht;
      EXPECT_TRUE(CloseToGolden(tag, name, "text_hidden_states.*", hs.data(), e, T * Ht));
    }
    const float* e_logits = g_logits.data() + (b * L + s.pad) * V;
    EXPECT_TRUE(CloseToGolden(tag, "logits", logits.data(), e_logits, T * V));
    EXPECT_TRUE(CloseToGolden(tag, "logits_last", logits.data() + (T - 1) * V, g_last.data() + b * V, V));

    // Greedy decoding with the KV cache, one token at a time.
    std::vector<float> step(logits.end() - V, logits.end());
    for (int64_t g = 0; g < n_gen; ++g) {
      const int32_t tok = static_cast<int32_t>(Argmax(step.data(), V));
      ASSERT_EQ(tok, g_gen[b * n_gen + g]) << "generated token " << g;
      const float top = step[tok], e_top = g_gen_top[(b * n_gen + g) * 8];
      EXPECT_NEAR(top, e_top, kAtol + kRtol * std::fabs(e_top)) << "top logit of step " << g;
      RecordMaxDiff(tag, "generation_top1_logit", &top, &e_top, 1);
      if (g + 1 < n_gen) {
        ASSERT_TRUE(model->Forward(&tok, 1, nullptr, 0, *cache, step.data(), false).ok());
      }
    }
  }
  if (has_images) {
    EXPECT_EQ(image_index, N) << "every golden image was compared";
  }
}

std::vector<CaseParam> AllCases() {
  std::vector<CaseParam> r;
  for (const char* m : {"idefics2-tiny-a", "idefics2-tiny-b"})
    for (const char* c : {"text_only", "one_image", "one_image_split", "two_images", "batch_padded"})
      r.push_back({m, c});
  return r;
}

INSTANTIATE_TEST_SUITE_P(AllCases, ModelGoldenTest, ::testing::ValuesIn(AllCases()), ParamName);

}  // namespace
}  // namespace idefics::test
