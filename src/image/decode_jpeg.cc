// JPEG decoding with libjpeg-turbo as Pillow's JpegImagePlugin does it (default ISLOW DCT, fancy upsampling):
// baseline, progressive, grayscale (mode L), CMYK/YCCK (mode CMYK, Adobe-inverted like Pillow's "CMYK;I").
#include <csetjmp>
#include <cstddef>
#include <cstdio>

// jpeglib.h needs size_t and FILE declared first.
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "image/codecs.h"

namespace idefics::image_internal {
namespace {

struct JpegContext {
  jpeg_error_mgr pub;  // first member: libjpeg hands us a pointer to it
  std::jmp_buf jmp;
  char message[JMSG_LENGTH_MAX + 64] = {0};
  int64_t max_pixels = 0;
  bool too_large = false;
  JDIMENSION width = 0, height = 0;
};

[[noreturn]] void JpegErrorExit(j_common_ptr cinfo) {
  auto* ctx = reinterpret_cast<JpegContext*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, ctx->message);
  std::longjmp(ctx->jmp, 1);
}

// Warnings (level -1) are ignored as Pillow ignores them ("extraneous bytes before marker", ...), except
// running out of data: libjpeg would pad with gray, Pillow raises "image file is truncated". (That includes a
// missing EOI marker: libjpeg's entropy decoder reads ahead until a marker, and Pillow's suspending source
// then has no more data.)
void JpegEmitMessage(j_common_ptr cinfo, int msg_level) {
  auto* ctx = reinterpret_cast<JpegContext*>(cinfo->err);
  if (msg_level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    std::snprintf(ctx->message, sizeof ctx->message, "file is truncated (premature end of JPEG data)");
    std::longjmp(ctx->jmp, 1);
  }
}

void JpegOutputMessage(j_common_ptr) {}  // never print to stderr

// All libjpeg calls live here; only trivially destructible locals (libjpeg errors longjmp into this frame).
bool DecodeJpegInner(JpegContext* ctx, const uint8_t* data, size_t size, SourceImage* out) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&ctx->pub);
  ctx->pub.error_exit = JpegErrorExit;
  ctx->pub.emit_message = JpegEmitMessage;
  ctx->pub.output_message = JpegOutputMessage;
  if (setjmp(ctx->jmp)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);

  // Refuse oversized images from the header, before jpeg_start_decompress allocates anything big.
  ctx->width = cinfo.image_width;
  ctx->height = cinfo.image_height;
  if (static_cast<int64_t>(cinfo.image_width) * cinfo.image_height > ctx->max_pixels) {
    ctx->too_large = true;
    jpeg_destroy_decompress(&cinfo);
    return false;
  }

  // Pillow picks its mode from the component count: 1 -> L, 3 -> RGB, 4 -> CMYK (raw mode "CMYK;I").
  PixelMode mode = PixelMode::kRGB;
  switch (cinfo.num_components) {
    case 1:
      cinfo.out_color_space = JCS_GRAYSCALE;
      mode = PixelMode::kL;
      break;
    case 3:
      cinfo.out_color_space = JCS_RGB;
      break;
    case 4:
      cinfo.out_color_space = JCS_CMYK;  // libjpeg turns YCCK into CMYK
      mode = PixelMode::kCMYK;
      break;
    default:
      std::snprintf(ctx->message, sizeof ctx->message, "unsupported JPEG with %d colour components",
                    cinfo.num_components);
      jpeg_destroy_decompress(&cinfo);
      return false;
  }
  jpeg_start_decompress(&cinfo);
  const int ch = Channels(mode);
  if (cinfo.output_components != ch) {
    std::snprintf(ctx->message, sizeof ctx->message, "libjpeg produced %d components, expected %d",
                  cinfo.output_components, ch);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  const size_t stride = static_cast<size_t>(cinfo.output_width) * ch;
  out->width = static_cast<int>(cinfo.output_width);
  out->height = static_cast<int>(cinfo.output_height);
  out->mode = mode;
  out->pixels.resize(stride * cinfo.output_height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->pixels.data() + stride * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);

  if (mode == PixelMode::kCMYK) {
    // Pillow always reads 4-component JPEGs as "CMYK;I" (Adobe convention: stored inverted) and inverts.
    for (uint8_t& v : out->pixels) v = static_cast<uint8_t>(255 - v);
  }
  return true;
}

}  // namespace

StatusOr<SourceImage> DecodeJpeg(const uint8_t* data, size_t size, const std::string& name,
                                 int64_t max_pixels) {
  JpegContext ctx;
  ctx.max_pixels = max_pixels;
  SourceImage img;
  if (!DecodeJpegInner(&ctx, data, size, &img)) {
    if (ctx.too_large) {
      return CheckPixelLimit(name, "JPEG", ctx.width, ctx.height, max_pixels);
    }
    return InvalidArgument(name + ": corrupt or truncated JPEG: " + ctx.message);
  }
  return img;
}

}  // namespace idefics::image_internal
