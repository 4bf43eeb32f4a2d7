// `idefics run` and `idefics chat` from the outside: golden ids through --json, logits and stage dumps,
// streaming output, and every input error giving a clear message with exit code 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "runtime/runtime_test_util.h"
#include "support/golden.h"

namespace idefics {
namespace {

std::string Cli(const std::string& args, int* code, bool with_stderr = false) {
  std::string out;
  *code = test::RunCommand(test::CliPath() + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null"), &out);
  return out;
}

// Runs `idefics <args>` (with --json) and parses what it prints. A non-zero exit or output that is not JSON
// fails the test; the caller stops on a discarded value.
nlohmann::json CliJson(const std::string& args) {
  int code = -1;
  const std::string out = Cli(args, &code);
  EXPECT_EQ(code, 0) << out;
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << out;
  return j;
}

std::string TinyA() {
  return test::TinyModelDir("idefics2-tiny-a");
}
std::string Photo() {
  return test::GoldenDir() + "/images/photo_320x240.jpg";
}

TEST(CliRunTest, JsonGivesGoldenIds) {
  for (const char* model : {"idefics2-tiny-a", "idefics2-tiny-b"}) {
    SCOPED_TRACE(model);
    const test::ModelCase c = test::FindCase(model, "one_image");
    nlohmann::json j = CliJson("run --model " + test::TinyModelDir(model) + " --image " + Photo() +
                               " --prompt 'What is shown in this image?' --json --max-tokens 16 --no-split");
    ASSERT_FALSE(j.is_discarded());
    EXPECT_EQ(j["prompt_ids"].get<std::vector<int64_t>>(), c.input_ids);
    // The CLI bans image tokens and stops at EOS / <end_of_utterance>; the goldens hit neither.
    EXPECT_EQ(j["generated_ids"].get<std::vector<int64_t>>(), c.generated_ids);
    EXPECT_EQ(j["finish_reason"], "length");
    for (const char* k : {"load_ms", "preprocess_ms", "vision_ms", "prefill_ms", "decode_ms", "prompt_tokens",
                          "generated_tokens"}) {
      EXPECT_TRUE(j["timings"].contains(k)) << k;
    }
    EXPECT_EQ(j["timings"]["generated_tokens"], 16);
    EXPECT_TRUE(j["text"].is_string());
  }
}

TEST(CliRunTest, StreamsTextAndTextOnlyPrompt) {
  const test::ModelCase c = test::FindCase("idefics2-tiny-a", "text_only");
  nlohmann::json j =
      CliJson("run --model " + TinyA() + " --prompt 'Say hi to the sea.' --json --max-tokens 16");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["prompt_ids"].get<std::vector<int64_t>>(), c.input_ids);
  EXPECT_EQ(j["generated_ids"].get<std::vector<int64_t>>(), c.generated_ids);
  int code = -1;
  const std::string text =
      Cli("run --model " + TinyA() + " --prompt 'Say hi to the sea.' --max-tokens 16 --quiet", &code);
  ASSERT_EQ(code, 0);
  EXPECT_EQ(text, j["text"].get<std::string>() + "\n");
}

TEST(CliRunTest, RawModeAndSystem) {
  const test::ModelCase c = test::FindCase("idefics2-tiny-a", "one_image");
  nlohmann::json j =
      CliJson("run --model " + TinyA() + " --image " + Photo() +
              " --raw --prompt \"$(printf 'User:<image>What is shown in this image?<end_of_utterance>\\n"
              "Assistant:')\" --json --max-tokens 16");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["prompt_ids"].get<std::vector<int64_t>>(), c.input_ids);
  nlohmann::json k =
      CliJson("run --model " + TinyA() + " --system 'Be brief.' --prompt hi --json --max-tokens 2");
  ASSERT_FALSE(k.is_discarded());
  EXPECT_GT(k["prompt_ids"].size(), 10u);
}

TEST(CliRunTest, DumpLogitsAndDumpDir) {
  const test::ModelCase c = test::FindCase("idefics2-tiny-a", "one_image");
  const std::string dir = test::MakeTempDir("cli-dump");
  int code = -1;
  Cli("run --model " + TinyA() + " --image " + Photo() + " --prompt 'What is shown in this image?' --quiet" +
          " --max-tokens 1 --dump-logits " + dir + "/logits.safetensors --dump-dir " + dir + "/stages",
      &code);
  ASSERT_EQ(code, 0);
  auto f = SafetensorsFile::Open(dir + "/logits.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const TensorInfo* t = (*f)->Find("logits");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{27, 4003}));
  auto golden = test::OpenGolden(c.file);
  ASSERT_NE(golden, nullptr);
  const std::vector<float> expected = test::GoldenF32(*golden, "logits");
  auto got = ReadAsF32(*t);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(test::AllClose("logits", got->data(), expected.data(), expected.size(), 1e-4f, 1e-4f));
  // Every stage is written under its golden name; the vision output is one of them.
  auto v = SafetensorsFile::Open(dir + "/stages/vision_last_hidden_state.safetensors");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_NE((*v)->Find("vision_last_hidden_state"), nullptr);
  std::filesystem::remove_all(dir);
}

TEST(CliRunTest, InputErrorsExitOneWithAMessage) {
  struct ErrorCase {
    std::string args;
    std::string expect;  // part of the message
  };
  const std::string m = "--model " + TinyA();
  const std::vector<ErrorCase> cases = {
      {"--model /nonexistent/dir --prompt hi", "/nonexistent/dir"},
      {m + " --image /nonexistent/x.png --prompt hi", "/nonexistent/x.png"},
      {m + " --image " + test::GoldenDir() + "/cases.json --prompt hi", "cases.json"},
      {m + " --image " + Photo() + " --raw --prompt '<image><image>two'",
       "2 <image> placeholder(s) but 1 image(s)"},
      {m + " --ctx 20 --image " + Photo() + " --prompt 'What is shown in this image?'", "context"},
      {m + " --ctx 40 --max-tokens 30 --image " + Photo() + " --prompt 'What is shown in this image?'",
       "use at most 13 new tokens"},
      {m + " --weights-dtype int3 --prompt hi", "int3"},
      {m + " --prompt hi --temperature -1 --top-k 5", "temperature"},
      {m, "--prompt"},
      {"--model /nonexistent/dir --prompt hi --image " + Photo(), "/nonexistent/dir"},
  };
  for (const ErrorCase& e : cases) {
    SCOPED_TRACE(e.args);
    int code = -1;
    const std::string out = Cli("run " + e.args, &code, /*with_stderr=*/true);
    EXPECT_EQ(code, 1) << out;
    EXPECT_NE(out.find(e.expect), std::string::npos) << out;
  }
}

TEST(CliRunTest, WeightsThatDoNotFitAreRefusedWithTheNeededSize) {
  int code = -1;
  const std::string out = Cli("run --model " + TinyA() + " --prompt hi --weights-dtype f32", &code, true);
  ASSERT_EQ(code, 0) << out;
  std::string msg;
  code = test::RunCommand("IDEFICS_MEM_AVAILABLE=100000 " + test::CliPath() + " run --model " + TinyA() +
                              " --prompt hi --max-tokens 2 2>&1",
                          &msg);
  EXPECT_EQ(code, 1) << msg;
  EXPECT_NE(msg.find("need about"), std::string::npos) << msg;
  EXPECT_NE(msg.find("100000 bytes"), std::string::npos) << msg;
}

TEST(CliChatTest, PipedConversation) {
  const std::string cmd =
      "printf 'Say hi to the sea.\\n/image " + Photo() +
      "\\nWhat is shown in this image?\\n/reset\\n/image /nonexistent.png\\nhello\\n/quit\\nignored\\n' | " +
      test::CliPath() + " chat --model " + TinyA() + " --max-tokens 4 --quiet";
  std::string out;
  const int code = test::RunCommand(cmd, &out);
  EXPECT_EQ(code, 0) << out;
  // Three answers, one line each; the first equals `run` on the same prompt (a fresh conversation).
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(out.substr(start, nl - start));
  ASSERT_EQ(lines.size(), 3u) << out;
  int rc = -1;
  const std::string first =
      Cli("run --model " + TinyA() + " --prompt 'Say hi to the sea.' --max-tokens 4 --quiet", &rc);
  EXPECT_EQ(lines[0] + "\n", first);
  // After /reset, "hello" is a fresh conversation too.
  const std::string hello = Cli("run --model " + TinyA() + " --prompt hello --max-tokens 4 --quiet", &rc);
  EXPECT_EQ(lines[2] + "\n", hello);
}

// A turn that fails (here: longer than --ctx) prints its error on stderr, no empty answer line on stdout, and
// makes the exit status 1, so a script piping turns in can tell a failure from an empty answer.
TEST(CliChatTest, FailedTurnPrintsNoAnswerAndExitsOne) {
  const std::string cmd = "printf 'this prompt is longer than eight tokens for sure\\n' | " +
                          test::CliPath() + " chat --model " + TinyA() +
                          " --ctx 8 --max-tokens 4 --quiet 2>/dev/null";
  std::string out;
  EXPECT_EQ(test::RunCommand(cmd, &out), 1) << out;
  EXPECT_EQ(out, "");
}

// Ctrl-C during `synth` (here ~1 GB at real dimensions, seconds of writing) stops it at the next tensor with
// exit status 130 and leaves no partial weights file behind.
TEST(CliSynthTest, InterruptLeavesNoPartialFile) {
  namespace fs = std::filesystem;
  const std::string dir = test::MakeTempDir("cli-synth-int") + "/out";
  const std::string cmd = "(" + test::CliPath() + " synth --out " + dir +
                          " --dtype bf16 --text-layers 1 --vision-layers 1 2>/dev/null & p=$!; sleep 1; "
                          "kill -INT $p; wait $p; echo rc=$?)";
  std::string out;
  ASSERT_EQ(test::RunCommand(cmd, &out), 0) << out;
  if (out.find("rc=0") != std::string::npos)
    GTEST_SKIP() << "synth finished within a second; nothing to interrupt";
  EXPECT_NE(out.find("rc=130"), std::string::npos) << out;
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".safetensors"), std::string::npos) << e.path();
  fs::remove_all(fs::path(dir).parent_path());
}

