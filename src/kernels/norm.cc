// Row-wise LayerNorm / RMSNorm over a matrix, one row per task, each row by the SIMD kernels of ops.h (scalar
// twins there); rows are independent, so the result does not depend on the thread count.
// Mirrors torch.nn.functional.layer_norm and Idefics2RMSNorm / MistralRMSNorm.
#include "kernels/norm.h"

#include <cmath>

#include "core/thread_pool.h"
#include "kernels/ops.h"

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
  // ops.h row kernel: float32 statistics in 16 fixed lanes (torch's cascade sum is also float32; both are
  // within ~1e-6 relative of the exact mean/variance), (x - mean) * r * w + b.
  ForRows(rows, dim, pool, [&](int64_t r) { idefics::LayerNorm(x + r * dim, w, b, dim, eps, y + r * dim); });
}

void RmsNorm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* y,
             ThreadPool* pool) {
  // ops.h row kernel: w * (x * r) with r = 1 / sqrt(mean(x²) + eps), the normalized value rounded before the
  // weight multiply as MistralRMSNorm does.
  ForRows(rows, dim, pool, [&](int64_t r) { idefics::RmsNorm(x + r * dim, w, dim, eps, y + r * dim); });
}

}  // namespace idefics
