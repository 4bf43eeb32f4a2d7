// Bad input never crashes: missing, empty, non-image, unsupported, truncated and corrupt files, and images
// over the pixel limit (refused from the header alone) all return a Status naming the file.
#include <gtest/gtest.h>

#include <chrono>

#include "image/decode.h"
#include "image/encode_util.h"
#include "support/golden.h"

namespace idefics {
namespace {

uint32_t Crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

void PutBe32(std::vector<uint8_t>* v, uint32_t x) {
  for (int i = 3; i >= 0; --i) v->push_back(static_cast<uint8_t>(x >> (8 * i)));
}

// PNG signature + a valid IHDR (with CRC) declaring width x height RGB8, then IEND. No pixel data.
std::vector<uint8_t> PngHeaderOnly(uint32_t width, uint32_t height) {
  std::vector<uint8_t> v = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr = {'I', 'H', 'D', 'R'};
  PutBe32(&ihdr, width);
  PutBe32(&ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  PutBe32(&v, 13);
  v.insert(v.end(), ihdr.begin(), ihdr.end());
  PutBe32(&v, Crc32(ihdr.data(), ihdr.size()));
  const uint8_t iend[] = {'I', 'E', 'N', 'D'};
  PutBe32(&v, 0);
  v.insert(v.end(), iend, iend + 4);
  PutBe32(&v, Crc32(iend, 4));
  return v;
}

std::vector<uint8_t> SmallPng() {
  test::PngSpec s = test::MakePng(40, 30, PNG_COLOR_TYPE_RGB, 8);
  for (int i = 0; i < 40 * 30 * 3; ++i) s.rows.push_back(static_cast<uint8_t>((i * 131) ^ (i >> 5)));
  return test::EncodePng(s);
}

std::vector<uint8_t> SmallJpeg(bool progressive = false) {
  test::JpegSpec s = test::MakeJpeg(40, 30, 3, JCS_RGB, 95);
  s.progressive = progressive;
  for (int i = 0; i < 40 * 30 * 3; ++i) s.pixels.push_back(static_cast<uint8_t>((i * 131) ^ (i >> 5)));
  return test::EncodeJpeg(s);
}

std::vector<uint8_t> SmallWebp() {
  std::vector<uint8_t> px(40 * 30 * 4);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 7);
  return test::EncodeWebp(px, 40, 30, true, false);
}

Status DecodeErr(const std::vector<uint8_t>& b, const std::string& name = "img", int64_t max_pixels = 0) {
  DecodeOptions o;
  if (max_pixels) o.max_pixels = max_pixels;
  auto r = DecodeImageBytes(b.data(), b.size(), name, o);
  return r.ok() ? Status::Ok() : r.status();
}

TEST(DecodeErrors, MissingEmptyDirectoryAndNonImageFilesNameTheFile) {
  const std::string dir = test::MakeTempDir("decerr");
  auto missing = DecodeImageFile(dir + "/nope.png");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.png"), std::string::npos);

  auto empty = DecodeImageFile(test::WriteBytes(dir + "/empty.jpg", {}));
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("empty.jpg"), std::string::npos);
  EXPECT_NE(empty.status().message().find("empty"), std::string::npos);

  EXPECT_FALSE(DecodeImageFile(dir).ok());

