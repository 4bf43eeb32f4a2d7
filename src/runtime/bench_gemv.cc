// The decode GEMV breakdown of `idefics bench` (see bench_gemv.h). Mirrors no reference class.
#include "runtime/bench_gemv.h"

#include <string>

namespace idefics {

nlohmann::ordered_json GemvBreakdownJson(const GemvStats& stats, int64_t tokens, double decode_ms) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  if (tokens <= 0 || decode_ms <= 0) return rows;
  for (const GemvShapeStats& e : stats.shapes) {
    rows.push_back({{"rows", e.rows},
                    {"cols", e.cols},
                    {"matrices", e.matrices},
                    {"format", WeightFormatName(e.format)},
                    {"calls_per_token", static_cast<double>(e.calls) / tokens},
                    {"ms_per_token", e.seconds * 1e3 / tokens},
                    {"GBs", e.seconds > 0 ? e.bytes / e.seconds / 1e9 : 0.0},
                    {"share_of_decode", e.seconds * 1e3 / decode_ms},
                    {"fraction_of_bandwidth", nullptr}});
  }
  return rows;
}

void SetGemvFractions(nlohmann::ordered_json* rows, double bw) {
  if (bw <= 0) return;
  for (nlohmann::ordered_json& r : *rows) r["fraction_of_bandwidth"] = r["GBs"].get<double>() / bw;
}

std::string GemvShapeLabel(const nlohmann::ordered_json& row) {
  std::string s = std::to_string(row["cols"].get<int64_t>()) + "->" +
                  std::to_string(row["rows"].get<int64_t>()) + " " + row["format"].get<std::string>();
  const int n = row["matrices"].get<int>();
  return n > 1 ? s + " x" + std::to_string(n) : s;
}

}  // namespace idefics
