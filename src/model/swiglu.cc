// The SwiGLU feed-forward block without biases, down(silu(gate(x)) * up(x)).
// Mirrors Idefics2MLP / MistralMLP with hidden_act silu.
#include "model/swiglu.h"

#include "core/check.h"
#include "kernels/activations.h"

namespace idefics {

void SwiGluMlp(const float* x, int64_t m, const WeightMatrix& gate, const WeightMatrix& up,
               const WeightMatrix& down, float* g, float* u, float* out, ThreadPool* pool,
               const MatMulOptions& mm) {
  IDEFICS_CHECK(gate.rows == up.rows && gate.cols == up.cols && down.cols == gate.rows);
  const int64_t inter = gate.rows;
  MatMulMany(x, m, {&gate, &up}, {g, u}, pool, mm);  // [m, inter] each; one dispatch in decode
  SiluMulInPlace(g, u, m * inter, pool);
  MatMul(g, m, down, nullptr, out, pool, mm);  // [m, down.rows]
}

}  // namespace idefics
