// idefics run: answer one prompt about images. Loads the model, renders the chat template (or takes a raw
// prompt), generates with streaming to stdout; --json, --dump-logits and --dump-dir for tools and debugging.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/parse_flags.h"
#include "cli/run_flags.h"
#include "idefics/engine.h"
#include "io/safetensors.h"

namespace idefics::cli {
namespace {

nlohmann::json TimingsJson(const Timings& t) {
  return {{"load_ms", t.load_ms},
          {"preprocess_ms", t.preprocess_ms},
          {"vision_ms", t.vision_ms},
          {"prefill_ms", t.prefill_ms},
          {"decode_ms", t.decode_ms},
          {"prompt_tokens", t.prompt_tokens},
          {"generated_tokens", t.generated_tokens}};
}

// --dump-dir: the model reports vision/connector stages once per (sub-)image; equal-shaped repeats are
// stacked along a new leading axis ([n_images, ...] like the goldens), differently shaped ones get a ".<k>"
// suffix.
class StageDumps {
 public:
  void Add(const std::string& name, const float* data, const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; });
    if (it == entries_.end()) {
      entries_.push_back({name, {}});
      it = entries_.end() - 1;
    }
    it->parts.push_back({shape, std::vector<float>(data, data + n)});
  }

  Status Write(const std::string& dir) const {
    for (const Entry& e : entries_) {
      const bool same = std::all_of(e.parts.begin(), e.parts.end(),
                                    [&](const Part& p) { return p.shape == e.parts[0].shape; });
      if (e.parts.size() == 1 || !same) {
        for (size_t k = 0; k < e.parts.size(); ++k) {
          const std::string name = e.parts.size() == 1 ? e.name : e.name + "." + std::to_string(k);
          RETURN_IF_ERROR(WriteOne(dir, name, e.parts[k].shape, e.parts[k].data.data()));
        }
        continue;
      }
      std::vector<float> all;
      for (const Part& p : e.parts) all.insert(all.end(), p.data.begin(), p.data.end());
      std::vector<int64_t> shape = e.parts[0].shape;
      shape.insert(shape.begin(), static_cast<int64_t>(e.parts.size()));
      RETURN_IF_ERROR(WriteOne(dir, e.name, shape, all.data()));
    }
    return Status::Ok();
  }

 private:
  struct Part {
    std::vector<int64_t> shape;
    std::vector<float> data;
  };
  struct Entry {
    std::string name;
    std::vector<Part> parts;
  };
  static Status WriteOne(const std::string& dir, const std::string& name, const std::vector<int64_t>& shape,
                         const float* data) {
    const std::string path = (std::filesystem::path(dir) / (name + ".safetensors")).string();
    return WriteSafetensors(path, {{name, DType::kF32, shape, data, nullptr}});
  }
  std::vector<Entry> entries_;
};

// Checks the --image files before the (slow) model load so a typo fails at once.
Status CheckImagePaths(const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec))
      return NotFound("image '" + p + "' does not exist or is not a file");
  }
  return Status::Ok();
}

}  // namespace

