// Attention benchmarks at Idefics2 shapes: the flash path in float32 (exact) and bf16 (vdpbf16ps) for one
// vision layer (4900 patches, 16 heads of 72), the perceiver (64 latents over 4964 keys, 16/4 heads of 96)
// and a causal text prefill (512 tokens, 32/8 heads of 128), and one decode step's query against 512 cached
// tokens (head-major cache, cycled over 32 layers; counter GB/s: keys and values read). Counter GFLOPS:
// 4·head_dim per visible (query, key, head). Mirrors no reference class. Run: idefics_kernel_bench
// --benchmark_filter=Attention
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/attention.h"

namespace idefics {
namespace {

ThreadPool& AttnPool() {
  const char* s = std::getenv("IDEFICS_BENCH_THREADS");
  static ThreadPool pool(s && std::atoi(s) > 0 ? std::atoi(s) : 0);
  return pool;
}

struct AttnShape {
  const char* name;
  int64_t n_q, n_keys, n_heads, n_kv_heads, head_dim;
  bool causal;
  // Decode: keys and values head-major as in the text model's KV cache ([kv_heads, n_keys, head_dim]), one
  // cache per decoder layer, cycled so that they stream from memory as in a decode step (32 layers × 2 × 512
  // keys × 8 heads × 128 × 4 bytes = 134 MB).
  int64_t layers = 1;
};

void BM_Attention(benchmark::State& st, AttnShape s, bool bf16) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.f, 1.f);
  const bool head_major = s.layers > 1;
  std::vector<float> q(s.n_q * s.n_heads * s.head_dim), k(s.layers * s.n_keys * s.n_kv_heads * s.head_dim),
      v(k.size());
  for (float* p : {q.data(), k.data(), v.data()}) {
    const size_t n = p == q.data() ? q.size() : k.size();
    for (size_t i = 0; i < n; ++i) p[i] = dist(rng);
  }
  const int64_t layer_floats = s.n_keys * s.n_kv_heads * s.head_dim;
  std::vector<float> out(q.size());
  std::vector<float> scratch(AttentionScratchFloats(s.n_q, s.n_keys, s.head_dim, &AttnPool()));
  AttentionArgs a;
  a.q = q.data(), a.n_q = s.n_q, a.q_stride = s.n_heads * s.head_dim, a.k = k.data(), a.v = v.data();
  a.n_keys = s.n_keys, a.kv_stride = head_major ? s.head_dim : s.n_kv_heads * s.head_dim,
  a.n_heads = s.n_heads;
  if (head_major) a.kv_head_stride = s.n_keys * s.head_dim;
  a.n_kv_heads = s.n_kv_heads, a.head_dim = s.head_dim, a.scale = 0.1f, a.causal = s.causal;
  a.q_pos0 = s.n_keys - s.n_q, a.out = out.data(), a.out_stride = s.n_heads * s.head_dim, a.bf16 = bf16;
  int64_t layer = 0;
  for (auto _ : st) {
    a.k = k.data() + layer * layer_floats;
    a.v = v.data() + layer * layer_floats;
    layer = (layer + 1) % s.layers;
    Attention(a, scratch.data(), &AttnPool());
    benchmark::DoNotOptimize(out.data());
  }
  if (head_major)
    st.counters["GB/s"] =
        benchmark::Counter(2.0 * layer_floats * 4 * st.iterations() / 1e9, benchmark::Counter::kIsRate);
  const double pairs = s.causal ? 0.5 * s.n_q * (s.n_q + 1) + double(s.n_q) * (s.n_keys - s.n_q)
                                : double(s.n_q) * s.n_keys;
  st.counters["GFLOPS"] = benchmark::Counter(4.0 * s.head_dim * s.n_heads * pairs * st.iterations() / 1e9,
                                             benchmark::Counter::kIsRate);
}

struct AttnRegistrar {
  AttnRegistrar() {
    const AttnShape shapes[] = {{"vision_4900x4900_16x72", 4900, 4900, 16, 16, 72, false},
                                {"perceiver_64x4964_16of4x96", 64, 4964, 16, 4, 96, false},
                                {"text_prefill_512_32of8x128", 512, 512, 32, 8, 128, true},
                                {"text_decode_1x512_32of8x128", 1, 512, 32, 8, 128, true, 32}};
    for (const AttnShape& s : shapes) {
      for (bool bf16 : {false, true}) {
        auto* b = benchmark::RegisterBenchmark((std::string("Attention/") + s.name + (bf16 ? "/bf16" : "/f32")).c_str(),
                                               BM_Attention, s, bf16);
        b->Unit(s.layers > 1 ? benchmark::kMicrosecond : benchmark::kMillisecond);
        if (AttnPool().size() > 1) b->UseRealTime();
      }
    }
  }
};
const AttnRegistrar attn_registrar;

}  // namespace
}  // namespace idefics
