// Elementwise activations of the MLPs: tanh-approximate GELU (vision) and SiLU / SwiGLU (connector, Mistral).
// Mirror torch's gelu(approximate="tanh") and silu CPU kernels (same operation order, float32).
#pragma once

#include <cmath>
#include <cstdint>

namespace idefics {

class ThreadPool;

// 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), evaluated in torch's order.
inline float GeluTanh(float x) {
  constexpr float kBeta = static_cast<float>(M_SQRT2 * M_2_SQRTPI * 0.5);
  constexpr float kKappa = 0.044715f;
  const float cube = x * x * x;
  const float inner = kBeta * (x + kKappa * cube);
  return 0.5f * x * (1.0f + std::tanh(inner));
}

// x * sigmoid(x), as torch computes it: x / (1 + exp(-x)).
inline float Silu(float x) { return x / (1.0f + std::exp(-x)); }

// In place over n values. pool may be null.
void GeluTanhInPlace(float* x, int64_t n, ThreadPool* pool);
// gate[i] = silu(gate[i]) * up[i] (the SwiGLU product before down_proj). pool may be null.
void SiluMulInPlace(float* gate, const float* up, int64_t n, ThreadPool* pool);

}  // namespace idefics