int RunRun(int argc, char** argv) {
  CLI::App app("Answer a prompt about images with an Idefics2 model folder", "idefics run");
  ModelFlags mf;
  SamplingFlags sf;
  std::vector<std::string> images;
  std::string prompt, system, dump_logits, dump_dir;
  bool as_json = false, raw = false, quiet = false;
  AddModelFlags(app, &mf);
  app.add_option("--image", images, "an image file (PNG/JPEG/WebP...); repeatable, used in order");
  app.add_option("--prompt", prompt, "the question or instruction")->required();
  app.add_option("--system", system, "a system message placed before the user message");
  AddSamplingFlags(app, &sf);
  app.add_flag("--json", as_json,
               "print one JSON object (text, prompt_ids, generated_ids, timings) at the end");
  app.add_flag(
      "--raw", raw,
      "use the prompt as given (no chat template): each <image> in it takes the next --image; BOS added");
  app.add_option("--dump-logits", dump_logits,
                 "write the logits of every prompt position to this safetensors file");
  app.add_option("--dump-dir", dump_dir, "write every stage's output as DIR/<name>.safetensors");
  app.add_flag("--quiet", quiet, "no progress display or timing summary on stderr");
  if (std::optional<int> rc = ParseFlags(app, argc, argv)) return *rc;
  if (raw && !system.empty()) {
    std::fprintf(stderr, "idefics run: --system cannot be combined with --raw (write it into the prompt)\n");
    return 1;
  }
  if (Status st = CheckImagePaths(images); !st.ok()) {
    std::fprintf(stderr, "idefics run: %s\n", st.ToString().c_str());
    return 1;
  }
  if (!dump_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dump_dir, ec);
    if (ec) {
      std::fprintf(stderr, "idefics run: cannot create --dump-dir '%s': %s\n", dump_dir.c_str(),
                   ec.message().c_str());
      return 1;
    }
  }

  GenerationRequest req;
  if (raw) {
    req.raw_prompt = prompt;
    for (const std::string& p : images) req.raw_images.push_back(ContentPart::ImagePath(p));
  } else {
    if (!system.empty()) req.messages.push_back({"system", {ContentPart::Text(system)}});
    Message user{"user", {}};
    for (const std::string& p : images) user.content.push_back(ContentPart::ImagePath(p));
    user.content.push_back(ContentPart::Text(prompt));
    req.messages.push_back(std::move(user));
  }
  ApplySamplingFlags(sf, &req);

  Progress progress(!as_json && !quiet);
  std::unique_ptr<Engine> engine = LoadEngineOrReport(mf, &progress, "idefics run");
  if (!engine) return 1;

  GenerateOptions gopts;
  gopts.prompt_logits = !dump_logits.empty();
  gopts.progress = [&](std::string_view stage, double f) { progress.Update(stage, f); };
  StageDumps dumps;
  if (!dump_dir.empty()) {
    gopts.dump = [&](const std::string& name, const float* data, const std::vector<int64_t>& shape) {
      dumps.Add(name, data, shape);
    };
  }
  bool streamed_any = false;
  TextCallback on_text;
  if (!as_json) {
    on_text = [&](std::string_view piece) {
      progress.Done();
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      streamed_any = true;
      return true;
    };
  }
  auto result = engine->Generate(req, on_text, gopts);
  progress.Done();
  if (!result.ok()) {
    if (streamed_any) std::fputc('\n', stdout);
    std::fprintf(stderr, "idefics run: %s\n", result.status().ToString().c_str());
    return 1;
  }
  if (!dump_dir.empty()) {
    if (Status st = dumps.Write(dump_dir); !st.ok()) {
      std::fprintf(stderr, "idefics run: --dump-dir: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  if (!dump_logits.empty()) {
    const int64_t n = result->timings.prompt_tokens;
    const int64_t vocab = n > 0 ? static_cast<int64_t>(result->prompt_logits.size()) / n : 0;
    Status st = WriteSafetensors(
        dump_logits, {{"logits", DType::kF32, {n, vocab}, result->prompt_logits.data(), nullptr}});
    if (!st.ok()) {
      std::fprintf(stderr, "idefics run: --dump-logits: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  if (as_json) {
    nlohmann::json j = {{"text", result->text},
                        {"prompt_ids", result->prompt_ids},
                        {"generated_ids", result->generated_ids},
                        {"finish_reason", FinishReasonName(result->finish_reason)},
                        {"timings", TimingsJson(result->timings)}};
    // Byte tokens can form invalid UTF-8 only in theory (the decoder repairs it); replace rather than throw.
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!quiet) {
      const Timings& t = result->timings;
      const double tps = t.decode_ms > 0 ? 1000.0 * t.generated_tokens / t.decode_ms : 0.0;
      std::fprintf(
          stderr,
          "[%lld prompt tokens, %lld generated (%s) | load %.0f ms, preprocess %.0f ms, vision %.0f ms, "
          "prefill %.0f ms, decode %.0f ms (%.2f tok/s)]\n",
          static_cast<long long>(t.prompt_tokens), static_cast<long long>(t.generated_tokens),
          FinishReasonName(result->finish_reason), t.load_ms, t.preprocess_ms, t.vision_ms, t.prefill_ms,
          t.decode_ms, tps);
    }
  }
  return 0;
}

}  // namespace idefics::cli
