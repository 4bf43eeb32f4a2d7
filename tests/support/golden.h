// Test helpers: where the golden data lives, and loading named golden tensors.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace idefics::test {

// tests/data/golden (copied into the repository).
std::string GoldenDir();
// A model folder under tests/data/golden/models ("idefics2-tiny-a" / "idefics2-tiny-b").
std::string TinyModelDir(const std::string& name);
// ../shared/golden/mistral-tokenizer or $IDEFICS_MISTRAL_TOKENIZER_DIR; "" when absent.
std::string MistralTokenizerDir();
// A fresh empty temporary folder for one test.
std::string MakeTempDir(const std::string& tag);
// The built idefics binary.
std::string CliPath();

// Opens a golden .safetensors file (path relative to GoldenDir()); fails the test if it cannot.
std::unique_ptr<SafetensorsFile> OpenGolden(const std::string& relpath);
std::vector<float> GoldenF32(const SafetensorsFile& f, const std::string& name);
std::vector<int64_t> GoldenI64(const SafetensorsFile& f, const std::string& name);

// Compares float arrays with |a-b| <= atol + rtol*|b|; the failure names the tensor, the first worst index and
// the size of the largest difference.
::testing::AssertionResult AllClose(const std::string& what, const float* actual, const float* expected, size_t n,
                                    float atol, float rtol);

// Runs a shell command, returns its exit code and captures stdout.
int RunCommand(const std::string& cmd, std::string* out);

}  // namespace idefics::test
