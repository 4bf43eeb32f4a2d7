// The scalar model ops (norms, activations, RoPE, attention) against straightforward double references.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/norm.h"
#include "kernels/rope.h"

namespace idefics {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 2.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

TEST(ModelOps, LayerNormAndRmsNorm) {
  const int64_t rows = 5, dim = 37;
  auto x = Random(rows * dim, 1), w = Random(dim, 2), b = Random(dim, 3);
  std::vector<float> y(rows * dim), z(rows * dim);
  LayerNorm(x.data(), rows, dim, w.data(), b.data(), 1e-6f, y.data(), nullptr);
  RmsNorm(x.data(), rows, dim, w.data(), 1e-5f, z.data(), nullptr);
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0, ms = 0;
    for (int64_t i = 0; i < dim; ++i) mean += x[r * dim + i], ms += double(x[r * dim + i]) * x[r * dim + i];
    mean /= dim, ms /= dim;
    for (int64_t i = 0; i < dim; ++i) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
    var /= dim;
    for (int64_t i = 0; i < dim; ++i) {
      const double ln = (x[r * dim + i] - mean) / std::sqrt(var + 1e-6) * w[i] + b[i];
      EXPECT_NEAR(y[r * dim + i], ln, 1e-5 * (1 + std::fabs(ln)));
      const double rms = x[r * dim + i] / std::sqrt(ms + 1e-5) * w[i];
      EXPECT_NEAR(z[r * dim + i], rms, 1e-5 * (1 + std::fabs(rms)));
    }
  }
}

TEST(ModelOps, Activations) {
  for (double x : {-6.0, -1.5, -0.1, 0.0, 0.3, 2.0, 7.5}) {
    const double gelu = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    EXPECT_NEAR(GeluTanh(static_cast<float>(x)), gelu, 1e-6 * (1 + std::fabs(gelu)));
    EXPECT_NEAR(Silu(static_cast<float>(x)), x / (1 + std::exp(-x)), 1e-6 * (1 + std::fabs(x)));
  }
}

TEST(ModelOps, RopeTablesAndRotation) {
  const std::vector<float> inv = RopeInvFreq(128, 10000.0);
  ASSERT_EQ(inv.size(), 64u);
  EXPECT_EQ(inv[0], 1.0f);
  for (int j = 0; j < 64; ++j) EXPECT_NEAR(inv[j], std::pow(10000.0, -2.0 * j / 128), 1e-7 * inv[j] * 10);
  // Rotation by position p preserves the norm of each (d, d + half) pair and matches the double formula.
  const int64_t half = 4;
  auto x = Random(2 * 2 * half, 7);
  std::vector<float> r = x, cs(half), sn(half);
  const std::vector<float> inv8 = RopeInvFreq(2 * half, 500000.0);
  RopeCosSin(inv8.data(), half, 37, cs.data(), sn.data());
  ApplyRope(r.data(), 2, half, cs.data(), sn.data());
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < half; ++j) {
      const double a = double(inv8[j]) * 37, x0 = x[h * 2 * half + j], x1 = x[h * 2 * half + half + j];
      EXPECT_NEAR(r[h * 2 * half + j], x0 * std::cos(a) - x1 * std::sin(a), 1e-5);
      EXPECT_NEAR(r[h * 2 * half + half + j], x1 * std::cos(a) + x0 * std::sin(a), 1e-5);
    }
}

