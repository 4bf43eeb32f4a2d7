// Shared helpers of the model tests: cached tiny models, golden cases, dump capture, max-diff bookkeeping.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/safetensors.h"
#include "model/idefics2_model.h"

namespace idefics::test {

// A tiny golden model loaded once per (name, format, threads) for the whole test binary.
Idefics2Model* TinyModel(const std::string& name, WeightFormat format = WeightFormat::kF32, int threads = 2);

// Every dump call, in order, by name.
struct Dumps {
  struct Entry {
    std::vector<float> data;
    std::vector<int64_t> shape;
  };
  std::map<std::string, std::vector<Entry>> by_name;
  DumpFn fn();
};

// Records the largest |actual - expected| per (model, tensor) and prints the table at exit.
void RecordMaxDiff(const std::string& model, const std::string& tensor, const float* a, const float* e, size_t n);

// One sample of a golden case: its unpadded token ids and where they sit in the padded [B, L] arrays.
struct GoldenSample {
  std::vector<int32_t> ids;
  int64_t pad = 0;  // left padding of this sample in the golden arrays
};
std::vector<GoldenSample> GoldenSamples(const SafetensorsFile& f);

int64_t Argmax(const float* x, int64_t n);

}  // namespace idefics::test
