// The flash-attention tile kernel: the AVX-512 and AVX2 versions against their scalar twin (f32 and bf16, odd
// head dims and key counts, causal windows), and the whole Attention call in bf16 against the float32
// reference.
#include "kernels/flash_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/cpu_features.h"
#include "kernels/kernel_test_util.h"

namespace idefics {
namespace {

// f32: the same dot products and p·v sums in the same order; only exp (≤ 1 ulp) and the order inside the
// block max / sum reductions differ — relative to the output scale.
constexpr float kF32Tol = 2e-6f;
// bf16 SIMD vs bf16 scalar: vdpbf16ps sums each pair before adding it (one rounding per pair instead of
// per product), and a probability one ulp of exp apart can round to the neighbouring bf16 (2^-8 relative).
constexpr float kBf16TwinTol = 1e-2f;
// bf16 Attention vs the float32 reference: q, k, v and p each rounded to bf16 (2^-9 relative each).
constexpr float kBf16RefTol = 3e-2f;

struct Case {
  int64_t rows, n_keys, head_dim, window;
  bool causal;
};

#if defined(IDEFICS_HAVE_SIMD)
using TileFn = void (*)(const kern::FlashPacked&, const kern::FlashTileArgs&);
using PackFn = void (*)(const float*, const float*, int64_t, int64_t, int64_t, bool, int64_t, int64_t, void*);

void RunTwins(const Case& c, bool bf16, TileFn simd_tile) {
  const int64_t hd = c.head_dim, stride = hd + 3;
  const auto q = test::RandomVec(kern::kFlashRows * stride, 1, 1.5f);
  const auto k = test::RandomVec(c.n_keys * stride, 2, 1.5f);
  const auto v = test::RandomVec(c.n_keys * stride, 3);
  std::unique_ptr<uint8_t[]> raw(new uint8_t[kern::FlashPackedBytes(c.n_keys, hd, bf16) + 64]);
  void* storage = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(raw.get()) + 63) / 64 * 64);
  kern::FlashPackBlocks(k.data(), v.data(), c.n_keys, stride, hd, bf16, 0, kern::FlashBlocks(c.n_keys), storage);
  const kern::FlashPacked kv = kern::FlashView(v.data(), c.n_keys, stride, hd, bf16, storage);
  int64_t begin[kern::kFlashRows], end[kern::kFlashRows];
  for (int64_t r = 0; r < c.rows; ++r) {
    begin[r] = 0;
    end[r] = c.n_keys;
    if (c.causal) {  // the tile's last row is the last key
      const int64_t p = c.n_keys - c.rows + r;
      end[r] = p + 1;
      if (c.window > 0) begin[r] = std::max<int64_t>(0, p - c.window + 1);
    }
  }
  kern::FlashTileArgs t;
  t.q = q.data();
  t.q_stride = stride;
  t.rows = c.rows;
  t.key_begin = begin;
  t.key_end = end;
  t.scale = 0.21f;
  t.divide_by_sqrt = c.causal;
  t.out_stride = stride;
  std::vector<float> ref(c.rows * stride, 7.f), simd(c.rows * stride, 7.f);
  t.out = ref.data();
  kern::scalar::FlashTile(kv, t);
  t.out = simd.data();
  simd_tile(kv, t);
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t d = 0; d < hd; ++d) {
      const float want = ref[r * stride + d], got = simd[r * stride + d];
      ASSERT_NEAR(got, want, (bf16 ? kBf16TwinTol : kF32Tol) * (1 + std::fabs(want)))
          << "rows " << c.rows << " keys " << c.n_keys << " hd " << hd << " r " << r << " d " << d;
    }
    for (int64_t d = hd; d < stride; ++d) ASSERT_EQ(simd[r * stride + d], 7.f) << "wrote past head_dim";
  }
}

const Case kCases[] = {
    Case{8, 100, 72, 0, false},  Case{3, 33, 5, 0, false},   Case{8, 4900 % 257, 96, 0, false},
    Case{8, 64, 128, 0, true},   Case{5, 77, 7, 9, true},    Case{8, 200, 130, 24, true},
    Case{1, 1, 16, 0, true},     Case{8, 31, 256, 0, false}, Case{64, 300, 72, 0, false},
    Case{64, 100, 128, 0, true}, Case{37, 90, 96, 20, true}, Case{20, 20, 72, 0, true}};

