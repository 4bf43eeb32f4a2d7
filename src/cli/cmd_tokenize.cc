// idefics tokenize: prints the token ids of a text as a JSON array on one line.
// Same ids as transformers' tokenizer(text)["input_ids"] for the model folder (BOS unless --no-bos).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/parse_flags.h"
#include "tokenizer/tokenizer.h"

namespace idefics::cli {

int RunTokenize(int argc, char** argv) {
  CLI::App app{"Print the token ids of TEXT as a JSON array, e.g. [1,1356,1900]", "idefics tokenize"};
  std::string model_dir;
  std::string text;
  bool no_bos = false;
  app.add_option("--model", model_dir, "model folder with tokenizer.model and the tokenizer JSON files")
      ->required();
  app.add_flag("--no-bos", no_bos, "do not prepend the BOS token <s>");
  app.add_option("text", text, "the text to tokenize (special tokens such as <image> are matched)")
      ->required();
  // A TEXT that starts with "-" (e.g. "--- notes") would be taken for an option: move every argument that
  // is not one of ours behind "--" so that CLI11 reads it as the positional.
  std::vector<std::string> ours = {argv[0]}, rest;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      rest.insert(rest.end(), argv + i + 1, argv + argc);
      break;
    }
    if (a == "--model" && i + 1 < argc) {
      ours.push_back(a);
      ours.push_back(argv[++i]);
    } else if (a.rfind("--model=", 0) == 0 || a == "--no-bos" || a == "--help" || a == "-h" ||
               a == "--model") {
      ours.push_back(a);
    } else {
      rest.push_back(a);
    }
  }
  if (rest.size() > 1) {
    // CLI11 would name the extra words followed by the "--" added below; say what is wrong instead.
    std::fprintf(stderr,
                 "idefics tokenize: expected one TEXT argument, got %zu (quote a text with spaces: "
                 "idefics tokenize --model DIR \"%s %s\")\n",
                 rest.size(), rest[0].c_str(), rest[1].c_str());
    return 1;
  }
  ours.push_back("--");
  ours.insert(ours.end(), rest.begin(), rest.end());
  std::vector<char*> fixed_argv;
  for (std::string& a : ours) fixed_argv.push_back(a.data());
  if (std::optional<int> rc = ParseFlags(app, static_cast<int>(fixed_argv.size()), fixed_argv.data()))
    return *rc;
  auto tok = tokenizer::Tokenizer::Load(model_dir);
  if (!tok.ok()) {
    std::fprintf(stderr, "idefics tokenize: %s\n", tok.status().ToString().c_str());
    return 1;
  }
  const std::vector<int32_t> ids = (*tok)->Encode(text, !no_bos);
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  out += "]\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace idefics::cli
