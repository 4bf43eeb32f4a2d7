// TextKvCache: head-major layout, capacity bounds, and Reserve (memory made resident ahead of the writes)
// leaving the contents and the bookkeeping alone.
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace idefics {
namespace {

TEST(TextKvCacheTest, LayoutIsLayerThenHeadThenPosition) {
  TextKvCache c(/*n_layers=*/3, /*n_kv_heads=*/2, /*head_dim=*/4, /*capacity=*/10);
  ASSERT_EQ(c.capacity(), 10);
  EXPECT_EQ(c.kv_dim(), 8);
  EXPECT_EQ(c.keys(1) - c.keys(0), 10 * 8);
  EXPECT_EQ(c.values(2) - c.values(0), 2 * 10 * 8);
}

TEST(TextKvCacheTest, ReserveKeepsWrittenValuesAndClampsToCapacity) {
  const int64_t layers = 2, heads = 3, hd = 8, cap = 200;  // cap spans several reserve blocks
  TextKvCache c(layers, heads, hd, cap);
  ASSERT_EQ(c.capacity(), cap);
  auto value = [](int64_t l, int64_t h, int64_t p, int64_t d) {
    return static_cast<float>(((l * 7 + h) * 1000 + p) * 10 + d);
  };
  for (int64_t p = 0; p < cap; ++p) {
    c.Reserve(p + 1);
    for (int64_t l = 0; l < layers; ++l)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t d = 0; d < hd; ++d) {
          c.keys(l)[(h * cap + p) * hd + d] = value(l, h, p, d);
          c.values(l)[(h * cap + p) * hd + d] = -value(l, h, p, d);
        }
    c.Advance(1);
  }
  c.Reserve(cap + 1000);  // past the capacity: nothing to do, nothing touched out of bounds
  c.Reserve(0);
  EXPECT_EQ(c.size(), cap);
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t p = 0; p < cap; p += 37)
        for (int64_t d = 0; d < hd; ++d) {
          ASSERT_EQ(c.keys(l)[(h * cap + p) * hd + d], value(l, h, p, d));
          ASSERT_EQ(c.values(l)[(h * cap + p) * hd + d], -value(l, h, p, d));
        }
  c.Truncate(5);
  EXPECT_EQ(c.size(), 5);
  c.Clear();
  EXPECT_EQ(c.size(), 0);
}

TEST(TextKvCacheTest, EmptyShapesHaveNoMemory) {
  TextKvCache c(/*n_layers=*/2, /*n_kv_heads=*/2, /*head_dim=*/4, /*capacity=*/0);
  EXPECT_EQ(c.capacity(), 0);
  c.Reserve(10);  // no memory, nothing to populate
  EXPECT_EQ(c.size(), 0);
}

}  // namespace
}  // namespace idefics
