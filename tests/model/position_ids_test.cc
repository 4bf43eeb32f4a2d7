// Vision position ids (REC rule, spec §4.3): the floor formula except at the documented exceptions.
#include "model/position_ids.h"

#include <gtest/gtest.h>

#include <map>
#include <utility>

namespace idefics {
namespace {

TEST(VisionPositionIds, RecRuleExceptionsAndFloorElsewhere) {
  const std::map<std::pair<int, int>, int> exceptions = {
      {{25, 5}, 13},  {{25, 10}, 27}, {{25, 15}, 41}, {{25, 20}, 55}, {{49, 7}, 9},   {{49, 14}, 19},
      {{49, 28}, 39}, {{49, 35}, 49}, {{50, 5}, 6},   {{50, 10}, 13}, {{50, 15}, 20}, {{50, 20}, 27},
      {{50, 30}, 41}, {{50, 40}, 55}, {{55, 11}, 13}, {{55, 22}, 27}, {{55, 33}, 41}, {{55, 44}, 55}};
  for (int n = 1; n <= 70; ++n)
    for (int i = 0; i < n; ++i) {
      auto it = exceptions.find({n, i});
      const int expected = it != exceptions.end() ? it->second : i * 70 / n;
      ASSERT_EQ(VisionPositionBucket(i, n, 70), expected) << "n=" << n << " i=" << i;
    }
}

TEST(VisionPositionIds, WorkedExampleOfTheSpec) {
  // §11.1: a 27 x 35 crop grid.
  const std::vector<int64_t> rows = {0, 2, 5, 7, 10, 12, 15, 18, 20, 23, 25, 28, 31, 33,
                                     36, 38, 41, 44, 46, 49, 51, 54, 57, 59, 62, 64, 67};
  const std::vector<int64_t> ids = VisionPositionIds(27, 35, 70);
  ASSERT_EQ(ids.size(), 27u * 35u);
  for (int r = 0; r < 27; ++r)
    for (int c = 0; c < 35; ++c) EXPECT_EQ(ids[r * 35 + c], rows[r] * 70 + 2 * c);
}

}  // namespace
}  // namespace idefics
