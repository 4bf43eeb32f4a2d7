// Elementwise activation loops (scalar), split over the pool in fixed contiguous ranges.
// Mirrors torch.nn.functional.gelu(approximate="tanh") and the SwiGLU product of Idefics2MLP / MistralMLP.
#include "kernels/activations.h"

#include "core/thread_pool.h"

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
  ForRange(n, pool, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] = GeluTanh(x[i]);
  });
}

void SiluMulInPlace(float* gate, const float* up, int64_t n, ThreadPool* pool) {
  ForRange(n, pool, [&](int64_t b, int64_t e) {
    // Two roundings (silu, then the product), as the three separate torch kernels do.
    for (int64_t i = b; i < e; ++i) gate[i] = Silu(gate[i]) * up[i];
  });
}

}  // namespace idefics
