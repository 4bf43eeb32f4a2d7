// Shared helpers of the runtime tests (header-only): the golden model cases of cases.json as requests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "idefics/engine.h"
#include "support/golden.h"

namespace idefics::test {

struct ModelCase {
  std::string model;               // "idefics2-tiny-a"
  std::string name;                // "one_image"
  GenerationRequest request;       // messages (or raw prompt) + images, split as the case
  std::vector<int64_t> input_ids;  // golden prompt ids (sample 0)
  std::vector<int64_t> generated_ids;
  std::string file;  // model_cases/<model>/<case>.safetensors
};

// LoadModelCases: the single-sample cases with messages (text_only, one_image, one_image_split, two_images)
// of `model`, as greedy requests with 16 new tokens and no banned ids (as the goldens were made).

inline std::vector<int64_t> ToI64(const std::vector<int32_t>& v) {
  return std::vector<int64_t>(v.begin(), v.end());
}

inline std::vector<ModelCase> LoadModelCases(const std::string& model) {
  std::ifstream f(GoldenDir() + "/cases.json");
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  EXPECT_FALSE(j.is_discarded());
  std::vector<ModelCase> out;
  if (j.is_discarded()) return out;
  for (const auto& c : j["model_cases"]) {
    if (c["model"].get<std::string>() != "models/" + model) continue;
    if (!c["messages"].is_array() || c["messages"].size() != 1) continue;
    ModelCase mc;
    mc.model = model;
    mc.name = c["name"].get<std::string>();
    mc.file = c["file"].get<std::string>();
    std::vector<std::string> images;
    if (c["images"].is_array()) {
      for (const auto& p : c["images"][0]) images.push_back(GoldenDir() + "/" + p.get<std::string>());
    }
    size_t next_image = 0;
    for (const auto& m : c["messages"][0]) {
      Message msg{m["role"].get<std::string>(), {}};
      for (const auto& part : m["content"]) {
        if (part["type"] == "image") {
          msg.content.push_back(ContentPart::ImagePath(images.at(next_image++)));
        } else {
          msg.content.push_back(ContentPart::Text(part["text"].get<std::string>()));
        }
      }
      mc.request.messages.push_back(std::move(msg));
    }
    mc.request.split = c["processor_call"]["do_image_splitting"].get<bool>();
    mc.request.max_tokens = c["generation"]["max_new_tokens"].get<int64_t>();
    mc.request.ban_image_tokens = false;
    for (const auto& id : c["generation"]["generated_ids"][0]) mc.generated_ids.push_back(id.get<int64_t>());
    auto st = OpenGolden(mc.file);
    if (st) mc.input_ids = GoldenI64(*st, "input_ids");
    out.push_back(std::move(mc));
  }
  return out;
}

inline ModelCase FindCase(const std::string& model, const std::string& name) {
  for (ModelCase& c : LoadModelCases(model)) {
    if (c.name == name) return c;
  }
  ADD_FAILURE() << "no model case " << model << "/" << name;
  return {};
}

}  // namespace idefics::test
