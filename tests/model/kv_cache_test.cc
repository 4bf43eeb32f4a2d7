// TextKvCache: head-major layout, capacity bounds, and Reserve (memory mapped on demand, grown by copying)
// keeping the cached positions and the bookkeeping.
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace idefics {
namespace {

TEST(TextKvCacheTest, LayoutIsLayerThenHeadThenPosition) {
  TextKvCache c(/*n_layers=*/3, /*n_kv_heads=*/2, /*head_dim=*/4, /*capacity=*/10);
  ASSERT_EQ(c.capacity(), 10);
  EXPECT_EQ(c.kv_dim(), 8);
  EXPECT_EQ(c.stride(), 0);  // no memory before Reserve
  ASSERT_TRUE(c.Reserve(3));
  EXPECT_EQ(c.stride(), 10);  // the first mapping's room, clamped to the capacity
  EXPECT_EQ(c.keys(1) - c.keys(0), 10 * 8);
  EXPECT_EQ(c.values(2) - c.values(0), 2 * 10 * 8);
}

float Value(int64_t l, int64_t h, int64_t p, int64_t d) {
  return static_cast<float>(((l * 7 + h) * 1000 + p) * 10 + d);
}

TEST(TextKvCacheTest, GrowingKeepsEveryCachedPosition) {
  const int64_t layers = 2, heads = 3, hd = 8, cap = 1000;  // several growths on the way
  TextKvCache c(layers, heads, hd, cap);
  int64_t growths = 0, last_stride = 0;
  for (int64_t p = 0; p < cap; ++p) {
    ASSERT_TRUE(c.Reserve(p + 1));
    ASSERT_GE(c.stride(), p + 1);
    growths += c.stride() != last_stride;
    last_stride = c.stride();
    const int64_t s = c.stride();
    for (int64_t l = 0; l < layers; ++l)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t d = 0; d < hd; ++d) {
          c.keys(l)[(h * s + p) * hd + d] = Value(l, h, p, d);
          c.values(l)[(h * s + p) * hd + d] = -Value(l, h, p, d);
        }
    c.Advance(1);
  }
  EXPECT_GE(growths, 3);
  EXPECT_EQ(c.stride(), cap);
  ASSERT_TRUE(c.Reserve(cap + 1000));  // past the capacity: nothing to do
  EXPECT_EQ(c.stride(), cap);
  EXPECT_EQ(c.size(), cap);
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t p = 0; p < cap; p += 37)
        for (int64_t d = 0; d < hd; ++d) {
          ASSERT_EQ(c.keys(l)[(h * cap + p) * hd + d], Value(l, h, p, d));
          ASSERT_EQ(c.values(l)[(h * cap + p) * hd + d], -Value(l, h, p, d));
        }
  c.Truncate(5);
  EXPECT_EQ(c.size(), 5);
  c.Clear();
  EXPECT_EQ(c.size(), 0);
}

TEST(TextKvCacheTest, GrowingAfterTruncateKeepsOnlyTheCachedPositions) {
  TextKvCache c(/*n_layers=*/1, /*n_kv_heads=*/1, /*head_dim=*/4, /*capacity=*/2000);
  ASSERT_TRUE(c.Reserve(64));
  const int64_t first = c.stride();
  ASSERT_GE(first, 64);
  for (int64_t i = 0; i < 64 * 4; ++i) c.keys(0)[i] = static_cast<float>(i);
  c.Advance(64);
  c.Truncate(10);
  ASSERT_TRUE(c.Reserve(first + 1));  // grows: positions 0-9 move, the rest is not copied
  EXPECT_GT(c.stride(), first);
  for (int64_t i = 0; i < 10 * 4; ++i) ASSERT_EQ(c.keys(0)[i], static_cast<float>(i));
}

TEST(TextKvCacheTest, EmptyShapesHaveNoMemory) {
  TextKvCache c(/*n_layers=*/2, /*n_kv_heads=*/2, /*head_dim=*/4, /*capacity=*/0);
  EXPECT_EQ(c.capacity(), 0);
  EXPECT_TRUE(c.Reserve(10));
  EXPECT_EQ(c.stride(), 0);
  EXPECT_EQ(c.size(), 0);
}

}  // namespace
}  // namespace idefics
