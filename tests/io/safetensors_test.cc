// safetensors: golden files open, bad headers are refused with a message naming the file and tensor.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "support/golden.h"

namespace idefics {
namespace {

std::string WriteRaw(const std::string& dir, const std::string& name, const std::string& header,
                     size_t data_bytes) {
  const std::string p = dir + "/" + name;
  std::ofstream f(p, std::ios::binary);
  uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header;
  f << std::string(data_bytes, '\0');
  return p;
}

TEST(Safetensors, OpensShardedGoldenModel) {
  auto store = TensorStore::OpenFolder(test::TinyModelDir("idefics2-tiny-a"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->files().size(), 3u);
  const TensorInfo* t = (*store)->Find("lm_head.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::kF32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{4003, 32}));
}

TEST(Safetensors, OpensSingleBf16Model) {
  auto store = TensorStore::OpenFolder(test::TinyModelDir("idefics2-tiny-b"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const TensorInfo* t = (*store)->Find("lm_head.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::kBF16);
}

TEST(Safetensors, RejectsBadFiles) {
  const std::string dir = test::MakeTempDir("st");
  struct Case {
    std::string header;
    size_t data;
    std::string expect;
  } cases[] = {
      {"{not json", 0, "not valid JSON"},
      {R"({"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", 4, "unknown dtype 'F99'"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 8, "needs 8"},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, "past the data section"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "overlap"},
      {R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "non-negative"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       8, "names tensor 'a' twice"},
  };
  int i = 0;
  for (const Case& c : cases) {
    auto p = WriteRaw(dir, "bad" + std::to_string(i++) + ".safetensors", c.header, c.data);
    auto f = SafetensorsFile::Open(p);
    ASSERT_FALSE(f.ok()) << c.header;
    EXPECT_NE(f.status().message().find(c.expect), std::string::npos) << f.status().message();
    EXPECT_NE(f.status().message().find(p), std::string::npos) << "error must name the file";
  }
  // Header length beyond the file and beyond the limit.
  {
    const std::string p = dir + "/trunc.safetensors";
    std::ofstream f(p, std::ios::binary);
    uint64_t n = 1000;
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << "{}";
    f.close();
    auto r = SafetensorsFile::Open(p);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("runs past the end"), std::string::npos) << r.status().message();
  }
  {
    const std::string p = dir + "/huge.safetensors";
    std::ofstream f(p, std::ios::binary);
    uint64_t n = 1ull << 40;
    f.write(reinterpret_cast<const char*>(&n), 8);
    f.close();
    auto r = SafetensorsFile::Open(p);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("100 MiB"), std::string::npos) << r.status().message();
  }
  {
    const std::string p = dir + "/tiny.safetensors";
    std::ofstream(p, std::ios::binary) << "abc";
    auto r = SafetensorsFile::Open(p);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("truncated"), std::string::npos);
  }
}

TEST(Safetensors, WriteThenReadRoundTrip) {
  const std::string dir = test::MakeTempDir("stw");
  std::vector<float> a = {1.f, 2.f, 3.f};
  std::vector<uint8_t> b = {7, 8};
  ASSERT_TRUE(WriteSafetensors(dir + "/x.safetensors",
                               {{"a", DType::kF32, {3}, a.data(), {}}, {"b", DType::kU8, {1, 2}, b.data(), {}}},
                               {{"format", "pt"}})
                  .ok());
  auto f = SafetensorsFile::Open(dir + "/x.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  auto av = ReadAsF32(*(*f)->Find("a"));
  ASSERT_TRUE(av.ok());
  EXPECT_EQ(*av, a);
  auto bv = ReadAsI64(*(*f)->Find("b"));
  ASSERT_TRUE(bv.ok());
  EXPECT_EQ(*bv, (std::vector<int64_t>{7, 8}));
  // The header is padded with spaces so the data starts on a 64-byte boundary.
  EXPECT_EQ((*f)->Find("a")->file_offset % 64, 0u);
}

}  // namespace
}  // namespace idefics
