// Tests for the stop rules: EOS, max tokens, stop strings split across tokens and held-back text.
#include "runtime/stop_rules.h"

#include <gtest/gtest.h>

namespace idefics {
namespace {

StopConfig Config(std::vector<std::string> stops, int64_t max_new = 100) {
  StopConfig c;
  c.eos_ids = {2, 4002};
  c.stop_strings = std::move(stops);
  c.max_new_tokens = max_new;
  return c;
}

TEST(StopRulesTest, EosStopsWithoutText) {
  StopRules r(Config({}));
  auto s = r.OnToken(10, "Hello");
  EXPECT_EQ(s.emit, "Hello");
  EXPECT_EQ(s.finish, FinishReason::kNone);
  s = r.OnToken(4002, "");
  EXPECT_EQ(s.emit, "");
  EXPECT_EQ(s.finish, FinishReason::kStop);
  EXPECT_EQ(r.text(), "Hello");
  EXPECT_EQ(r.n_tokens(), 2);
  EXPECT_STREQ(FinishReasonName(s.finish), "stop");
}

TEST(StopRulesTest, MaxTokensGivesLength) {
  StopRules r(Config({}, 2));
  EXPECT_EQ(r.OnToken(5, "a").finish, FinishReason::kNone);
  auto s = r.OnToken(6, "b");
  EXPECT_EQ(s.finish, FinishReason::kLength);
  EXPECT_EQ(s.emit, "b");
  EXPECT_STREQ(FinishReasonName(s.finish), "length");
}

TEST(StopRulesTest, StopStringAcrossTokensIsHeldBackAndCut) {
  StopRules r(Config({"END"}));
  auto s = r.OnToken(5, "abc E");
  EXPECT_EQ(s.emit, "abc ");  // "E" could start "END"
  s = r.OnToken(6, "N");
  EXPECT_EQ(s.emit, "");
  s = r.OnToken(7, "Dxyz");
  EXPECT_EQ(s.emit, "");
  EXPECT_EQ(s.finish, FinishReason::kStop);
  EXPECT_EQ(r.text(), "abc ");
}

TEST(StopRulesTest, FalseAlarmIsReleased) {
  StopRules r(Config({"END"}));
  EXPECT_EQ(r.OnToken(5, "xE").emit, "x");
  EXPECT_EQ(r.OnToken(6, "Nd").emit, "ENd");
  EXPECT_EQ(r.text(), "xENd");
}

TEST(StopRulesTest, HeldBackTextFlushedAtEosAndLength) {
  {
    StopRules r(Config({"###"}));
    EXPECT_EQ(r.OnToken(5, "a##").emit, "a");
    auto s = r.OnToken(2, "");
    EXPECT_EQ(s.emit, "##");
    EXPECT_EQ(s.finish, FinishReason::kStop);
  }
  {
    StopRules r(Config({"###"}, 1));
    auto s = r.OnToken(5, "a##");
    EXPECT_EQ(s.emit, "a##");
    EXPECT_EQ(s.finish, FinishReason::kLength);
  }
}

TEST(StopRulesTest, EarliestOfSeveralStopStringsWins) {
  StopRules r(Config({"world", "lo w", ""}));
  auto s = r.OnToken(5, "hello world");
  EXPECT_EQ(s.emit, "hel");
  EXPECT_EQ(s.finish, FinishReason::kStop);
  EXPECT_EQ(r.text(), "hel");
}

TEST(StopRulesTest, StopStringInsideOneTokenAndUtf8) {
  StopRules r(Config({"\xC3\xA9t\xC3\xA9"}));  // "été"
  EXPECT_EQ(r.OnToken(5, "un \xC3\xA9").emit, "un ");
  auto s = r.OnToken(6, "t\xC3\xA9 chaud");
  EXPECT_EQ(s.finish, FinishReason::kStop);
  EXPECT_EQ(r.text(), "un ");
}

}  // namespace
}  // namespace idefics
