// Scalar twins of the SIMD matrix kernels (the fallback when no SIMD is available, and the test oracle
// for each SIMD kernel). Mirrors torch.nn.functional.linear (y = x·Wᵀ + b).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "kernels/matmul_kernels.h"
#include "tensor/dtype.h"

namespace idefics::kern::scalar {

namespace {
inline float Bias(const float* bias, int64_t n) {
  return bias ? bias[n] : 0.f;
}

// Row n of W as bf16 bits (bf16 weights verbatim, other formats dequantized then rounded to nearest even).
void RowAsBf16(const WeightMatrix& w, int64_t n, float* tmp, uint16_t* out) {
  if (w.format == WeightFormat::kBF16) {
    std::memcpy(out, w.row(n), w.cols * 2);
    return;
  }
  DequantizeRow(w, n, tmp);
  for (int64_t k = 0; k < w.cols; ++k) out[k] = F32ToBf16(tmp[k]);
}

// y[m, n] for m in [m0, m1) from weight row n as bf16 bits: per output the vdpbf16ps chain (odd product of a
// pair first, then the even one; both exact), bias added last.
void Bf16RowProducts(const uint16_t* xb, int64_t K, int64_t m0, int64_t m1, const uint16_t* row,
                     const float* bias, float* y, int64_t N, int64_t n) {
  const int64_t Kp = (K + 1) / 2 * 2;
  for (int64_t m = m0; m < m1; ++m) {
    const uint16_t* xm = xb + m * Kp;
    float acc = 0.f;
    for (int64_t k = 0; k < K; k += 2) {
      if (k + 1 < K) acc = std::fma(Bf16ToF32(xm[k + 1]), Bf16ToF32(row[k + 1]), acc);
      acc = std::fma(Bf16ToF32(xm[k]), Bf16ToF32(row[k]), acc);
    }
    y[m * N + n] = acc + Bias(bias, n);
  }
}
// One Q8_0 / Q4_0 block at p: its 32 signed values (q - 8 for Q4_0) to wq; returns its scale.
float UnpackBlock(WeightFormat f, const uint8_t* p, int8_t* wq) {
  uint16_t s16;
  std::memcpy(&s16, p, 2);
  if (f == WeightFormat::kQ8_0) {
    std::memcpy(wq, p + 2, 32);
  } else {
    for (int i = 0; i < 16; ++i) {
      wq[i] = static_cast<int8_t>((p[2 + i] & 0x0f) - 8);
      wq[i + 16] = static_cast<int8_t>((p[2 + i] >> 4) - 8);
    }
  }
  return F16ToF32(s16);
}
}  // namespace

void GemvFloat(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1) {
  const int64_t N = w.rows, K = w.cols;
  std::vector<float> row(K);
  for (int64_t n = n0; n < n1; ++n) {
    DequantizeRow(w, n, row.data());
    for (int64_t m = 0; m < M; ++m) {
      const float* xm = x + m * K;
      float acc = 0.f;
      for (int64_t k = 0; k < K; ++k) acc += xm[k] * row[k];
      y[m * N + n] = acc + Bias(bias, n);
    }
  }
}

void GemvBf16Dot(const uint16_t* xb, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                 int64_t n0, int64_t n1) {
  const int64_t N = w.rows, K = w.cols;
  std::vector<float> tmp(K);
  std::vector<uint16_t> row(K);
  for (int64_t n = n0; n < n1; ++n) {
    RowAsBf16(w, n, tmp.data(), row.data());
    for (int64_t m = 0; m < M; ++m) {
      const uint16_t* xm = xb + m * K;
      float acc = 0.f;
      // Products of two bf16 values are exact in float32.
      for (int64_t k = 0; k < K; ++k) acc += Bf16ToF32(xm[k]) * Bf16ToF32(row[k]);
      y[m * N + n] = acc + Bias(bias, n);
    }
  }
}

void GemvQuant(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1) {
  const int64_t N = w.rows, K = w.cols, nb = K / 32;
  IDEFICS_CHECK(K % 32 == 0);
  IDEFICS_CHECK(w.format == WeightFormat::kQ8_0 || w.format == WeightFormat::kQ4_0);
  std::vector<int8_t> xq(M * K);
  std::vector<float> xd(M * nb);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t b = 0; b < nb; ++b)
      xd[m * nb + b] = QuantizeActBlock(x + m * K + b * 32, &xq[m * K + b * 32]);
  int8_t wq[32];
  std::vector<float> acc(M);
  for (int64_t n = n0; n < n1; ++n) {
    std::fill(acc.begin(), acc.end(), 0.f);
    const uint8_t* p = w.row(n);
    for (int64_t b = 0; b < nb; ++b) {
      const float dw = UnpackBlock(w.format, p, wq);
      p += w.format == WeightFormat::kQ8_0 ? 34 : 18;
      for (int64_t m = 0; m < M; ++m) {
        const int8_t* q = &xq[m * K + b * 32];
        int32_t isum = 0;  // exact: |sum| <= 32 * 128 * 127
        for (int i = 0; i < 32; ++i) isum += static_cast<int32_t>(wq[i]) * q[i];
        acc[m] += (dw * xd[m * nb + b]) * static_cast<float>(isum);
      }
    }
    for (int64_t m = 0; m < M; ++m) y[m * N + n] = acc[m] + Bias(bias, n);
  }
}

