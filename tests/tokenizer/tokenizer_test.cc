// Tokenizer behaviour beyond the goldens: bad model folders, decoding, the incremental decoder with split
// multi-byte characters, long inputs, and the `idefics tokenize` command line.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/check.h"
#include "support/golden.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/sentencepiece_bpe.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/utf8.h"

namespace idefics::tokenizer {
namespace {

namespace fs = std::filesystem;

const Tokenizer& Tiny() {
  static const Tokenizer* tok = [] {
    auto t = Tokenizer::Load(test::TinyModelDir("idefics2-tiny-a"));
    IDEFICS_CHECK_MSG(t.ok(), t.status().ToString().c_str());
    return std::move(t).value().release();
  }();
  return *tok;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

TEST(TokenizerLoad, MissingModelNamesTheFile) {
  const std::string dir = test::MakeTempDir("tok_missing");
  auto t = Tokenizer::Load(dir);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find(dir + "/tokenizer.model"), std::string::npos) << t.status().message();
  auto nodir = Tokenizer::Load(dir + "/does-not-exist");
  EXPECT_FALSE(nodir.ok());
}

TEST(TokenizerLoad, CorruptModelNamesTheFile) {
  const std::string dir = test::MakeTempDir("tok_corrupt");
  const std::string path = dir + "/tokenizer.model";
  for (const std::string& bytes : {std::string("this is not a protobuf \xff\xff\xff", 26), std::string(),
                                   std::string("\x0a\x50\x0a", 3)}) {
    WriteFile(path, bytes);
    auto t = Tokenizer::Load(dir);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << t.status().ToString();
    EXPECT_NE(t.status().message().find(path), std::string::npos) << t.status().message();
  }
  // A truncated copy of a real model: the error gives the byte offset.
  std::ifstream in(test::TinyModelDir("idefics2-tiny-a") + "/tokenizer.model", std::ios::binary);
  std::string real((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  WriteFile(path, real.substr(0, real.size() / 2));
  auto t = Tokenizer::Load(dir);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("offset"), std::string::npos) << t.status().message();
}

TEST(TokenizerLoad, CorruptJsonNamesTheFile) {
  const std::string dir = test::MakeTempDir("tok_badjson");
  fs::copy_file(test::TinyModelDir("idefics2-tiny-a") + "/tokenizer.model", dir + "/tokenizer.model");
  WriteFile(dir + "/added_tokens.json", "{\"<image>\": ");
  auto t = Tokenizer::Load(dir);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("added_tokens.json"), std::string::npos) << t.status().message();
  WriteFile(dir + "/added_tokens.json", "{\"<image>\": \"x\"}");
  t = Tokenizer::Load(dir);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("<image>"), std::string::npos) << t.status().message();
  // Only tokenizer.model + added_tokens.json: ids still come from the file.
  WriteFile(dir + "/added_tokens.json", "{\"<image>\": 4001, \"<x>\": 4005}");
  t = Tokenizer::Load(dir);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->vocab_size(), 4006);
  EXPECT_EQ((*t)->Encode("a<x><image>", false),
            (std::vector<int32_t>{(*t)->Encode("a", false)[0], 4005, 4001}));
}

TEST(TokenizerModel, ReadsTrainerAndNormalizerSpec) {
  auto m = LoadSentencePieceModel(test::TinyModelDir("idefics2-tiny-a") + "/tokenizer.model");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->pieces.size(), 4000u);
  EXPECT_EQ(m->model_type, 2);
  EXPECT_TRUE(m->byte_fallback);
  EXPECT_TRUE(m->add_dummy_prefix);
  EXPECT_FALSE(m->remove_extra_whitespaces);
  EXPECT_EQ(m->pad_id, -1);
  EXPECT_EQ(m->pieces[3].piece, "<0x00>");
  EXPECT_EQ(m->pieces[3].type, PieceType::kByte);
  EXPECT_EQ(m->pieces[3713].piece, "\xE2\x96\x81");
  EXPECT_FLOAT_EQ(m->pieces[261].score, -1e9f);
}

