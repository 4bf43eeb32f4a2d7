// Elementwise activation loops, split over the pool in fixed contiguous ranges, each range by ops.h SIMD.
// Mirrors torch.nn.functional.gelu(approximate="tanh") and the SwiGLU product of Idefics2MLP / MistralMLP.
#include "kernels/activations.h"

#include "core/thread_pool.h"
#include "kernels/ops.h"

namespace idefics {
namespace {

template <typename Fn>
void ForRange(int64_t n, ThreadPool* pool, const Fn& fn) {
  if (pool && n >= (1 << 15)) {
    pool->ParallelFor(n, 1 << 13, fn);
  } else {
    fn(0, n);
  }
}

}  // namespace

void GeluTanhInPlace(float* x, int64_t n, ThreadPool* pool) {
  // ops.h kernel (x·σ(2u), the same value as torch's 0.5x(1 + tanh u) without its cancellation for x << 0).
  // Elementwise with masked tails: every element gets the same instructions whatever the split.
  ForRange(n, pool, [&](int64_t b, int64_t e) { GeluTanh(x + b, x + b, e - b); });
}

void SiluMulInPlace(float* gate, const float* up, int64_t n, ThreadPool* pool) {
  // ops.h kernel: silu rounded, then the product rounded, as the separate torch kernels do.
  ForRange(n, pool, [&](int64_t b, int64_t e) { SiluMul(gate + b, up + b, gate + b, e - b); });
}

}  // namespace idefics
