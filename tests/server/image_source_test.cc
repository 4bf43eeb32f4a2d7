// Base64, data: URIs, confined local files, SHA-256 keys, and the LRU image-feature cache.
#include "server/image_source.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "server/image_cache.h"
#include "support/golden.h"

namespace idefics::server {
namespace {

TEST(ImageSourceTest, Base64RoundTripAllLengths) {
  std::mt19937 rng(1);
  for (size_t n = 0; n < 40; ++n) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    auto back = DecodeBase64(EncodeBase64(bytes));
    ASSERT_TRUE(back.ok()) << n;
    EXPECT_EQ(*back, bytes);
  }
  EXPECT_EQ(EncodeBase64("hello"), "aGVsbG8=");
  EXPECT_EQ(*DecodeBase64("aGVs\nbG8"), "hello");  // whitespace and missing padding are fine
}

TEST(ImageSourceTest, Base64Rejects) {
  for (const char* bad : {"a", "aGVsbG8===", "aGV*bG8=", "aG=VsbG8", "aGVsbG9=", "QUJDR"})
    EXPECT_FALSE(DecodeBase64(bad).ok()) << bad;
  auto st = DecodeBase64("abc$").status();
  EXPECT_NE(st.message().find("byte 3"), std::string::npos) << st.message();
}

TEST(ImageSourceTest, DataUris) {
  ImageSourceOptions o;
  EXPECT_EQ(*LoadImageUrl("data:image/png;base64,aGVsbG8=", o), "hello");
  EXPECT_EQ(*LoadImageUrl("data:image/jpeg;BASE64,aGVsbG8=", o), "hello");
  EXPECT_FALSE(LoadImageUrl("data:text/html;base64,aGVsbG8=", o).ok());
  EXPECT_FALSE(LoadImageUrl("data:image/png,hello", o).ok());
  EXPECT_FALSE(LoadImageUrl("data:image/png;base64", o).ok());
  EXPECT_FALSE(LoadImageUrl("https://x/y.png", o).ok());
  o.max_bytes = 3;
  EXPECT_EQ(LoadImageUrl("data:image/png;base64,aGVsbG8=", o).status().code(), StatusCode::kResourceExhausted);
}

TEST(ImageSourceTest, LocalFilesStayInsideTheFolder) {
  namespace fs = std::filesystem;
  const std::string root = idefics::test::MakeTempDir("image_source_local");
  fs::create_directories(root + "/ok/deeper");
  std::ofstream(root + "/ok/deeper/a.png") << "inside";
  std::ofstream(root + "/secret.txt") << "outside";
  fs::create_symlink(root + "/secret.txt", root + "/ok/escape.png");
  fs::create_symlink(root + "/ok/deeper/a.png", root + "/ok/fine.png");
  ImageSourceOptions o;
  EXPECT_FALSE(LoadImageUrl(root + "/ok/deeper/a.png", o).ok());  // disabled
  o.allow_local_dir = root + "/ok";
  EXPECT_EQ(*LoadImageUrl(root + "/ok/deeper/a.png", o), "inside");
  EXPECT_EQ(*LoadImageUrl("file://" + root + "/ok/deeper/a.png", o), "inside");
  EXPECT_EQ(*LoadImageUrl("deeper/a.png", o), "inside");
  EXPECT_EQ(*LoadImageUrl("fine.png", o), "inside");  // a symlink that stays inside is fine
  EXPECT_FALSE(LoadImageUrl("escape.png", o).ok());
  EXPECT_FALSE(LoadImageUrl("../secret.txt", o).ok());
  EXPECT_FALSE(LoadImageUrl(root + "/ok/../secret.txt", o).ok());
  EXPECT_FALSE(LoadImageUrl("file://" + root + "/ok/%2e%2e/secret.txt", o).ok());
  EXPECT_FALSE(LoadImageUrl("file://relative/a.png", o).ok());
  EXPECT_FALSE(LoadImageUrl(root + "/ok", o).ok());  // the folder itself
  // A sibling folder whose name starts with the allowed one's is outside.
  fs::create_directories(root + "/ok2");
  std::ofstream(root + "/ok2/b.png") << "sibling";
  EXPECT_FALSE(LoadImageUrl(root + "/ok2/b.png", o).ok());
}

TEST(ImageSourceTest, Sha256) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ImageCacheTest, LruEvictionByBytes) {
  ImageFeatureCache cache(3 * (100 * 4 + 10));
  auto features = [](float v) { return std::make_shared<const ImageFeatures>(100, v); };
  for (int i = 0; i < 3; ++i) cache.Put("key-" + std::to_string(i) + "xx", features(static_cast<float>(i)));
  EXPECT_EQ(cache.stats().entries, 3);
  ASSERT_TRUE(cache.Get("key-0xx"));  // 0 becomes most recent; 1 is now the oldest
  cache.Put("key-3xx", features(3));
  EXPECT_EQ(cache.stats().evictions, 1);
  EXPECT_FALSE(cache.Peek("key-1xx"));
  EXPECT_TRUE(cache.Peek("key-0xx"));
  EXPECT_EQ((*cache.Get("key-3xx"))[0], 3.f);
  auto s = cache.stats();
  EXPECT_EQ(s.hits, 2);
  EXPECT_EQ(s.misses, 0);
  EXPECT_FALSE(cache.Get("nope"));
  EXPECT_EQ(cache.stats().misses, 1);
  // Larger than the whole budget: not stored, nothing evicted.
  cache.Put("huge", std::make_shared<const ImageFeatures>(10000, 1.f));
  EXPECT_FALSE(cache.Peek("huge"));
  EXPECT_EQ(cache.stats().entries, 3);
  EXPECT_LE(cache.stats().bytes, cache.stats().capacity_bytes);
}

}  // namespace
}  // namespace idefics::server
