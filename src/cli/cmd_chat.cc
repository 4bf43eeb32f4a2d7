// idefics chat: interactive multi-turn chat on stdin/stdout. The whole history is re-rendered with the chat
// template every turn; the KV cache of the previous turns is reused where the new prompt extends it.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/parse_flags.h"
#include "cli/run_flags.h"
#include "idefics/engine.h"

namespace idefics::cli {
namespace {

constexpr const char* kHelp =
    "commands: /image PATH  attach an image to the next message\n"
    "          /reset       start a new conversation\n"
    "          /quit        leave (end of input works too)\n";

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

int RunChat(int argc, char** argv) {
  CLI::App app("Interactive multi-turn chat with an Idefics2 model folder (reads stdin, writes stdout)",
               "idefics chat");
  ModelFlags mf;
  SamplingFlags sf;
  std::string system;
  bool quiet = false;
  AddModelFlags(app, &mf);
  app.add_option("--system", system, "a system message at the start of every conversation");
  AddSamplingFlags(app, &sf);
  app.add_flag("--quiet", quiet, "no progress display, banner or notices on stderr");
  if (std::optional<int> rc = ParseFlags(app, argc, argv)) return *rc;
  const bool interactive = isatty(STDIN_FILENO) != 0;
  Progress progress(!quiet);
  std::unique_ptr<Engine> engine = LoadEngineOrReport(mf, &progress, "idefics chat");
  if (!engine) return 1;
  if (!quiet) std::fprintf(stderr, "%s", kHelp);

  Session session;
  std::vector<Message> history;
  std::vector<std::string> pending_images;
  std::string line;
  bool failed = false;  // a turn failed: exit status 1
  while (true) {
    if (interactive) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    const std::string text = Trim(line);
    if (text.empty()) continue;
    if (text == "/quit" || text == "/exit") break;
    if (text == "/help") {
      std::fprintf(stderr, "%s", kHelp);
      continue;
    }
    if (text == "/reset") {
      history.clear();
      pending_images.clear();
      session.Reset();
      if (!quiet) std::fprintf(stderr, "(new conversation)\n");
      continue;
    }
    if (text.rfind("/image", 0) == 0 && (text.size() == 6 || text[6] == ' ')) {
      const std::string path = Trim(text.substr(6));
      std::error_code ec;
      if (path.empty()) {
        std::fprintf(stderr, "idefics chat: /image needs a path\n");
      } else if (!std::filesystem::is_regular_file(path, ec)) {
        std::fprintf(stderr, "idefics chat: image '%s' does not exist or is not a file\n", path.c_str());
      } else {
        pending_images.push_back(path);
        if (!quiet) std::fprintf(stderr, "(image attached: %s)\n", path.c_str());
      }
      continue;
    }
    if (text[0] == '/' && text.find(' ') == std::string::npos && text.size() > 1 && text.size() < 12) {
      std::fprintf(stderr, "idefics chat: unknown command %s\n%s", text.c_str(), kHelp);
      continue;
    }

    Message user{"user", {}};
    for (const std::string& p : pending_images) user.content.push_back(ContentPart::ImagePath(p));
    user.content.push_back(ContentPart::Text(text));
    history.push_back(std::move(user));

    GenerationRequest req;
    if (!system.empty()) req.messages.push_back({"system", {ContentPart::Text(system)}});
    req.messages.insert(req.messages.end(), history.begin(), history.end());
    ApplySamplingFlags(sf, &req);
    GenerateOptions gopts;
    gopts.session = &session;
    gopts.progress = [&](std::string_view stage, double f) { progress.Update(stage, f); };
    bool wrote = false;
    auto result = engine->Generate(
        req,
        [&](std::string_view piece) {
          progress.Done();
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
          wrote = true;
          return true;
        },
        gopts);
    progress.Done();
    // A failed turn prints no empty answer line (only the error, on stderr), and makes the exit status 1 so a
    // script piping turns in can tell.
    if (wrote || result.ok()) std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!result.ok()) {
      failed = true;
      history.pop_back();  // keep the conversation as it was; the images stay attached
      std::fprintf(stderr, "idefics chat: %s\n", result.status().ToString().c_str());
      if (result.status().code() == StatusCode::kOutOfRange) std::fprintf(stderr, "(/reset starts over)\n");
      continue;
    }
    pending_images.clear();
    history.push_back({"assistant", {ContentPart::Text(result->text)}});
  }
  return failed ? 1 : 0;
}

}  // namespace idefics::cli
