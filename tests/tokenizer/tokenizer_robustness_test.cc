// Robustness of the tokenizer stack on arbitrary input: mutated tokenizer.model files and random templates
// must give a Status (never a crash), and random text must round-trip through Encode/Decode.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>

#include "support/golden.h"
#include "tokenizer/jinja.h"
#include "tokenizer/sentencepiece_bpe.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace idefics::tokenizer {
namespace {

TEST(TokenizerRobustness, MutatedModelFilesNeverCrash) {
  std::ifstream in(test::TinyModelDir("idefics2-tiny-a") + "/tokenizer.model", std::ios::binary);
  const std::string real((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(real.size(), 1000u);
  std::mt19937 rng(1234);
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::string bytes = real;
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xFF);
    if (iter % 3 == 0) bytes.resize(rng() % bytes.size());
    auto m = ParseSentencePieceModel(bytes, "mutated.model");
    if (!m.ok()) {
      ++rejected;
      EXPECT_NE(m.status().message().find("mutated.model"), std::string::npos) << m.status().message();
      continue;
    }
    auto bpe = SentencePieceBpe::Create(std::move(m).value(), "mutated.model");
    if (!bpe.ok()) {
      ++rejected;
      continue;
    }
    ++parsed;
    std::vector<int32_t> ids;
    (*bpe)->Encode("Hello world, 中文 😀 <image>", &ids);
    for (int32_t id : ids) EXPECT_TRUE(id >= 0 && id < (*bpe)->size());
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(parsed, 0);
}

TEST(TokenizerRobustness, RandomTextRoundTrips) {
  auto tok = Tokenizer::Load(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  // Characters from several scripts, whitespace and bytes-only characters; no '<' (special tokens) and no
  // literal "▁" (which decodes to a space).
  const std::vector<std::string> alphabet = {"a", "b",  "Z", " ",  "  ", "\n", "\t", "1", "9", ".",
                                             ",", "é",  "ß", "中", "文", "Ж",  "λ",  "😀", "🇫", "\xE2\x80\x8B",
                                             "'", "\"", "#"};
  std::mt19937 rng(42);
  for (int iter = 0; iter < 500; ++iter) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    const auto ids = (*tok)->Encode(text, iter % 2 == 0);
    EXPECT_EQ((*tok)->Decode(ids), text) << "text: [" << text << "]";
  }
}

TEST(TokenizerRobustness, RandomBytesGiveValidUtf8) {
  auto tok = Tokenizer::Load(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  std::mt19937 rng(7);
  for (int iter = 0; iter < 300; ++iter) {
    std::string bytes(rng() % 30, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
    const auto ids = (*tok)->Encode(bytes, true);
    const std::string back = (*tok)->Decode(ids);
    EXPECT_TRUE(IsValidUtf8(back));
    // Random id streams decode to valid UTF-8 too.
    std::vector<int32_t> random_ids(rng() % 20);
    for (int32_t& id : random_ids) id = static_cast<int32_t>(rng() % 4100);
    EXPECT_TRUE(IsValidUtf8((*tok)->Decode(random_ids, iter % 2 == 0)));
  }
}

TEST(JinjaRobustness, RandomTemplatesNeverCrash) {
  const std::vector<std::string> parts = {"{{",       "}}",
                                          "{%",       "%}",
                                          "{#",       "#}",
                                          "-",        "+",
                                          " x ",      "'s'",
                                          "\"t\"",    "for",
                                          "in",       "if",
                                          "else",     "endif",
                                          "endfor",   "set",
                                          "=",        "(",
                                          ")",        "[",
                                          "]",        "{",
                                          "}",        ",",
                                          ".",        "|",
                                          "length",   "is",
                                          "not",      "and",
                                          "1",        "2.5",
                                          "messages", "loop",
                                          "index",    "~",
                                          "*",        "/",
                                          "//",       "%",
                                          "text",     "\n",
                                          "  ",       "raise_exception",
                                          ":",        "none",
                                          "true"};
  const nlohmann::json ctx = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"x", {1, 2, 3}}};
  std::mt19937 rng(99);
  int rendered = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string src;
    const int n = 1 + static_cast<int>(rng() % 14);
    for (int i = 0; i < n; ++i) src += parts[rng() % parts.size()];
    auto t = jinja::Template::Parse(src);
    if (!t.ok()) {
      EXPECT_FALSE(t.status().message().empty());
      continue;
    }
    auto r = t->Render(ctx);
    rendered += r.ok();
  }
  EXPECT_GT(rendered, 0);
}

}  // namespace
}  // namespace idefics::tokenizer
