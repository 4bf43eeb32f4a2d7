// The analytic cost model of `idefics bench`: FLOPs of each pass and bytes of a decode step, from the config.
// Mirrors no reference class.
#include <algorithm>

#include "runtime/bench.h"

namespace idefics {

// Parameters of the decoder matrices of one layer.
double TextLayerParams(const TextConfig& t) {
  const double Ht = t.hidden_size, qd = t.num_attention_heads * t.head_dim,
               kvd = t.num_key_value_heads * t.head_dim;
  return Ht * qd * 2 + Ht * kvd * 2 + 3 * Ht * t.intermediate_size;
}

// Resident weight bytes of a config stored as `f` (matrices) with the rest in float32 / the file dtype.
double WeightBytesEstimate(const Idefics2Config& c, double bpw) {
  const VisionConfig& v = c.vision;
  const double Hv = v.hidden_size, Ht = c.text.hidden_size, It = c.text.intermediate_size;
  const double vision = v.num_hidden_layers * (4 * Hv * Hv + 2 * Hv * v.intermediate_size);
  const PerceiverConfig& p = c.perceiver;
  const double qd = p.resampler_n_heads * p.resampler_head_dim,
               kvd = p.num_key_value_heads * p.resampler_head_dim;
  const double conn = 2 * Hv * It + It * Ht + p.resampler_depth * (2 * Ht * qd + 2 * Ht * kvd + 12 * Ht * Ht);
  const double text = c.text.num_hidden_layers * TextLayerParams(c.text) + 2.0 * c.text.vocab_size * Ht;
  return (vision + conn + text) * bpw;
}

double VisionFlops(const Idefics2Config& c, int64_t nb_h, int64_t nb_w) {
  const VisionConfig& v = c.vision;
  const double S = static_cast<double>(nb_h * nb_w), H = v.hidden_size, I = v.intermediate_size;
  const double patch = 2 * S * (v.num_channels * v.patch_size * v.patch_size) * H;
  const double linear = 2 * S * (4 * H * H + 2 * H * I);
  const double attention = 2 * 2 * S * S * H;  // q·kᵀ and p·v over all heads
  return patch + v.num_hidden_layers * (linear + attention);
}

double ProjectionFlops(const Idefics2Config& c, int64_t n_patches) {
  const double S = static_cast<double>(n_patches), Hv = c.vision.hidden_size, Ht = c.text.hidden_size;
  const double It = c.text.intermediate_size;
  return 2 * S * (2 * Hv * It + It * Ht);
}

double PerceiverFlops(const Idefics2Config& c, int64_t n_patches) {
  const double S = static_cast<double>(n_patches), Ht = c.text.hidden_size;
  const PerceiverConfig& p = c.perceiver;
  const double nl = p.resampler_n_latents, T = S + nl;
  const double qd = p.resampler_n_heads * p.resampler_head_dim,
               kvd = p.num_key_value_heads * p.resampler_head_dim;
  const double layer =
      2 * (nl * Ht * qd + 2 * T * Ht * kvd + nl * qd * Ht) + 2 * 2 * nl * T * qd + 2 * 3 * nl * Ht * 4 * Ht;
  return p.resampler_depth * layer;
}

double ConnectorFlops(const Idefics2Config& c, int64_t n_patches) {
  return ProjectionFlops(c, n_patches) + PerceiverFlops(c, n_patches);
}

double PrefillFlops(const Idefics2Config& c, int64_t past, int64_t n) {
  const TextConfig& t = c.text;
  const double qd = t.num_attention_heads * t.head_dim;
  const double linear = 2 * static_cast<double>(n) * TextLayerParams(t);
  // Query i (0-based within the block) sees past + i + 1 keys (the sliding window is 4096: not reached here).
  double keys = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = past + i + 1;
    if (t.sliding_window && *t.sliding_window > 0) k = std::min<int64_t>(k, *t.sliding_window);
    keys += static_cast<double>(k);
  }
  const double attention = 2 * 2 * keys * qd;
  return t.num_hidden_layers * (linear + attention) + 2.0 * t.hidden_size * t.vocab_size;
}

double DecodeBytes(const Idefics2Config& c, double bpw, int64_t context) {
  const TextConfig& t = c.text;
  const double kv = 2.0 * t.num_hidden_layers * context * t.num_key_value_heads * t.head_dim * 4.0;
  return (t.num_hidden_layers * TextLayerParams(t) + static_cast<double>(t.vocab_size) * t.hidden_size) *
             bpw +
         kv;
}

}  // namespace idefics
