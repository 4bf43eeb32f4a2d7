// Scalar LayerNorm / RMSNorm. Statistics are accumulated in double (torch reduces float32 with a cascade sum,
// which is close to exact); the normalization itself is float32 like torch.
// Mirrors torch.nn.functional.layer_norm and Idefics2RMSNorm / MistralRMSNorm.
#include "kernels/norm.h"

#include <cmath>

#include "core/thread_pool.h"

namespace idefics {
namespace {

template <typename Fn>
void ForRows(int64_t rows, int64_t dim, ThreadPool* pool, const Fn& fn) {
  if (pool && rows > 1 && rows * dim >= 4096) {
    pool->ParallelFor(rows, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) fn(r);
    });
  } else {
    for (int64_t r = 0; r < rows; ++r) fn(r);
  }
}

}  // namespace

void LayerNorm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps, float* y,
               ThreadPool* pool) {
  ForRows(rows, dim, pool, [&](int64_t r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double sum = 0;
    for (int64_t i = 0; i < dim; ++i) sum += xr[i];
    const double mean = sum / static_cast<double>(dim);
    double sq = 0;
    for (int64_t i = 0; i < dim; ++i) {
      const double d = xr[i] - mean;
      sq += d * d;
    }
    const double var = sq / static_cast<double>(dim);  // biased, as torch.nn.LayerNorm
    const float rstd = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    const float meanf = static_cast<float>(mean);
    // torch: (x * rstd + (-mean * rstd)) * w + b, all in float32.
    const float shift = -meanf * rstd;
    for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] * rstd + shift) * w[i] + b[i];
  });
}

void RmsNorm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* y, ThreadPool* pool) {
  ForRows(rows, dim, pool, [&](int64_t r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double sq = 0;
    for (int64_t i = 0; i < dim; ++i) sq += static_cast<double>(xr[i]) * xr[i];
    // variance is a float32 tensor in torch; rsqrt(variance + eps) is evaluated in float32 too.
    const float var = static_cast<float>(sq / static_cast<double>(dim));
    const float r_inv = 1.0f / std::sqrt(var + eps);
    // The normalized value is cast to the compute dtype (a no-op in float32) *before* the weight multiply.
    for (int64_t i = 0; i < dim; ++i) yr[i] = w[i] * (xr[i] * r_inv);
  });
}

}  // namespace idefics