TEST(TokenizerEncode, SpecialTokensAndPrefix) {
  const Tokenizer& t = Tiny();
  EXPECT_EQ(t.Encode("Hello world"), (std::vector<int32_t>{1, 1356, 1900}));
  EXPECT_EQ(t.Encode("", true), (std::vector<int32_t>{1}));
  EXPECT_TRUE(t.Encode("", false).empty());
  const auto a = t.Encode("<image>this", false), b = t.Encode("<image> this", false);
  ASSERT_EQ(a.size() + 1, b.size());
  EXPECT_EQ(b[1], t.TokenId("\xE2\x96\x81"));
  EXPECT_EQ(t.TokenId("<nope>"), -1);
  EXPECT_EQ(t.IdToToken(4002), "<end_of_utterance>");
  EXPECT_EQ(t.IdToToken(99999), "");
  EXPECT_TRUE(t.IsSpecial(4001));
  EXPECT_TRUE(t.IsSpecial(1));
  EXPECT_FALSE(t.IsSpecial(1356));
}

TEST(TokenizerEncode, LongInputIsFast) {
  const Tokenizer& t = Tiny();
  std::string text;
  while (text.size() < 2000000)
    text += "The quick brown fox jumps over the lazy dog 12345 \xE4\xB8\xAD\xE6\x96\x87! ";
  std::string nospace(300000, 'x');  // one huge word: merges must not be quadratic
  const auto start = std::chrono::steady_clock::now();
  const auto ids = t.Encode(text);
  const auto ids2 = t.Encode(nospace);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(ids.size(), 100000u);
  EXPECT_GT(ids2.size(), 1u);
  EXPECT_EQ(t.Decode(ids2), nospace);
  EXPECT_LT(s, 20.0);  // generous for sanitizer builds; release takes well under a second
}

TEST(TokenizerEncode, WordShortcutEqualsWholeStringBpe) {
  std::vector<std::string> dirs = {test::TinyModelDir("idefics2-tiny-a")};
  if (!test::MistralTokenizerDir().empty()) dirs.push_back(test::MistralTokenizerDir());
  const std::string text =
      "  Some   words, repeated words;\twords\n\n  and   \xE4\xB8\xAD\xE6\x96\x87 12345 x "
      "\xE2\x96\x81\xE2\x96\x81 "
      "end   ";
  for (const std::string& dir : dirs) {
    auto m = LoadSentencePieceModel(dir + "/tokenizer.model");
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    auto created = SentencePieceBpe::Create(std::move(m).value(), dir);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    const SentencePieceBpe& bpe = **created;
    for (size_t cut = 0; cut < text.size(); cut += 7) {
      const std::string normalized = bpe.Normalize(text.substr(cut));
      std::vector<int32_t> fast, reference;
      bpe.EncodeNormalized(normalized, &fast);
      bpe.EncodeChunk(normalized, &reference);
      EXPECT_EQ(fast, reference) << dir << " from byte " << cut;
    }
  }
}

TEST(TokenizerDecode, RoundTripAndSkipSpecial) {
  const Tokenizer& t = Tiny();
  const std::string text = "Ünïcödé: café 中文测试 😀 and  two  spaces\n";
  EXPECT_EQ(t.Decode(t.Encode(text)), text);
  const auto ids = t.Encode("User:<image>Hi<end_of_utterance>");
  // "Hi" follows a special token, so it carries its own dummy-prefix space (as the fast decoder shows).
  EXPECT_EQ(t.Decode(ids, true), "User: Hi");
  EXPECT_EQ(t.Decode(ids, false), "<s> User:<image> Hi<end_of_utterance>");
  const std::vector<int32_t> bad = {-5, 1356, 1 << 30};
  EXPECT_EQ(t.Decode(bad), "Hello");
}

// Byte-token ids of the UTF-8 encoding of `s`.
std::vector<int32_t> ByteIds(const Tokenizer& t, const std::string& s) {
  std::vector<int32_t> ids;
  for (unsigned char c : s) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", c);
    ids.push_back(t.TokenId(name));
  }
  return ids;
}

TEST(IncrementalDecoder, HoldsBackSplitCharacters) {
  const Tokenizer& t = Tiny();
  IncrementalDecoder dec(t);
  const std::vector<int32_t> euro = ByteIds(t, "\xE2\x82\xAC");  // €
  EXPECT_EQ(dec.Push(t.TokenId("\xE2\x96\x81Hello")), "Hello");
  EXPECT_EQ(dec.Push(euro[0]), "");
  EXPECT_EQ(dec.pending_bytes(), 1u);
  EXPECT_EQ(dec.Push(euro[1]), "");
  EXPECT_EQ(dec.Push(euro[2]), "\xE2\x82\xAC");
  EXPECT_EQ(dec.pending_bytes(), 0u);
  const std::vector<int32_t> emoji = ByteIds(t, "\xF0\x9F\x98\x80");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(dec.Push(emoji[i]), "");
  EXPECT_EQ(dec.Push(emoji[3]), "\xF0\x9F\x98\x80");
  EXPECT_EQ(dec.Flush(), "");
}

