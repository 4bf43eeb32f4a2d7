// The text half of the Idefics2 processor: expands each <image> placeholder into the image-token sequence
// the model expects, then tokenizes. Mirrors transformers' Idefics2Processor.__call__ (text part).
#include "tokenizer/processor_text.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "tokenizer/tokenizer.h"

namespace idefics::tokenizer {

using nlohmann::json;

namespace {

constexpr int kMaxImageSeqLen = 1 << 16;  // far above any real perceiver, keeps the expansion bounded

// Python str.replace(from, to): non-overlapping, left to right.
std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t start = 0;
  while (true) {
    const size_t k = s.find(from, start);
    if (k == std::string_view::npos) break;
    out.append(s.substr(start, k - start)).append(to);
    start = k + from.size();
  }
  out.append(s.substr(start));
  return out;
}

StatusOr<json> ReadJsonObject(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(path + ": not a valid JSON object");
  return j;
}

}  // namespace

StatusOr<ProcessorTextConfig> LoadProcessorTextConfig(const std::string& model_dir) {
  ProcessorTextConfig c;
  const std::string proc = model_dir + "/processor_config.json";
  ASSIGN_OR_RETURN(json p, ReadJsonObject(proc));
  auto it = p.find("image_seq_len");
  if (it == p.end() || !it->is_number_integer() || it->get<int64_t>() < 1 ||
      it->get<int64_t>() > kMaxImageSeqLen) {
    return InvalidArgument(proc + ": image_seq_len must be an integer in [1, " +
                           std::to_string(kMaxImageSeqLen) + "]");
  }
  c.image_seq_len = it->get<int>();
  const std::string pre = model_dir + "/preprocessor_config.json";
  std::error_code ec;
  if (std::filesystem::exists(pre, ec)) {
    ASSIGN_OR_RETURN(json q, ReadJsonObject(pre));
    auto s = q.find("do_image_splitting");
    if (s != q.end()) {
      if (!s->is_boolean()) return InvalidArgument(pre + ": do_image_splitting must be a boolean");
      c.do_image_splitting = s->get<bool>();
    }
  }
  return c;
}

int CountImageTokens(std::string_view prompt, std::string_view image_token) {
  if (image_token.empty()) return 0;
  int n = 0;
  for (size_t k = prompt.find(image_token); k != std::string_view::npos;
       k = prompt.find(image_token, k + image_token.size())) {
    ++n;
  }
  return n;
}

StatusOr<std::string> ExpandImageTokens(std::string_view prompt, int n_images, int image_seq_len,
                                        bool image_splitting, std::string_view image_token,
                                        std::string_view fake_token) {
  if (image_seq_len < 1 || image_seq_len > kMaxImageSeqLen) {
    return InvalidArgument("image_seq_len " + std::to_string(image_seq_len) + " is outside [1, " +
                           std::to_string(kMaxImageSeqLen) + "]");
  }
  if (image_token.empty() || fake_token.empty()) return InvalidArgument("empty image token");
  const int placeholders = CountImageTokens(prompt, image_token);
  if (placeholders != n_images) {
    return InvalidArgument("the prompt has " + std::to_string(placeholders) + " " + std::string(image_token) +
                           " placeholder(s) but " + std::to_string(n_images) +
                           " image(s) were given; they must be equal");
  }
  if (n_images == 0) return std::string(prompt);
  std::string one(fake_token);
  for (int i = 0; i < image_seq_len; ++i) one.append(image_token);
  one.append(fake_token);
  std::string image_str;
  for (int i = 0; i < (image_splitting ? 5 : 1); ++i) image_str += one;
  const std::string expanded = ReplaceAll(prompt, image_token, image_str);
  const std::string double_fake = std::string(fake_token) + std::string(fake_token);
  return ReplaceAll(expanded, double_fake, fake_token);
}

StatusOr<std::vector<int32_t>> ProcessText(const Tokenizer& tokenizer, std::string_view prompt, int n_images,
                                           const ProcessorTextConfig& config) {
  ASSIGN_OR_RETURN(std::string expanded,
                   ExpandImageTokens(prompt, n_images, config.image_seq_len, config.do_image_splitting,
                                     config.image_token, config.fake_image_token));
  return tokenizer.Encode(expanded, tokenizer.add_bos_token());
}

}  // namespace idefics::tokenizer
