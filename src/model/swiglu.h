// The SwiGLU feed-forward block without biases, down(silu(gate(x)) * up(x)), shared by the connector's
// modality projection, the perceiver layers and the text layers. Mirrors Idefics2MLP / MistralMLP (silu).
#pragma once

#include <cstdint>

#include "kernels/matmul.h"

namespace idefics {

class ThreadPool;

// x: [m, gate.cols]; out: [m, down.rows] (may alias x: x is read only before out is written). g and u are
// scratch of at least m * gate.rows floats each; on return g holds silu(gate(x)) * up(x). Row r of out
// depends only on row r of x, so callers may split rows into blocks without changing the numbers. The
// operation order (gate, up, silu*up, down) is the reference's.
void SwiGluMlp(const float* x, int64_t m, const WeightMatrix& gate, const WeightMatrix& up,
               const WeightMatrix& down, float* g, float* u, float* out, ThreadPool* pool,
               const MatMulOptions& mm);

}  // namespace idefics
