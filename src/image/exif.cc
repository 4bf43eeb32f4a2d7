// EXIF Orientation parsing (our own TIFF/IFD0 reader) and the 8 orientation transposes.
// Mirrors PIL.Image.Exif + PIL.ImageOps.exif_transpose.
#include "image/exif.h"

#include <cstring>
#include <string>

namespace idefics {
namespace {

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
uint32_t Le32(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}

int JpegOrientation(const uint8_t* d, size_t n) {
  size_t pos = 2;  // after SOI
  while (pos + 4 <= n) {
    if (d[pos] != 0xFF) return 1;             // not at a marker: malformed, stop looking
    while (pos < n && d[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) return 1;
    const uint8_t marker = d[pos++];
    if (marker == 0xD9 || marker == 0xDA) return 1;  // EOI / SOS: no metadata after this point
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length field
    if (pos + 2 > n) return 1;
    const size_t len = (size_t{d[pos]} << 8) | d[pos + 1];
    if (len < 2 || pos + len > n) return 1;
    const uint8_t* seg = d + pos + 2;
    const size_t seg_len = len - 2;
    if (marker == 0xE1 && seg_len >= 6 && std::memcmp(seg, "Exif\0\0", 6) == 0) {
      return ExifOrientationFromTiff(seg, seg_len);  // the first Exif APP1 is the one Pillow reads
    }
    pos += len;
  }
  return 1;
}

int PngOrientation(const uint8_t* d, size_t n) {
  size_t pos = 8;
  while (pos + 12 <= n) {
    const size_t len = Be32(d + pos);
    if (len > n - pos - 12) return 1;
    const uint8_t* type = d + pos + 4;
    if (std::memcmp(type, "eXIf", 4) == 0) return ExifOrientationFromTiff(d + pos + 8, len);
    if (std::memcmp(type, "IEND", 4) == 0) return 1;
    pos += 12 + len;
  }
  return 1;
}

int WebpOrientation(const uint8_t* d, size_t n) {
  size_t pos = 12;  // "RIFF" size "WEBP"
  while (pos + 8 <= n) {
    const size_t len = Le32(d + pos + 4);
    if (len > n - pos - 8) return 1;
    if (std::memcmp(d + pos, "EXIF", 4) == 0) return ExifOrientationFromTiff(d + pos + 8, len);
    pos += 8 + len + (len & 1);  // chunks are padded to even sizes
  }
  return 1;
}

}  // namespace

int ExifOrientationFromTiff(const uint8_t* d, size_t n) {
  if (n >= 6 && std::memcmp(d, "Exif\0\0", 6) == 0) {
    d += 6;
    n -= 6;
  }
  if (n < 8) return 1;
  bool le;
  if (d[0] == 'I' && d[1] == 'I') {
    le = true;
  } else if (d[0] == 'M' && d[1] == 'M') {
    le = false;
  } else {
    return 1;
  }
  auto u16 = [&](size_t off) -> uint32_t {
    return le ? (uint32_t{d[off]} | (uint32_t{d[off + 1]} << 8)) : ((uint32_t{d[off]} << 8) | d[off + 1]);
  };
  auto u32 = [&](size_t off) -> uint32_t { return le ? Le32(d + off) : Be32(d + off); };
  if (u16(2) != 42) return 1;
  const size_t ifd = u32(4);
  if (ifd > n - 2 || ifd < 8) return 1;
  const size_t count = u16(ifd);
  for (size_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + 12 * i;
    if (e + 12 > n) return 1;
    if (u16(e) != 0x0112) continue;
    const uint32_t type = u16(e + 2);
    uint32_t v = 0;
    if (type == 3) {  // SHORT, stored in the first two bytes of the value field
      v = u16(e + 8);
    } else if (type == 4 || type == 9) {  // LONG / SLONG, tolerated
      v = u32(e + 8);
    } else {
      return 1;
    }
    return (v >= 1 && v <= 8) ? static_cast<int>(v) : 1;
  }
  return 1;
}

int FindExifOrientation(const uint8_t* d, size_t n) {
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return JpegOrientation(d, n);
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return PngOrientation(d, n);
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) {
    return WebpOrientation(d, n);
  }
  return 1;
}

RgbImage ApplyExifOrientation(const RgbImage& img, int orientation) {
  if (orientation < 2 || orientation > 8) return img;
  const int w = img.width, h = img.height;
  const bool swap = orientation >= 5;  // 5..8 exchange width and height
  RgbImage out;
  out.width = swap ? h : w;
  out.height = swap ? w : h;
  out.pixels.resize(img.pixels.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;  // source pixel shown at (x, y)
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          break;  // FLIP_LEFT_RIGHT
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;  // ROTATE_180
        case 4:
          sy = h - 1 - y;
          break;  // FLIP_TOP_BOTTOM
        case 5:
          sx = y;
          sy = x;
          break;  // TRANSPOSE
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;  // ROTATE_270 (90 clockwise)
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;  // TRANSVERSE
        case 8:
          sx = w - 1 - y;
          sy = x;
          break;  // ROTATE_90 (counter-clockwise)
      }
      const uint8_t* s = &img.pixels[(static_cast<size_t>(sy) * w + sx) * 3];
      uint8_t* d = &out.pixels[(static_cast<size_t>(y) * out.width + x) * 3];
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  return out;
}

}  // namespace idefics