TEST(IncrementalDecoder, InvalidAndTruncatedBytesBecomeReplacementChars) {
  const Tokenizer& t = Tiny();
  IncrementalDecoder dec(t);
  const auto ids = ByteIds(t, "\xE1\x80\x41\xFF\xE2\x82");
  std::string out;
  out += dec.Push(ids[0]);
  out += dec.Push(ids[1]);
  EXPECT_EQ(out, "");  // E1 80 may still become a character
  EXPECT_EQ(dec.Push(ids[2]),
            "\xEF\xBF\xBD"
            "A");                               // 41 proves it ill-formed: one U+FFFD, then 'A'
  EXPECT_EQ(dec.Push(ids[3]), "\xEF\xBF\xBD");  // FF is never valid
  EXPECT_EQ(dec.Push(ids[4]), "");
  EXPECT_EQ(dec.Push(ids[5]), "");
  EXPECT_EQ(dec.Flush(), "\xEF\xBF\xBD");  // a truncated character at the end
  // The concatenation always equals the one-shot decode.
  std::vector<int32_t> all = t.Encode("Grüße 😀 ok");
  all.insert(all.end(), ids.begin(), ids.end());
  IncrementalDecoder inc(t);
  std::string streamed;
  for (int32_t id : all) {
    const std::string piece = inc.Push(id);
    EXPECT_TRUE(IsValidUtf8(piece));
    streamed += piece;
  }
  streamed += inc.Flush();
  EXPECT_EQ(streamed, t.Decode(all));
}

TEST(TokenizeCli, PrintsIdsAsJson) {
  const std::string cli = test::CliPath();
  const std::string model = test::TinyModelDir("idefics2-tiny-a");
  std::string out, out2;
  ASSERT_EQ(test::RunCommand(cli + " tokenize --model " + model + " 'Hello world'", &out), 0);
  EXPECT_EQ(out, "[1,1356,1900]\n");
  ASSERT_EQ(test::RunCommand(cli + " tokenize --model " + model + " --no-bos 'Hello world'", &out), 0);
  EXPECT_EQ(out, "[1356,1900]\n");
  ASSERT_EQ(test::RunCommand(cli + " tokenize --no-bos --model " + model + " '<image>'", &out), 0);
  EXPECT_EQ(out, "[4001]\n");
  ASSERT_EQ(test::RunCommand(cli + " tokenize --model " + model + " ''", &out), 0);
  EXPECT_EQ(out, "[1]\n");
  // A text that looks like an option is still the text.
  ASSERT_EQ(test::RunCommand(cli + " tokenize --model " + model + " --no-bos '--x'", &out), 0);
  ASSERT_EQ(test::RunCommand(cli + " tokenize --model " + model + " --no-bos -- '--x'", &out2), 0);
  EXPECT_EQ(out, out2);
  EXPECT_EQ(out.front(), '[');
}

TEST(TokenizeCli, ErrorsExitOne) {
  const std::string cli = test::CliPath();
  std::string out;
  EXPECT_EQ(test::RunCommand(cli + " tokenize --model /nonexistent/dir 'x' 2>/dev/null", &out), 1);
  EXPECT_EQ(out, "");
  EXPECT_EQ(test::RunCommand(cli + " tokenize 'x' 2>/dev/null", &out), 1);  // --model is required
  EXPECT_EQ(test::RunCommand(
                cli + " tokenize --model " + test::TinyModelDir("idefics2-tiny-a") + " 2>/dev/null", &out),
            1);  // TEXT is required
  // The message goes to stderr and names the problem.
  EXPECT_EQ(test::RunCommand(cli + " tokenize --model /nonexistent/dir 'x' 2>&1", &out), 1);
  EXPECT_NE(out.find("/nonexistent/dir"), std::string::npos) << out;
}

}  // namespace
}  // namespace idefics::tokenizer