TEST(FlashAttention, SimdTileMatchesScalarTwin) {
  if (ActiveIsa() != Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU (or IDEFICS_ISA caps it)";
  for (const Case& c : kCases) {
    RunTwins(c, false, &kern::avx512::FlashTile);
    RunTwins(c, true, &kern::avx512::FlashTile);
  }
}

TEST(FlashAttention, Avx2TileMatchesScalarTwin) {
  if (ActiveIsa() < Isa::kAvx2) GTEST_SKIP() << "no AVX2+FMA+F16C on this CPU (or IDEFICS_ISA caps it)";
  for (const Case& c : kCases) {
    SCOPED_TRACE("avx2");
    RunTwins(c, false, &kern::avx2::FlashTile);
    RunTwins(c, true, &kern::avx2::FlashTile);
  }
}

// The SIMD packing writes the same bytes as the scalar one (inputs without denormals: vcvtneps2bf16 flushes
// them to zero, F32ToBf16 keeps them; the AVX2 rounding keeps them too).
void CheckPacking(PackFn simd_pack) {
  for (const int64_t hd : {5, 16, 72, 96, 128, 131, 256}) {
    for (const int64_t n_keys : {1, 31, 32, 77}) {
      const int64_t stride = hd + 2;
      const auto k = test::RandomVec(n_keys * stride, 5), v = test::RandomVec(n_keys * stride, 6);
      for (bool bf16 : {false, true}) {
        const size_t bytes = kern::FlashPackedBytes(n_keys, hd, bf16);
        std::vector<uint64_t> a(bytes / 8 + 8, 1), b(bytes / 8 + 8, 1);  // 64-byte aligned enough for the test
        void* pa = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(a.data()) + 63) / 64 * 64);
        void* pb = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(b.data()) + 63) / 64 * 64);
        std::memset(pa, 0, bytes);
        std::memset(pb, 0, bytes);
        const int64_t blocks = kern::FlashBlocks(n_keys);
        kern::scalar::FlashPackBlocks(k.data(), v.data(), n_keys, stride, hd, bf16, 0, blocks, pa);
        simd_pack(k.data(), v.data(), n_keys, stride, hd, bf16, 0, blocks, pb);
        ASSERT_EQ(std::memcmp(pa, pb, bytes), 0) << "hd " << hd << " keys " << n_keys << " bf16 " << bf16;
      }
    }
  }
}

