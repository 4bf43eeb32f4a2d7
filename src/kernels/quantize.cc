// Q8_0 / Q4_0 row quantizers and the int8 activation quantizer shared by the scalar and SIMD GEMV paths.
// Mirrors no transformers class (the block formats are the GGML-style 32-element blocks described in
// matmul.h).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"
#include "tensor/dtype.h"

namespace idefics {

namespace {
constexpr float kMaxF16 = 65504.f;

// Stores the f16 scale and returns the value actually stored (what dequantization will use).
// Saturating float -> int8 (NaN -> 0, so bad inputs never reach an undefined conversion).
int8_t ClampToI8(float v, float lo, float hi) {
  if (!(v == v)) return 0;
  return static_cast<int8_t>(std::clamp(v, lo, hi));
}

float StoreScale(float d, uint8_t* p) {
  d = std::clamp(d, -kMaxF16, kMaxF16);
  const uint16_t h = F32ToF16(d);
  std::memcpy(p, &h, 2);
  return F16ToF32(h);
}
}  // namespace

void QuantizeRowQ8_0(const float* x, int64_t k, void* dst) {
  IDEFICS_CHECK(k % 32 == 0);
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < k / 32; ++b, x += 32, p += 34) {
    float amax = 0.f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    // Quantize with the f16-rounded scale so the stored integers are nearest for the scale actually used.
    const float d = StoreScale(amax / 127.f, p);
    const float id = d != 0.f ? 1.f / d : 0.f;
    auto* q = reinterpret_cast<int8_t*>(p + 2);
    for (int i = 0; i < 32; ++i) {
      q[i] = ClampToI8(std::nearbyint(x[i] * id), -127.f, 127.f);
    }
  }
}

void QuantizeRowQ4_0(const float* x, int64_t k, void* dst) {
  IDEFICS_CHECK(k % 32 == 0);
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < k / 32; ++b, x += 32, p += 18) {
    float amax = 0.f, m = 0.f;  // m: the element of largest magnitude, sign kept
    for (int i = 0; i < 32; ++i) {
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        m = x[i];
      }
    }
    // The extreme element maps exactly to level 0 (value -8·d); the other sign reaches at most +7·d.
    const float d = StoreScale(m / -8.f, p);
    const float id = d != 0.f ? 1.f / d : 0.f;
    uint8_t* qs = p + 2;
    for (int i = 0; i < 16; ++i) {
      const int lo = ClampToI8(std::nearbyint(x[i] * id) + 8.f, 0.f, 15.f);
      const int hi = ClampToI8(std::nearbyint(x[i + 16] * id) + 8.f, 0.f, 15.f);
      qs[i] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

namespace kern {

float QuantizeActBlock(const float* x, int8_t* q) {
  float amax = 0.f;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.f;
  const float id = d != 0.f && std::isfinite(amax) ? 127.f / amax : 0.f;
  for (int i = 0; i < 32; ++i) {
    // |x * id| <= 127 up to rounding; the clamp guards the last ulp.
    q[i] = ClampToI8(std::nearbyint(x[i] * id), -127.f, 127.f);
  }
  return d;
}

}  // namespace kern
}  // namespace idefics
