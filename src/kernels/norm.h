// Row-wise normalizations of the residual stream: LayerNorm (vision tower) and RMSNorm (perceiver, Mistral).
// Mirror torch.nn.LayerNorm and transformers' Idefics2RMSNorm / MistralRMSNorm (float32 compute).
#pragma once

#include <cstdint>

namespace idefics {

class ThreadPool;

// y[r] = (x[r] - mean) / sqrt(var + eps) * w + b over rows of length dim (biased variance).
// x and y may alias. pool may be null.
void LayerNorm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps, float* y,
               ThreadPool* pool);

// y[r] = w * to_compute_dtype(x[r] * rsqrt(mean(x[r]^2) + eps)). x and y may alias. pool may be null.
void RmsNorm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* y, ThreadPool* pool);

}  // namespace idefics
