// `idefics bench` smoke test on the tiny synthetic preset (seconds, not a timing test), and the analytic
// FLOP / byte counts it divides by.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/synth.h"
#include "runtime/bench.h"
#include "support/golden.h"

namespace idefics {
namespace {

TEST(BenchSmoke, CliPrintsJsonWithTheExpectedKeys) {
  std::string out;
  const int rc =
      test::RunCommand(test::CliPath() +
                           " bench --synthetic tiny --image-size 224x168 --split --prompt-lengths 8,16"
                           " --decode-tokens 4 --threads 2 --json 2>/dev/null",
                       &out);
  ASSERT_EQ(rc, 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  for (const char* key : {"date", "commit", "cpu", "threads", "model", "machine", "vision", "prefill",
                          "decode", "time_to_first_token_ms", "peak_rss_bytes"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["threads"], 2);
  EXPECT_GT(j["machine"]["read_bandwidth_GBs"].get<double>(), 0);
  EXPECT_GT(j["machine"]["peak_gflops_bf16"].get<double>(), 0);
  // Probed before the stages and again after prefill / decode; the limit is the best probe.
  ASSERT_EQ(j["machine"]["read_bandwidth_probes_GBs"].size(), 2u);
  ASSERT_EQ(j["machine"]["peak_gflops_bf16_probes"].size(), 2u);
  ASSERT_EQ(j["machine"]["peak_gops_int8_probes"].size(), 2u);  // 0 without AVX-512 VNNI
  EXPECT_GE(j["machine"]["peak_gops_int8"].get<double>(), 0);
  for (const auto& v : j["machine"]["read_bandwidth_probes_GBs"])
    EXPECT_LE(v.get<double>(), j["machine"]["read_bandwidth_GBs"].get<double>());
  EXPECT_NEAR(j["decode"]["fraction_of_bandwidth"].get<double>(),
              j["decode"]["GBs"].get<double>() / j["machine"]["read_bandwidth_GBs"].get<double>(), 1e-9);
  EXPECT_GT(j["model"]["load_ms"].get<double>(), 0);
  EXPECT_EQ(j["vision"]["no_split"]["patches"], 16 * 12);
  EXPECT_GT(j["vision"]["no_split"]["vision_ms"].get<double>(), 0);
  EXPECT_GT(j["vision"]["split"]["connector_ms"].get<double>(), 0);
  // The connector's two parts, timed apart (the "perceiver ms").
  for (const char* mode : {"no_split", "split"}) {
    const auto& e = j["vision"][mode];
    EXPECT_GT(e["perceiver_ms"].get<double>(), 0) << mode;
    EXPECT_GT(e["projection_ms"].get<double>(), 0) << mode;
    EXPECT_NEAR(e["connector_ms"].get<double>(),
                e["projection_ms"].get<double>() + e["perceiver_ms"].get<double>(), 1e-6)
        << mode;
    EXPECT_NEAR(e["connector_gflops"].get<double>(),
                e["projection_gflops"].get<double>() + e["perceiver_gflops"].get<double>(), 1e-6)
        << mode;
    EXPECT_TRUE(e.contains("perceiver_fraction_of_peak")) << mode;
  }
  ASSERT_EQ(j["prefill"].size(), 2u);
  EXPECT_EQ(j["prefill"][1]["tokens"], 16);
  EXPECT_GT(j["prefill"][1]["tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["decode"]["tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["decode"]["fraction_of_bandwidth"].get<double>(), 0);
  // The decode steps' matrix-vector products by shape: q/k/v in one dispatch per layer (2 layers), lm_head
  // once per token; their share of the decode time is part of it.
  const nlohmann::json& gemv = j["decode"]["gemv"];
  ASSERT_TRUE(gemv.is_array());
  ASSERT_GE(gemv.size(), 5u);
  EXPECT_EQ(gemv[0]["matrices"], 3);
  EXPECT_DOUBLE_EQ(gemv[0]["calls_per_token"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(gemv.back()["calls_per_token"].get<double>(), 1.0);
  double share = 0;
  for (const auto& g : gemv) {
    share += g["share_of_decode"].get<double>();
    EXPECT_GT(g["GBs"].get<double>(), 0);
    EXPECT_NEAR(g["fraction_of_bandwidth"].get<double>(),
                g["GBs"].get<double>() / j["machine"]["read_bandwidth_GBs"].get<double>(), 1e-9);
  }
  EXPECT_GT(share, 0);
  EXPECT_LE(share, 1.0);
  EXPECT_GT(j["peak_rss_bytes"].get<double>(), 0);
  EXPECT_FALSE(j.contains("extrapolated_full_depth"));  // tiny is not at real dimensions
}

TEST(BenchSmoke, TableAndErrors) {
  std::string out;
  ASSERT_EQ(
      test::RunCommand(test::CliPath() +
                           " bench --synthetic tiny --image-size 56x56 --prompt-lengths 4 --decode-tokens 2"
                           " --no-probes 2>/dev/null",
                       &out),
      0);
  EXPECT_NE(out.find("decode 2 tokens"), std::string::npos) << out;
  EXPECT_NE(out.find("time to first token"), std::string::npos) << out;
  EXPECT_NE(test::RunCommand(test::CliPath() + " bench --synthetic tiny --image-size 2000x10 2>&1", &out), 0);
  EXPECT_NE(out.find("--image-size"), std::string::npos) << out;
  EXPECT_NE(test::RunCommand(test::CliPath() + " bench 2>&1", &out), 0);
  EXPECT_NE(out.find("--model"), std::string::npos) << out;
  EXPECT_NE(test::RunCommand(test::CliPath() + " bench --synthetic tiny --weights-dtype int3 2>&1", &out), 0);
  EXPECT_NE(out.find("--weights-dtype"), std::string::npos) << out;
  // Block formats pass through to the loader: they either run or fail cleanly naming the format.
  const int rc = test::RunCommand(test::CliPath() +
                                      " bench --synthetic tiny --weights-dtype q4_0 --image-size 28x28"
                                      " --prompt-lengths 4 --decode-tokens 1 --no-probes 2>&1",
                                  &out);
  if (rc != 0) {
    EXPECT_NE(out.find("q4_0"), std::string::npos) << out;
  }
}

TEST(BenchCost, AnalyticCountsAtRealDimensions) {
  SynthOptions so;
  auto text = SynthConfigJson(so);
  ASSERT_TRUE(text.ok());
  auto c = Idefics2Config::Parse(*text, "synth");
  ASSERT_TRUE(c.ok());
  // Mistral-7B decoder matrices: 32 layers x 218.1M + lm_head 131M ≈ 7.11e9 weights, 2 bytes each in bf16.
  const double bytes = DecodeBytes(*c, 2.0, 0);
  EXPECT_NEAR(bytes / 2, 32 * (2 * 4096.0 * 4096 + 2 * 4096.0 * 1024 + 3 * 4096.0 * 14336) + 32003.0 * 4096,
              1);
  // Prefill ≈ 2 x params per token plus attention; vision at 4900 patches: 27 x (149 GFLOP of Linear + 111 of
  // attention).
  EXPECT_GT(PrefillFlops(*c, 0, 128), 2 * 128 * 6.9e9);
  EXPECT_LT(PrefillFlops(*c, 0, 128), 2 * 128 * 7.3e9);
  const double v = VisionFlops(*c, 70, 70);
  EXPECT_GT(v, 6.5e12);
  EXPECT_LT(v, 7.5e12);
  EXPECT_GT(ConnectorFlops(*c, 4900), 2 * 4900 * (2 * 1152.0 * 14336 + 14336.0 * 4096));
  EXPECT_DOUBLE_EQ(ProjectionFlops(*c, 4900), 2 * 4900 * (2 * 1152.0 * 14336 + 14336.0 * 4096));
  EXPECT_DOUBLE_EQ(ConnectorFlops(*c, 4900), ProjectionFlops(*c, 4900) + PerceiverFlops(*c, 4900));
}

}  // namespace
}  // namespace idefics
