// Tests of MappedFile: the bytes read back are the file's, a large file maps at a 2 MiB boundary (so 2 MiB
// page-cache folios can be mapped whole), small and empty files map too, and a missing file is a NotFound
// naming the path. Mirrors no reference class.
#include "core/mapped_file.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/output_file.h"
#include "support/golden.h"

namespace idefics {
namespace {

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  return v;
}

TEST(MappedFileTest, MapsEveryByteAndAlignsLargeFilesToHugePages) {
  const std::string dir = test::MakeTempDir("mapped_file");
  for (size_t n : {size_t{1}, size_t{4097}, (size_t{2} << 20) - 1, (size_t{5} << 20) + 123}) {
    const std::string path = dir + "/f" + std::to_string(n);
    const std::vector<uint8_t> want = Pattern(n);
    ASSERT_TRUE(WriteFileAtomic(path, want.data(), n).ok());
    auto f = MappedFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status().message();
    ASSERT_EQ((*f)->size(), n);
    EXPECT_EQ(std::vector<uint8_t>((*f)->data(), (*f)->data() + n), want) << n;
    if (n >= (size_t{2} << 20)) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>((*f)->data()) % (uintptr_t{2} << 20), 0u) << n;
    }
  }
  const std::string empty = dir + "/empty";
  ASSERT_TRUE(WriteFileAtomic(empty, nullptr, 0).ok());
  auto e = MappedFile::Open(empty);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->size(), 0u);
}

TEST(MappedFileTest, MissingFileIsNotFoundNamingThePath) {
  auto f = MappedFile::Open("/nonexistent/idefics/weights.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
  EXPECT_NE(f.status().message().find("/nonexistent/idefics/weights.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace idefics
