// Test helpers (see golden.h).
#include "support/golden.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace idefics::test {

std::string GoldenDir() { return std::string(IDEFICS_TEST_DATA_DIR) + "/golden"; }

std::string TinyModelDir(const std::string& name) { return GoldenDir() + "/models/" + name; }

std::string MistralTokenizerDir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("IDEFICS_MISTRAL_TOKENIZER_DIR")) {
    if (fs::exists(fs::path(env) / "tokenizer.model")) return env;
  }
  fs::path p = fs::path(IDEFICS_SOURCE_DIR) / ".." / "shared" / "golden" / "mistral-tokenizer";
  std::error_code ec;
  if (fs::exists(p / "tokenizer.model", ec)) return fs::weakly_canonical(p).string();
  return "";
}

std::string MakeTempDir(const std::string& tag) {
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / ("idefics-" + tag + "-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* d = ::mkdtemp(buf.data());
  return d ? std::string(d) : std::string();
}

std::string CliPath() { return IDEFICS_CLI_PATH; }

std::unique_ptr<SafetensorsFile> OpenGolden(const std::string& relpath) {
  auto f = SafetensorsFile::Open(GoldenDir() + "/" + relpath);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  if (!f.ok()) return nullptr;
  return std::move(f).value();
}

namespace {
// Tensor `name` of f read by `read` (ReadAsF32 / ReadAsI64); a missing tensor or a failed read fails the
// test and gives an empty vector.
template <typename T>
std::vector<T> GoldenTensor(const SafetensorsFile& f, const std::string& name,
                            StatusOr<std::vector<T>> (*read)(const TensorInfo&)) {
  const TensorInfo* t = f.Find(name);
  EXPECT_NE(t, nullptr) << f.path() << " has no tensor " << name;
  if (!t) return {};
  auto v = read(*t);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? std::move(v).value() : std::vector<T>{};
}
}  // namespace

std::vector<float> GoldenF32(const SafetensorsFile& f, const std::string& name) {
  return GoldenTensor<float>(f, name, &ReadAsF32);
}

std::vector<int64_t> GoldenI64(const SafetensorsFile& f, const std::string& name) {
  return GoldenTensor<int64_t>(f, name, &ReadAsI64);
}

::testing::AssertionResult AllClose(const std::string& what, const float* actual, const float* expected, size_t n,
                                    float atol, float rtol) {
  size_t worst = 0, bad = 0;
  double worst_excess = -1, worst_diff = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    const double lim = atol + rtol * std::fabs(static_cast<double>(expected[i]));
    const bool nan = std::isnan(actual[i]) != std::isnan(expected[i]);
    if (d > lim || nan) {
      ++bad;
      if (nan || d - lim > worst_excess) {
        worst_excess = nan ? INFINITY : d - lim;
        worst = i;
        worst_diff = d;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << bad << " of " << n << " values differ; largest at index "
                                       << worst << ": actual " << actual[worst] << " expected " << expected[worst]
                                       << " (|diff| " << worst_diff << ", atol " << atol << " rtol " << rtol << ")";
}

int RunCommand(const std::string& cmd, std::string* out) {
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  if (out) out->clear();
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    if (out) out->append(buf, n);
  int rc = ::pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace idefics::test