// Causal sliding-window GQA attention vs a double reference, and 1 vs 3 threads bitwise.
TEST(ModelOps, AttentionCausalWindowGqa) {
  const int64_t nh = 4, nkv = 2, hd = 5, n_keys = 11, n_q = 3, q_pos0 = 8, window = 4;
  auto q = Random(n_q * nh * hd, 11), k = Random(n_keys * nkv * hd, 12), v = Random(n_keys * nkv * hd, 13);
  std::vector<float> out1(n_q * nh * hd), out3(n_q * nh * hd);
  AttentionArgs a;
  a.q = q.data(), a.n_q = n_q, a.q_stride = nh * hd, a.k = k.data(), a.v = v.data(), a.n_keys = n_keys;
  a.kv_stride = nkv * hd, a.n_heads = nh, a.n_kv_heads = nkv, a.head_dim = hd, a.divide_by_sqrt = true;
  a.causal = true, a.q_pos0 = q_pos0, a.window = window, a.out = out1.data(), a.out_stride = nh * hd;
  std::vector<float> scratch(AttentionScratchFloats(n_q, n_keys, hd, nullptr));
  Attention(a, scratch.data(), nullptr);
  ThreadPool pool(3);
  a.out = out3.data();
  std::vector<float> scratch3(AttentionScratchFloats(n_q, n_keys, hd, &pool));
  Attention(a, scratch3.data(), &pool);
  EXPECT_EQ(out1, out3);
  for (int64_t i = 0; i < n_q; ++i)
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t p = q_pos0 + i, g = h / (nh / nkv);
      std::vector<double> s;
      double mx = -1e300, sum = 0;
      for (int64_t j = p - window + 1; j <= p; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += double(q[(i * nh + h) * hd + d]) * k[(j * nkv + g) * hd + d];
        s.push_back(dot / std::sqrt(double(hd)));
        mx = std::max(mx, s.back());
      }
      for (double& e : s) sum += (e = std::exp(e - mx));
      for (int64_t d = 0; d < hd; ++d) {
        double o = 0;
        for (int64_t j = p - window + 1; j <= p; ++j)
          o += s[j - (p - window + 1)] / sum * v[(j * nkv + g) * hd + d];
        EXPECT_NEAR(out1[(i * nh + h) * hd + d], o, 1e-5);
      }
    }
}

// The flash path equals the per-row reference: causal with and without a window, and bidirectional GQA,
// with query counts that leave partial query blocks.
TEST(ModelOps, AttentionFlashMatchesReference) {
  struct Case {
    int64_t n_q, n_keys, q_pos0, window;
    bool causal;
  };
  ThreadPool pool(3);
  for (const Case& c : {Case{300, 300, 0, 0, true}, Case{40, 57, 17, 24, true}, Case{270, 270, 0, 9, true},
                        Case{33, 301, 0, 0, false}, Case{16, 16, 0, 0, false},
                        Case{600, 600, 0, 0, false}}) {  // several query blocks against keys packed once
    const int64_t nh = 6, nkv = 2, hd = 7;
    auto q = Random(c.n_q * nh * hd, 21), k = Random(c.n_keys * nkv * hd, 22),
         v = Random(c.n_keys * nkv * hd, 23);
    std::vector<float> ref(c.n_q * nh * hd), blk(c.n_q * nh * hd);
    AttentionArgs a;
    a.q = q.data(), a.n_q = c.n_q, a.q_stride = nh * hd, a.k = k.data(), a.v = v.data(), a.n_keys = c.n_keys;
    a.kv_stride = nkv * hd, a.n_heads = nh, a.n_kv_heads = nkv, a.head_dim = hd, a.scale = 0.37f;
    a.divide_by_sqrt = c.causal, a.causal = c.causal, a.q_pos0 = c.q_pos0, a.window = c.window;
    a.out_stride = nh * hd;
    std::vector<float> scratch(AttentionScratchFloats(c.n_q, c.n_keys, hd, &pool));
    a.out = ref.data();
    AttentionRef(a, scratch.data(), &pool);
    a.out = blk.data();
    Attention(a, scratch.data(), &pool);
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(blk[i], ref[i], 1e-5f * (1 + std::fabs(ref[i]))) << i;
    // Bitwise the same on one thread (flash and reference paths).
    std::vector<float> one(ref.size());
    a.out = one.data();
    Attention(a, scratch.data(), nullptr);
    EXPECT_EQ(one, blk);
    a.out = one.data();
    AttentionRef(a, scratch.data(), nullptr);
    EXPECT_EQ(one, ref);
  }
}

// Regression: a worker that woke late used to run tasks of the next job with the previous job's function.
TEST(ModelOps, ThreadPoolBackToBackJobs) {
  ThreadPool pool(3);
  for (int it = 0; it < 20000; ++it) {
    std::vector<int> hits(4, 0);
    pool.ParallelTasks(4, [&](int64_t t) { hits[t] += 1 + it % 3; });
    for (int h : hits) ASSERT_EQ(h, 1 + it % 3);
  }
}

}  // namespace
}  // namespace idefics
