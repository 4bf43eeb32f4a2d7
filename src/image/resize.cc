// Pillow's resampling (Resample.c: precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleHorizontal/
// Vertical_8bpc, and ImagingScaleAffine for NEAREST) on packed 8-bit RGB. Every rounding step is Pillow's.
#include "image/resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"

namespace idefics {
namespace {

constexpr int kPrecisionBits = 22;  // Pillow: 32 - 8 - 2

struct Filter {
  double (*fn)(double);
  double support;
};

double BoxFilter(double x) {
  return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
}

double BilinearFilter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double HammingFilter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
}

double BicubicFilter(double x) {
  constexpr double a = -0.5;  // Pillow's choice of the cubic's free parameter
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double Sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double LanczosFilter(double x) {
  return (-3.0 <= x && x < 3.0) ? Sinc(x) * Sinc(x / 3) : 0.0;
}

Filter GetFilter(ResampleFilter f) {
  switch (f) {
    case ResampleFilter::kBox:
      return {BoxFilter, 0.5};
    case ResampleFilter::kBilinear:
      return {BilinearFilter, 1.0};
    case ResampleFilter::kHamming:
      return {HammingFilter, 1.0};
    case ResampleFilter::kBicubic:
      return {BicubicFilter, 2.0};
    case ResampleFilter::kLanczos:
      return {LanczosFilter, 3.0};
    case ResampleFilter::kNearest:
      break;
  }
  IDEFICS_CHECK_MSG(false, "no convolution filter for NEAREST");
  return {BilinearFilter, 1.0};
}

// Fixed-point weights for one axis: output index o reads `count[o]` inputs starting at `first[o]`, with the
// 22-bit weights k[o * ksize + j].
struct AxisCoeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

AxisCoeffs PrecomputeCoeffs(int in_size, int out_size, const Filter& filter) {
  // Pillow computes in double with in0 = 0, in1 = in_size (no box).
  double scale = static_cast<double>(in_size) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;  // antialiasing: widen the kernel when shrinking
  const double support = filter.support * filterscale;
  AxisCoeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    const double ss = 1.0 / filterscale;  // Pillow multiplies by the reciprocal (not a division)
    int xmin = static_cast<int>(center - support + 0.5);  // (int) truncates toward zero, as in C
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double v = filter.fn((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) w[x] /= ww;
      // normalize_coeffs_8bpc: round half away from zero to 22-bit fixed point.
      const double f = w[x] * (1 << kPrecisionBits);
      c.k[static_cast<size_t>(o) * c.ksize + x] =
          w[x] < 0 ? static_cast<int32_t>(-0.5 + f) : static_cast<int32_t>(0.5 + f);
    }
    c.first[o] = xmin;
    c.count[o] = xmax;
  }
  return c;
}

// Pillow's clip8: arithmetic shift (floor) of the rounded accumulator, clamped to 0..255.
inline uint8_t Clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass over source rows [row0, row0 + rows): [rows, out_w, 3].
void ResampleHorizontal(const RgbImage& in, int row0, int rows, int out_w, const AxisCoeffs& c,
                        std::vector<uint8_t>* out) {
  out->resize(static_cast<size_t>(rows) * out_w * 3);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = &in.pixels[static_cast<size_t>(row0 + y) * in.width * 3];
    uint8_t* dst = &(*out)[static_cast<size_t>(y) * out_w * 3];
    for (int o = 0; o < out_w; ++o) {
      const int32_t* k = &c.k[static_cast<size_t>(o) * c.ksize];
      const uint8_t* s = src + static_cast<size_t>(c.first[o]) * 3;
      int32_t a0 = 1 << (kPrecisionBits - 1), a1 = a0, a2 = a0;  // +0.5 for round-half-up
      for (int j = 0; j < c.count[o]; ++j) {
        a0 += s[3 * j + 0] * k[j];
        a1 += s[3 * j + 1] * k[j];
        a2 += s[3 * j + 2] * k[j];
      }
      dst[3 * o + 0] = Clip8(a0);
      dst[3 * o + 1] = Clip8(a1);
      dst[3 * o + 2] = Clip8(a2);
    }
  }
}

