// Test helpers: encode small PNG / JPEG / WebP files in memory with libpng / libjpeg / libwebp, so decoder
// tests cover colour types, bit depths, interlacing, progressive JPEG, CMYK and EXIF without committed files.
#pragma once

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

// jpeglib.h needs size_t and FILE declared first.
// clang-format off
#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>
// clang-format on

namespace idefics::test {

struct PngSpec {
  int width = 0, height = 0;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  bool interlace = false;
  std::vector<png_color> palette;
  std::vector<uint8_t> trns_alpha;  // palette tRNS
  bool has_trns_color = false;      // gray / RGB tRNS
  png_color_16 trns_color{};
  std::vector<uint8_t> rows;  // packed PNG rows (rowbytes each, 16-bit samples big-endian)
  std::vector<std::pair<std::string, std::vector<uint8_t>>> extra_chunks;  // written before IDAT
};

inline PngSpec MakePng(int width, int height, int color_type, int bit_depth) {
  PngSpec s;
  s.width = width;
  s.height = height;
  s.color_type = color_type;
  s.bit_depth = bit_depth;
  return s;
}

inline void PngWriteToVector(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
inline void PngFlushNoop(png_structp) {}

inline std::vector<uint8_t> EncodePng(const PngSpec& s) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return {};
  }
  png_set_write_fn(png, &out, PngWriteToVector, PngFlushNoop);
  png_set_IHDR(png, info, s.width, s.height, s.bit_depth, s.color_type,
               s.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) png_set_PLTE(png, info, s.palette.data(), static_cast<int>(s.palette.size()));
  if (!s.trns_alpha.empty()) {
    png_set_tRNS(png, info, s.trns_alpha.data(), static_cast<int>(s.trns_alpha.size()), nullptr);
  } else if (s.has_trns_color) {
    png_color_16 c = s.trns_color;
    png_set_tRNS(png, info, nullptr, 0, &c);
  }
  png_write_info(png, info);
  for (const auto& [name, data] : s.extra_chunks) {
    png_write_chunk(png, reinterpret_cast<png_const_bytep>(name.c_str()), data.data(), data.size());
  }
  const size_t rowbytes = png_get_rowbytes(png, info);
  std::vector<png_bytep> rows(s.height);
  for (int y = 0; y < s.height; ++y) rows[y] = const_cast<uint8_t*>(s.rows.data()) + y * rowbytes;
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

struct JpegSpec {
  int width = 0, height = 0;
  int components = 3;
  J_COLOR_SPACE color_space = JCS_RGB;
  int quality = 95;
  bool progressive = false;
  std::vector<uint8_t> app1;  // written as an APP1 marker (e.g. "Exif\0\0" + TIFF)
  std::vector<uint8_t> pixels;
};

inline JpegSpec MakeJpeg(int width, int height, int components, J_COLOR_SPACE cs, int quality) {
  JpegSpec s;
  s.width = width;
  s.height = height;
  s.components = components;
  s.color_space = cs;
  s.quality = quality;
  return s;
}

inline std::vector<uint8_t> EncodeJpeg(const JpegSpec& s) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buf, &size);
  cinfo.image_width = s.width;
  cinfo.image_height = s.height;
  cinfo.input_components = s.components;
  cinfo.in_color_space = s.color_space;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, s.quality, TRUE);
  if (s.progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  if (!s.app1.empty()) jpeg_write_marker(&cinfo, JPEG_APP0 + 1, s.app1.data(), s.app1.size());
  const size_t stride = static_cast<size_t>(s.width) * s.components;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(s.pixels.data()) + cinfo.next_scanline * stride;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<uint8_t> out(buf, buf + size);
  jpeg_destroy_compress(&cinfo);
  std::free(buf);
  return out;
}

inline std::vector<uint8_t> EncodeWebp(const std::vector<uint8_t>& px, int w, int h, bool alpha,
                                       bool lossless, float quality = 90) {
  uint8_t* out = nullptr;
  size_t n = 0;
  const int stride = w * (alpha ? 4 : 3);
  if (lossless) {
    n = alpha ? WebPEncodeLosslessRGBA(px.data(), w, h, stride, &out)
              : WebPEncodeLosslessRGB(px.data(), w, h, stride, &out);
  } else {
    n = alpha ? WebPEncodeRGBA(px.data(), w, h, stride, quality, &out)
              : WebPEncodeRGB(px.data(), w, h, stride, quality, &out);
  }
  std::vector<uint8_t> v(out, out + n);
  WebPFree(out);
  return v;
}

// A TIFF blob with IFD0 holding just Orientation (0x0112, SHORT), little- or big-endian.
inline std::vector<uint8_t> ExifWithOrientation(int orientation, bool little_endian,
                                                bool exif_prefix = true) {
  std::vector<uint8_t> t;
  if (exif_prefix) t = {'E', 'x', 'i', 'f', 0, 0};
  auto u16 = [&](unsigned v) {
    if (little_endian) {
      t.push_back(v & 0xFF), t.push_back(v >> 8);
    } else {
      t.push_back(v >> 8), t.push_back(v & 0xFF);
    }
  };
  auto u32 = [&](unsigned v) {
    if (little_endian) {
      for (int i = 0; i < 4; ++i) t.push_back((v >> (8 * i)) & 0xFF);
    } else {
      for (int i = 3; i >= 0; --i) t.push_back((v >> (8 * i)) & 0xFF);
    }
  };
  t.push_back(little_endian ? 'I' : 'M');
  t.push_back(little_endian ? 'I' : 'M');
  u16(42);
  u32(8);                                        // IFD0 right after the header
  u16(2);                                        // two entries: an unrelated tag first, then Orientation
  u16(0x010F), u16(2), u32(4), u32(0x00414243);  // Make, ASCII, 4 bytes inline
  u16(0x0112), u16(3), u32(1), u16(orientation), u16(0);
  u32(0);  // no next IFD
  return t;
}

inline std::string WriteBytes(const std::string& path, const std::vector<uint8_t>& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return path;
}

// floor((c*a + 255*(255-a)) / 255 + 0.5), the spec's formula, evaluated in double.
inline uint8_t CompositeRef(int c, int a) {
  return static_cast<uint8_t>(static_cast<int>((c * a + 255.0 * (255 - a)) / 255.0 + 0.5));
}

}  // namespace idefics::test
