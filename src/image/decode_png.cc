// PNG decoding with libpng into Pillow's modes (PIL.PngImagePlugin): every colour type and bit depth,
// palette + tRNS, interlacing. libpng errors longjmp back here and become a Status; warnings are silenced.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "image/codecs.h"

namespace idefics::image_internal {
namespace {

struct PngContext {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  std::jmp_buf jmp;
  char message[256] = {0};
};

[[noreturn]] void PngErrorFn(png_structp png, png_const_charp msg) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(ctx->message, sizeof ctx->message, "%s", msg ? msg : "unknown libpng error");
  std::longjmp(ctx->jmp, 1);
}

// libpng warns about harmless things (bad sRGB profiles, extra IDAT data); Pillow ignores them too.
void PngWarningFn(png_structp, png_const_charp) {}

void PngReadFn(png_structp png, png_bytep out, size_t n) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  if (n > ctx->size - ctx->pos) png_error(png, "file is truncated (unexpected end of data)");
  std::memcpy(out, ctx->data + ctx->pos, n);
  ctx->pos += n;
}

uint32_t ReadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// All libpng calls live here. Only trivially destructible locals: a longjmp from libpng lands in this frame.
// Pixels go to *out (owned by the caller). Returns false with ctx->message set on error.
bool DecodePngInner(PngContext* ctx, SourceImage* out, std::vector<png_bytep>* rows) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, PngErrorFn, PngWarningFn);
  if (!png) {
    std::snprintf(ctx->message, sizeof ctx->message, "libpng could not be initialised");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    std::snprintf(ctx->message, sizeof ctx->message, "libpng could not be initialised");
    return false;
  }
  if (setjmp(ctx->jmp)) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, ctx, PngReadFn);
  // The pixel limit was checked before; lift libpng's own 1,000,000-per-side default so a long thin image
  // within the limit is not refused with a confusing message.
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_read_info(png, info);

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, nullptr, nullptr);
  const bool has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;

  PixelMode mode = PixelMode::kRGB;
  switch (color_type) {
    case PNG_COLOR_TYPE_PALETTE:
      // Pillow: P, and P -> RGBA takes alphas from tRNS (missing entries opaque); libpng does the same.
      png_set_palette_to_rgb(png);
      if (has_trns) png_set_tRNS_to_alpha(png);
      mode = has_trns ? PixelMode::kRGBA : PixelMode::kRGB;
      break;
    case PNG_COLOR_TYPE_GRAY:
      // 1/2/4-bit gray are scaled to 0..255 (Pillow's "1", "L;2", "L;4" unpackers do the same);
      // 16-bit gray stays 16-bit (Pillow 9.4 opens it as mode "I").
      if (bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
      mode = bit_depth == 16 ? PixelMode::kI16 : PixelMode::kL;
      if (has_trns) {
        png_color_16p trans = nullptr;
        png_get_tRNS(png, info, nullptr, nullptr, &trans);
        if (trans) {
          out->has_transparent_gray = true;
          out->transparent_gray = trans->gray;
        }
      }
      break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      mode = PixelMode::kLA;
      break;
    case PNG_COLOR_TYPE_RGB:
      mode = PixelMode::kRGB;  // an RGB tRNS colour is ignored by convert_to_rgb (mode RGB is kept as is)
      break;
    case PNG_COLOR_TYPE_RGB_ALPHA:
      mode = PixelMode::kRGBA;
      break;
    default:
      png_error(png, "unknown colour type");
  }
  // 16 -> 8 bits by taking the high byte: Pillow's "RGB;16B", "RGBA;16B", "LA;16B" unpackers do exactly
  // that (png_set_strip_16 truncates; png_set_scale_16 would round and differ).
  if (bit_depth == 16 && mode != PixelMode::kI16) png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  const int channels = png_get_channels(png, info);
  const int out_depth = png_get_bit_depth(png, info);
  const int expect_depth = mode == PixelMode::kI16 ? 16 : 8;
  if (channels != Channels(mode) || out_depth != expect_depth) {
    png_error(png, "unexpected pixel layout after libpng transformations");
  }
  const size_t rowbytes = png_get_rowbytes(png, info);
  const size_t w = width, h = height;
  if (rowbytes != w * static_cast<size_t>(channels) * (expect_depth / 8))
    png_error(png, "unexpected row size");

  out->width = static_cast<int>(width);
  out->height = static_cast<int>(height);
  out->mode = mode;
  out->pixels.resize(rowbytes * h);
  rows->resize(h);
  for (size_t y = 0; y < h; ++y) (*rows)[y] = out->pixels.data() + y * rowbytes;
  png_read_image(png, rows->data());
  // The trailing chunks (after IDAT) are not read: Pillow tolerates a missing or damaged tail as well.
  png_destroy_read_struct(&png, &info, nullptr);

  if (mode == PixelMode::kI16) {  // big-endian 16-bit samples
    out->pixels16.resize(w * h);
    for (size_t i = 0; i < w * h; ++i) {
      out->pixels16[i] = static_cast<uint16_t>((out->pixels[2 * i] << 8) | out->pixels[2 * i + 1]);
    }
    out->pixels.clear();
    out->pixels.shrink_to_fit();
  }
  return true;
}

}  // namespace

StatusOr<SourceImage> DecodePng(const uint8_t* data, size_t size, const std::string& name,
                                int64_t max_pixels) {
  // Read the size from IHDR ourselves so an oversized image is refused before libpng reads anything else.
  // Layout: 8-byte signature, chunk length (4), "IHDR", width (4), height (4), ...
  if (size < 33)
    return InvalidArgument(name + ": truncated PNG (" + std::to_string(size) + " bytes, no IHDR)");
  if (ReadBe32(data + 8) != 13 || std::memcmp(data + 12, "IHDR", 4) != 0) {
    return InvalidArgument(name + ": corrupt PNG: the first chunk is not a valid IHDR");
  }
  const uint32_t width = ReadBe32(data + 16), height = ReadBe32(data + 20);
  if (width == 0 || height == 0 || width > 0x7fffffffu || height > 0x7fffffffu) {
    return InvalidArgument(name + ": corrupt PNG: invalid size " + std::to_string(width) + "x" +
                           std::to_string(height) + " in IHDR");
  }
  RETURN_IF_ERROR(CheckPixelLimit(name, "PNG", width, height, max_pixels));

  PngContext ctx;
  ctx.data = data;
  ctx.size = size;
  SourceImage img;
  std::vector<png_bytep> rows;
  if (!DecodePngInner(&ctx, &img, &rows)) {
    return InvalidArgument(name + ": corrupt or truncated PNG: " + ctx.message);
  }
  return img;
}

}  // namespace idefics::image_internal
