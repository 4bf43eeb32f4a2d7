// tokenizer.json support: a tokenizer.json converted (in the test, as transformers' LlamaConverter does)
// from a tokenizer.model must reproduce the same golden ids; unsupported components give clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "support/golden.h"
#include "tokenizer/hf_bpe_model.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace idefics::tokenizer {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<std::string> Chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    ScanUtf8Char(reinterpret_cast<const uint8_t*>(s.data()) + i, s.size() - i, &len);
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

// The tokenizer.json transformers' LlamaConverter writes for a SentencePiece BPE model: every split of a
// normal piece into two vocabulary pieces is a merge, ordered by the merged piece's score (descending),
// then by the ids of the two halves; legacy normalizer Prepend("▁") + Replace(" ", "▁").
json ConvertToTokenizerJson(const SentencePieceModel& m) {
  json vocab = json::object();
  for (size_t i = 0; i < m.pieces.size(); ++i) vocab[m.pieces[i].piece] = i;
  struct Merge {
    int32_t l, r;
    float score;
  };
  std::vector<Merge> merges;
  for (size_t i = 0; i < m.pieces.size(); ++i) {
    if (m.pieces[i].type != PieceType::kNormal) continue;
    const std::vector<std::string> chars = Chars(m.pieces[i].piece);
    std::vector<Merge> local;
    std::string left;
    for (size_t k = 1; k < chars.size(); ++k) {
      left += chars[k - 1];
      const std::string right = m.pieces[i].piece.substr(left.size());
      if (vocab.contains(left) && vocab.contains(right)) {
        local.push_back({vocab[left].get<int32_t>(), vocab[right].get<int32_t>(), m.pieces[i].score});
      }
    }
    std::sort(local.begin(), local.end(),
              [](const Merge& a, const Merge& b) { return std::pair(a.l, a.r) < std::pair(b.l, b.r); });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score > b.score; });
  json merge_list = json::array();
  for (const Merge& mg : merges) merge_list.push_back(m.pieces[mg.l].piece + " " + m.pieces[mg.r].piece);
  json added = json::array();
  for (int32_t id : {0, 1, 2}) {
    added.push_back({{"id", id},
                     {"content", m.pieces[id].piece},
                     {"special", true},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"single_word", false}});
  }
  return json{{"version", "1.0"},
              {"added_tokens", added},
              {"normalizer",
               {{"type", "Sequence"},
                {"normalizers",
                 {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                  {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}}},
              {"pre_tokenizer", nullptr},
              {"post_processor",
               {{"type", "TemplateProcessing"},
                {"single",
                 {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", "<unk>"},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", true},
                {"byte_fallback", true},
                {"vocab", vocab},
                {"merges", merge_list}}}};
}

// A folder with the converted tokenizer.json and the JSON side files of `src_dir`, but no tokenizer.model.
std::string MakeJsonFolder(const std::string& src_dir, const std::string& tag) {
  auto m = LoadSentencePieceModel(src_dir + "/tokenizer.model");
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  const std::string dir = test::MakeTempDir(tag);
  std::ofstream(dir + "/tokenizer.json") << ConvertToTokenizerJson(*m).dump();
  for (const char* f : {"tokenizer_config.json", "added_tokens.json", "special_tokens_map.json"}) {
    if (fs::exists(src_dir + "/" + f)) fs::copy_file(src_dir + "/" + f, dir + "/" + f);
  }
  return dir;
}

void CheckGoldenStrings(const std::string& src_dir, const std::string& cases_path, const std::string& tag) {
  const std::string dir = MakeJsonFolder(src_dir, tag);
  auto tok = Tokenizer::Load(dir);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  auto text = ReadTextFile(cases_path);
  ASSERT_TRUE(text.ok());
  const json cases = json::parse(*text, nullptr, false);
  for (const auto& c : cases["strings"]) {
    const std::string s = c["text"].get<std::string>();
    EXPECT_EQ((*tok)->Encode(s, true), c["ids"].get<std::vector<int32_t>>()) << s;
    EXPECT_EQ((*tok)->Encode(s, false), c["ids_no_special"].get<std::vector<int32_t>>()) << s;
  }
}

TEST(TokenizerJson, ConvertedTinyModelMatchesGoldens) {
  CheckGoldenStrings(test::TinyModelDir("idefics2-tiny-a"), test::GoldenDir() + "/tokenizer_cases.json",
                     "tokjson_tiny");
}

TEST(TokenizerJson, ConvertedMistralMatchesGoldens) {
  const std::string dir = test::MistralTokenizerDir();
  if (dir.empty())
    GTEST_SKIP() << "../shared/golden/mistral-tokenizer not found (set IDEFICS_MISTRAL_TOKENIZER_DIR)";
  CheckGoldenStrings(dir, dir + "/tokenizer_cases.json", "tokjson_mistral");
}

TEST(TokenizerJson, MetaspaceFirstSchemeAndErrors) {
  const json base = json::parse(R"({
    "added_tokens": [{"id": 5, "content": "<x>", "special": true}],
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": false},
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": false, "fuse_unk": true,
              "vocab": {"<unk>": 0, "\u2581": 1, "a": 2, "\u2581a": 3, "b": 4, "<x>": 5},
              "merges": ["\u2581 a"]}})");
  const std::string dir = test::MakeTempDir("tokjson_meta");
  std::ofstream(dir + "/tokenizer.json") << base.dump();
  auto tok = Tokenizer::Load(dir);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  // Only the segment at the start of the input gets the "▁" prefix; unknown characters fuse into one <unk>.
  EXPECT_EQ((*tok)->Encode("a<x>a zz", false), (std::vector<int32_t>{3, 5, 2, 1, 0}));
  EXPECT_FALSE((*tok)->add_bos_token());

  json bad = base;
  bad["pre_tokenizer"] = {{"type", "ByteLevel"}};
  auto r = HfBpeModel::Parse(bad.dump(), "t.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("ByteLevel"), std::string::npos) << r.status().message();
  bad = base;
  bad["model"]["merges"] = {"\xE2\x96\x81 q"};
  r = HfBpeModel::Parse(bad.dump(), "t.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("merges[0]"), std::string::npos) << r.status().message();
  EXPECT_FALSE(HfBpeModel::Parse("{not json", "t.json").ok());
}

}  // namespace
}  // namespace idefics::tokenizer