void QuantizeActsU8(const float* x, int64_t m0, int64_t m1, int64_t K, uint8_t* xq, float* xs) {
  IDEFICS_CHECK(K % 32 == 0);
  const int64_t nb = K / 32;
  int8_t q[32];
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t b = 0; b < nb; ++b) {
      xs[m * nb + b] = QuantizeActBlock(x + m * K + b * 32, q);
      for (int i = 0; i < 32; ++i) xq[m * K + b * 32 + i] = static_cast<uint8_t>(q[i] + 128);
    }
  }
}

void GemmI8(const uint8_t* xq, const float* xs, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w,
            const float* bias, float* y, int64_t n0, int64_t n1) {
  IDEFICS_CHECK(K % 32 == 0 && (w.format == WeightFormat::kQ8_0 || w.format == WeightFormat::kQ4_0));
  const int64_t N = w.rows, nb = K / 32, bb = w.format == WeightFormat::kQ8_0 ? 34 : 18;
  std::vector<int8_t> wq(K);
  std::vector<float> dw(nb);
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t b = 0; b < nb; ++b) dw[b] = UnpackBlock(w.format, w.row(n) + b * bb, &wq[b * 32]);
    for (int64_t m = m0; m < m1; ++m) {
      float acc = 0.f;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t isum = 0;  // exact: |sum| <= 32 * 128 * 127
        for (int i = 0; i < 32; ++i)
          isum += (static_cast<int32_t>(xq[m * K + b * 32 + i]) - 128) * wq[b * 32 + i];
        acc = std::fma(static_cast<float>(isum), dw[b] * xs[m * nb + b], acc);
      }
      y[m * N + n] = acc + Bias(bias, n);
    }
  }
}

void GemmF32(const float* x, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w, const float* bias,
             float* y, int64_t n0, int64_t n1) {
  const int64_t N = w.rows;
  constexpr int64_t kRowsPerBlock = 16;  // dequantize a few weight rows once, reuse them for every x row
  std::vector<float> rows(kRowsPerBlock * K);
  for (int64_t nb = n0; nb < n1; nb += kRowsPerBlock) {
    const int64_t ne = std::min(n1, nb + kRowsPerBlock);
    for (int64_t n = nb; n < ne; ++n) DequantizeRow(w, n, &rows[(n - nb) * K]);
    for (int64_t m = m0; m < m1; ++m) {
      const float* xm = x + m * K;
      for (int64_t n = nb; n < ne; ++n) {
        const float* wr = &rows[(n - nb) * K];
        float acc = 0.f;
        for (int64_t k = 0; k < K; ++k) acc = std::fma(xm[k], wr[k], acc);
        y[m * N + n] = acc + Bias(bias, n);
      }
    }
  }
}

void GemmBf16(const uint16_t* xb, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w, const float* bias,
              float* y, int64_t n0, int64_t n1) {
  std::vector<float> tmp(K);
  std::vector<uint16_t> row(K + 1, 0);
  for (int64_t n = n0; n < n1; ++n) {
    RowAsBf16(w, n, tmp.data(), row.data());
    Bf16RowProducts(xb, K, m0, m1, row.data(), bias, y, w.rows, n);
  }
}

void PackBf16Panels(const WeightMatrix& w, int64_t p0, int64_t p1, uint32_t* out) {
  const int64_t N = w.rows, K = w.cols, kpairs = (K + 1) / 2;
  std::vector<float> tmp(K);
  std::vector<uint16_t> row(K + 1);
  for (int64_t p = p0; p < p1; ++p) {
    uint32_t* panel = out + p * kpairs * 64;
    for (int64_t j = 0; j < 64; ++j) {
      const int64_t n = 64 * p + j;
      std::fill(row.begin(), row.end(), uint16_t{0});
      if (n < N) RowAsBf16(w, n, tmp.data(), row.data());
      for (int64_t kp = 0; kp < kpairs; ++kp)
        panel[kp * 64 + j] = static_cast<uint32_t>(row[2 * kp]) | static_cast<uint32_t>(row[2 * kp + 1]) << 16;
    }
  }
}

void GemmBf16Panels(const uint16_t* xb, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w,
                    const float* bias, float* y, int64_t n0, int64_t n1) {
  const int64_t N = w.rows, Kp = (K + 1) / 2 * 2, kpairs = Kp / 2;
  const uint32_t* panels = static_cast<const uint32_t*>(w.panels);
  std::vector<uint16_t> row(Kp);
  for (int64_t n = n0; n < n1; ++n) {
    const uint32_t* panel = panels + (n / 64) * kpairs * 64 + n % 64;
    for (int64_t kp = 0; kp < kpairs; ++kp) {
      row[2 * kp] = static_cast<uint16_t>(panel[kp * 64] & 0xffff);
      row[2 * kp + 1] = static_cast<uint16_t>(panel[kp * 64] >> 16);
    }
    Bf16RowProducts(xb, K, m0, m1, row.data(), bias, y, N, n);
  }
}

}  // namespace idefics::kern::scalar