  const std::string text = "hello, this is not an image";
  auto txt = DecodeImageFile(test::WriteBytes(dir + "/notes.png", {text.begin(), text.end()}));
  EXPECT_EQ(txt.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(txt.status().message().find("notes.png: not a PNG, JPEG or WebP"), std::string::npos)
      << txt.status().message();

  const std::string gif = "GIF89a\x01\x00\x01\x00";
  auto g = DecodeImageFile(test::WriteBytes(dir + "/anim.gif", {gif.begin(), gif.end()}));
  EXPECT_EQ(g.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(g.status().message().find("GIF"), std::string::npos);
}

TEST(DecodeErrors, HugePngHeaderIsRefusedBeforeDecoding) {
  const auto bytes = PngHeaderOnly(100000, 100000);
  const auto t0 = std::chrono::steady_clock::now();
  Status st = DecodeErr(bytes, "huge.png");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  EXPECT_NE(st.message().find("huge.png"), std::string::npos);
  EXPECT_NE(st.message().find("100000x100000"), std::string::npos) << st.message();
  EXPECT_LT(secs, 0.5);
  // Within the limit, the same header-only file is a truncated/corrupt PNG (no IDAT), not a crash.
  EXPECT_EQ(DecodeErr(PngHeaderOnly(10, 10)).code(), StatusCode::kInvalidArgument);
  // Zero size in IHDR.
  EXPECT_EQ(DecodeErr(PngHeaderOnly(0, 10)).code(), StatusCode::kInvalidArgument);
}

TEST(DecodeErrors, HugeJpegHeaderIsRefused) {
  auto bytes = SmallJpeg();
  // Patch SOF0 (FF C0, length, precision, height, width) to 65000 x 65000.
  bool patched = false;
  for (size_t i = 2; i + 9 < bytes.size(); ++i) {
    if (bytes[i] == 0xFF && bytes[i + 1] == 0xC0) {
      bytes[i + 5] = 0xFD, bytes[i + 6] = 0xE8, bytes[i + 7] = 0xFD, bytes[i + 8] = 0xE8;
      patched = true;
      break;
    }
  }
  ASSERT_TRUE(patched);
  Status st = DecodeErr(bytes, "huge.jpg");
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  EXPECT_NE(st.message().find("65000x65000"), std::string::npos) << st.message();
}

TEST(DecodeErrors, ConfigurableLimitAppliesToEveryFormat) {
  for (const auto& b : {SmallPng(), SmallJpeg(), SmallWebp()}) {
    EXPECT_EQ(DecodeErr(b, "x", 40 * 30 - 1).code(), StatusCode::kResourceExhausted);
    EXPECT_TRUE(DecodeErr(b, "x", 40 * 30).ok());
  }
}

TEST(DecodeErrors, TruncatedFilesAreRefused) {
  struct Case {
    const char* name;
    std::vector<uint8_t> bytes;
  } cases[] = {{"cut.png", SmallPng()},
               {"cut.jpg", SmallJpeg()},
               {"cut_prog.jpg", SmallJpeg(true)},
               {"cut.webp", SmallWebp()}};
  for (const Case& c : cases) {
    std::vector<uint8_t> half(c.bytes.begin(), c.bytes.begin() + c.bytes.size() / 2);
    Status st = DecodeErr(half, c.name);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.name << ": " << st.ToString();
    EXPECT_NE(st.message().find(c.name), std::string::npos);
    EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.message();
  }
}

TEST(DecodeErrors, JpegWithoutEoiIsTruncated) {
  // libjpeg's entropy decoder reads ahead to the next marker; without EOI the data ends first. Pillow
  // (without LOAD_TRUNCATED_IMAGES) raises "image file is truncated" there, so we refuse it as well.
  const auto full = SmallJpeg();
  ASSERT_EQ(full[full.size() - 2], 0xFF);
  ASSERT_EQ(full[full.size() - 1], 0xD9);
  const std::vector<uint8_t> no_eoi(full.begin(), full.end() - 2);
  Status st = DecodeErr(no_eoi, "no_eoi.jpg");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.message();
}

TEST(DecodeErrors, CorruptPixelDataIsRefused) {
  auto png = SmallPng();
  png[png.size() - 20] ^= 0x55;  // inside IDAT: CRC mismatch on a critical chunk
  EXPECT_EQ(DecodeErr(png, "bad.png").code(), StatusCode::kInvalidArgument);
  std::vector<uint8_t> jpg = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0x12, 0x34, 0x56};
  Status st = DecodeErr(jpg, "bad.jpg");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("bad.jpg"), std::string::npos);
}

// Every prefix length and a sweep of single-byte corruptions: each returns (ok or an error), never crashes.
TEST(DecodeErrors, PrefixesAndByteFlipsNeverCrash) {
  int errors = 0;
  for (const auto& bytes : {SmallPng(), SmallJpeg(), SmallJpeg(true), SmallWebp()}) {
    for (size_t n = 0; n < bytes.size(); n += 7) {
      std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
      errors += !DecodeErr(cut).ok();
    }
    for (size_t i = 0; i < bytes.size(); i += 5) {
      std::vector<uint8_t> flip = bytes;
      flip[i] ^= static_cast<uint8_t>(0x5A + i);
      (void)DecodeErr(flip).ok();
    }
  }
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace idefics