// Vertical pass: in is [*, w, 3] (rows already shifted by `row_shift`), out [out_h, w, 3].
void ResampleVertical(const uint8_t* in, int w, int row_shift, int out_h, const AxisCoeffs& c, uint8_t* out) {
  const size_t stride = static_cast<size_t>(w) * 3;
  std::vector<int32_t> acc(stride);  // [w * 3]; integer sums, so the loop order does not matter
  for (int o = 0; o < out_h; ++o) {
    const int32_t* k = &c.k[static_cast<size_t>(o) * c.ksize];
    const uint8_t* base = in + static_cast<size_t>(c.first[o] - row_shift) * stride;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int j = 0; j < c.count[o]; ++j) {
      const uint8_t* row = base + j * stride;
      const int32_t kj = k[j];
      for (size_t x = 0; x < stride; ++x) acc[x] += row[x] * kj;
    }
    uint8_t* dst = out + static_cast<size_t>(o) * stride;
    for (size_t x = 0; x < stride; ++x) dst[x] = Clip8(acc[x]);
  }
}

// NEAREST: Pillow routes it through an affine transform (ImagingScaleAffine) that walks source coordinates
// by repeated double additions from the pixel centre.
RgbImage ResizeNearest(const RgbImage& img, int out_w, int out_h) {
  const double ax = static_cast<double>(img.width) / out_w, ay = static_cast<double>(img.height) / out_h;
  auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int>(v); };
  std::vector<int> xin(out_w);
  double xo = ax * 0.5;
  for (int x = 0; x < out_w; ++x, xo += ax) xin[x] = coord(xo);
  RgbImage out;
  out.width = out_w;
  out.height = out_h;
  out.pixels.assign(static_cast<size_t>(out_w) * out_h * 3, 0);  // out-of-range samples stay 0 (fill)
  double yo = ay * 0.5;
  for (int y = 0; y < out_h; ++y, yo += ay) {
    const int yi = coord(yo);
    if (yi < 0 || yi >= img.height) continue;
    for (int x = 0; x < out_w; ++x) {
      if (xin[x] < 0 || xin[x] >= img.width) continue;
      const uint8_t* s = &img.pixels[(static_cast<size_t>(yi) * img.width + xin[x]) * 3];
      uint8_t* d = &out.pixels[(static_cast<size_t>(y) * out_w + x) * 3];
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  return out;
}

}  // namespace

bool ResampleFilterFromPil(int value, ResampleFilter* out) {
  if (value < 0 || value > 5) return false;
  *out = static_cast<ResampleFilter>(value);
  return true;
}

RgbImage ResizePillow(const RgbImage& img, int out_w, int out_h, ResampleFilter filter) {
  IDEFICS_CHECK(img.width > 0 && img.height > 0 && out_w > 0 && out_h > 0);
  IDEFICS_CHECK(img.pixels.size() == static_cast<size_t>(img.width) * img.height * 3);
  if (out_w == img.width && out_h == img.height) return img;  // Image.resize returns a copy
  if (filter == ResampleFilter::kNearest) return ResizeNearest(img, out_w, out_h);

  const Filter f = GetFilter(filter);
  const bool need_h = out_w != img.width, need_v = out_h != img.height;
  const AxisCoeffs ch = PrecomputeCoeffs(img.width, out_w, f);
  const AxisCoeffs cv = PrecomputeCoeffs(img.height, out_h, f);

  RgbImage out;
  out.width = out_w;
  out.height = out_h;
  out.pixels.resize(static_cast<size_t>(out_w) * out_h * 3);  // [out_h, out_w, 3]
  if (need_h) {
    // Only the source rows the vertical pass reads (Pillow does the same; it does not change the result).
    const int row_first = need_v ? cv.first[0] : 0;
    const int row_last = need_v ? cv.first[out_h - 1] + cv.count[out_h - 1] : img.height;
    std::vector<uint8_t> tmp;  // [row_last - row_first, out_w, 3]: the uint8 intermediate
    ResampleHorizontal(img, row_first, row_last - row_first, out_w, ch, &tmp);
    if (need_v) {
      ResampleVertical(tmp.data(), out_w, row_first, out_h, cv, out.pixels.data());
    } else {
      out.pixels = std::move(tmp);
    }
  } else {
    ResampleVertical(img.pixels.data(), img.width, 0, out_h, cv, out.pixels.data());
  }
  return out;
}

}  // namespace idefics