TEST(FlashAttention, SimdPackingMatchesScalarTwin) {
  if (ActiveIsa() != Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU (or IDEFICS_ISA caps it)";
  CheckPacking(&kern::avx512::FlashPackBlocks);
}

TEST(FlashAttention, Avx2PackingMatchesScalarTwin) {
  if (ActiveIsa() < Isa::kAvx2) GTEST_SKIP() << "no AVX2+FMA+F16C on this CPU (or IDEFICS_ISA caps it)";
  CheckPacking(&kern::avx2::FlashPackBlocks);
}
#endif

// Attention in bf16 (flash path) against the exact float32 reference, and the same bits for 1 and 3 threads.
TEST(FlashAttention, Bf16AttentionCloseToFloat32) {
  struct Shape {
    int64_t n_q, n_keys, q_pos0, window;
    bool causal;
  };
  ThreadPool pool(3);
  std::vector<Isa> isas = {ActiveIsa()};
  if (ActiveIsa() == Isa::kAvx512) isas.push_back(Isa::kAvx2);  // the AVX2 dispatch too
  for (Isa isa : isas) {
    test::IsaGuard guard(isa);
    SCOPED_TRACE(IsaName(isa));
    for (const Shape& c :
         {Shape{300, 300, 0, 0, true}, Shape{40, 57, 17, 24, true}, Shape{33, 301, 0, 0, false}}) {
      const int64_t nh = 4, nkv = 2, hd = 72;
      const auto q = test::RandomVec(c.n_q * nh * hd, 31), k = test::RandomVec(c.n_keys * nkv * hd, 32),
                 v = test::RandomVec(c.n_keys * nkv * hd, 33);
      std::vector<float> ref(c.n_q * nh * hd), fast(ref.size()), fast1(ref.size());
      AttentionArgs a;
      a.q = q.data(), a.n_q = c.n_q, a.q_stride = nh * hd, a.k = k.data(), a.v = v.data(),
      a.n_keys = c.n_keys;
      a.kv_stride = nkv * hd, a.n_heads = nh, a.n_kv_heads = nkv, a.head_dim = hd, a.scale = 0.12f;
      a.causal = c.causal, a.q_pos0 = c.q_pos0, a.window = c.window, a.out_stride = nh * hd;
      std::vector<float> scratch(AttentionScratchFloats(c.n_q, c.n_keys, hd, &pool));
      a.out = ref.data();
      AttentionRef(a, scratch.data(), &pool);
      a.bf16 = true;
      a.out = fast.data();
      Attention(a, scratch.data(), &pool);
      a.out = fast1.data();
      Attention(a, scratch.data(), nullptr);
      EXPECT_EQ(fast, fast1);
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(fast[i], ref[i], kBf16RefTol * (1 + std::fabs(ref[i]))) << i;
      // The float32 flash path: the same sums as the reference in another order.
      a.bf16 = false;
      Attention(a, scratch.data(), &pool);
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(fast1[i], ref[i], 1e-5f * (1 + std::fabs(ref[i]))) << i;
    }
  }
}

// Keys and values stored head-major (kv_head_stride: the text model's KV cache) give the results of the same
// keys side by side in rows: bitwise on the flash path; on the decode path (fewer than 16 queries) the
// grouped kernel computes the scores as one GEMV per kv head (another summation order, float32), bitwise the
// same for 1, 2 and 3 threads.
TEST(Attention, HeadMajorKvLayoutMatchesTheRowLayout) {
  ThreadPool pool(2);
  const int64_t nh = 4, nkv = 2, hd = 64, n_keys = 77, cap = 90;
  const auto k = test::RandomVec(n_keys * nkv * hd, 41), v = test::RandomVec(n_keys * nkv * hd, 42);
  std::vector<float> kh(nkv * cap * hd, 0.f), vh(kh.size(), 0.f);
  for (int64_t j = 0; j < n_keys; ++j)
    for (int64_t g = 0; g < nkv; ++g)
      for (int64_t d = 0; d < hd; ++d) {
        kh[(g * cap + j) * hd + d] = k[j * nkv * hd + g * hd + d];
        vh[(g * cap + j) * hd + d] = v[j * nkv * hd + g * hd + d];
      }
  for (int64_t n_q : {1, 3, 40}) {
    for (bool bf16 : {false, true}) {
      const auto q = test::RandomVec(n_q * nh * hd, 43);
      std::vector<float> rows(n_q * nh * hd), heads(rows.size());
      std::vector<float> scratch(AttentionScratchFloats(n_q, n_keys, hd, &pool));
      AttentionArgs a;
      a.q = q.data(), a.n_q = n_q, a.q_stride = nh * hd, a.n_keys = n_keys, a.n_heads = nh, a.n_kv_heads = nkv;
      a.head_dim = hd, a.divide_by_sqrt = true, a.causal = true, a.q_pos0 = n_keys - n_q, a.bf16 = bf16;
      a.out_stride = nh * hd;
      a.k = k.data(), a.v = v.data(), a.kv_stride = nkv * hd, a.out = rows.data();
      Attention(a, scratch.data(), &pool);
      a.k = kh.data(), a.v = vh.data(), a.kv_stride = hd, a.kv_head_stride = cap * hd, a.out = heads.data();
      Attention(a, scratch.data(), &pool);
      if (n_q >= kAttentionGemmMinQueries) {
        EXPECT_EQ(rows, heads) << "n_q=" << n_q << " bf16=" << bf16;
        continue;
      }
      for (size_t i = 0; i < rows.size(); ++i)
        ASSERT_NEAR(rows[i], heads[i], 1e-5f * (1 + std::fabs(rows[i]))) << "n_q=" << n_q << " i=" << i;
      for (int threads : {1, 3}) {
        ThreadPool other(threads);
        std::vector<float> again(rows.size());
        a.out = again.data();
        Attention(a, scratch.data(), &other);
        EXPECT_EQ(again, heads) << threads << " threads";
      }
    }
  }
}

}  // namespace
}  // namespace idefics