// Every subcommand turns a flag error into exit code 1 with CLI11's message (bench, inspect, quantize and
// synth used to return CLI11's own codes, e.g. 106), and --help into 0.
TEST(CliRunTest, EveryCommandExitsOneOnABadFlag) {
  for (const char* cmd : {"run", "chat", "serve", "bench", "inspect", "quantize", "synth", "preprocess",
                          "tokenize", "bench-serve"}) {
    SCOPED_TRACE(cmd);
    int code = -1;
    const std::string out = Cli(std::string(cmd) + " --no-such-flag", &code, /*with_stderr=*/true);
    EXPECT_EQ(code, 1) << out;
    EXPECT_NE(out.find("Run with --help"), std::string::npos) << out;  // CLI11's message (a missing
                                                                       // required flag may be named first)
    Cli(std::string(cmd) + " --help", &code);
    EXPECT_EQ(code, 0);
  }
}

// Two words where one TEXT was meant: a message saying to quote it (CLI11's own listed the words and a
// stray "--" the command adds to keep texts that start with "-" positional).
TEST(CliRunTest, TokenizeWithTwoTextsSaysToQuote) {
  int code = -1;
  const std::string out = Cli("tokenize --model " + TinyA() + " a b", &code, /*with_stderr=*/true);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("expected one TEXT argument, got 2"), std::string::npos) << out;
  EXPECT_EQ(out.find(" --\n"), std::string::npos) << out;
  EXPECT_EQ(Cli("tokenize --model " + TinyA() + " -- \"a b\"", &code), "[1,262,271]\n");
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace idefics
