// Golden pixel batch -> unpadded PixelImages (see golden_pixels.h).
#include "support/golden_pixels.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "support/golden.h"

namespace idefics::test {

std::vector<std::vector<PixelImage>> GoldenPixelImages(const SafetensorsFile& f, const std::string& values_name,
                                                       const std::string& mask_name) {
  std::vector<std::vector<PixelImage>> out;
  const TensorInfo* vt = f.Find(values_name);
  const TensorInfo* mt = f.Find(mask_name);
  EXPECT_TRUE(vt && mt) << f.path() << " lacks " << values_name << " or " << mask_name;
  if (!vt || !mt || vt->shape.size() != 5 || mt->shape.size() != 4) return out;
  const std::vector<float> pix = GoldenF32(f, values_name);
  const std::vector<int64_t> mask = GoldenI64(f, mask_name);
  const int64_t B = vt->shape[0], N = vt->shape[1], C = vt->shape[2], H = vt->shape[3], W = vt->shape[4];
  for (int64_t b = 0; b < B; ++b) {
    out.emplace_back();
    for (int64_t n = 0; n < N; ++n) {
      const int64_t* m = mask.data() + (b * N + n) * H * W;
      const float* p = pix.data() + (b * N + n) * C * H * W;
      int64_t y0 = H, y1 = -1, x0 = W, x1 = -1;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          if (m[y * W + x]) {
            y0 = std::min(y0, y), y1 = std::max(y1, y), x0 = std::min(x0, x), x1 = std::max(x1, x);
          }
      const bool all_zero = std::all_of(p, p + C * H * W, [](float v) { return v == 0.0f; });
      if (y1 < 0 || all_zero) continue;  // a padding image slot
      PixelImage img;
      img.height = static_cast<int>(y1 - y0 + 1);
      img.width = static_cast<int>(x1 - x0 + 1);
      img.chw.resize(static_cast<size_t>(C) * img.height * img.width);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < img.height; ++y)
          std::copy_n(p + (c * H + y0 + y) * W + x0, img.width,
                      img.chw.data() + (c * img.height + y) * img.width);
      out.back().push_back(std::move(img));
    }
  }
  return out;
}

std::string GoldenPixelInputsFile(const std::string& model, const std::string& case_name) {
  std::ifstream in(GoldenDir() + "/cases.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.contains("model_cases")) return "";
  for (const auto& c : j["model_cases"]) {
    if (c.value("name", "") != case_name || c.value("model", "") != "models/" + model) continue;
    if (!c.contains("pixel_inputs") || !c["pixel_inputs"].is_object()) return "";
    return c["pixel_inputs"].value("file", "");
  }
  return "";
}

std::vector<std::vector<PixelImage>> GoldenCaseImages(const std::string& model, const std::string& case_name) {
  const std::string file = GoldenPixelInputsFile(model, case_name);
  if (file.empty()) return {};
  auto f = OpenGolden(file);
  if (!f) return {};
  return GoldenPixelImages(*f);
}

}  // namespace idefics::test
