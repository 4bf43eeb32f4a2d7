// The connector: SwiGLU modality projection of the vision features, then the perceiver resampler that
// compresses them to n_latents rows. Mirrors Idefics2Connector / Idefics2PerceiverResampler.
#pragma once

#include <cstdint>

#include "io/model_config.h"
#include "model/idefics2_model.h"
#include "model/scratch.h"
#include "model/weights.h"

namespace idefics {

class Connector {
 public:
  // Frees the per-image working buffers (~110 MB at 4900 patches) between requests.
  void ReleaseScratch() {
    for (ScratchBuffer* b :
         {&gate_, &up_, &ctx_, &xn_, &x_, &q_, &k_, &v_, &a_, &o_, &mlp_g_, &mlp_u_, &attn_scratch_})
      b->Release();
  }

  Connector(const Idefics2Config& config, const ConnectorWeights& weights, ThreadPool* pool,
            const MatMulOptions& mm)
      : c_(config), w_(weights), pool_(pool), mm_(mm) {}

  // vision: [nb_h*nb_w, Hv] valid patches of one image (no mask needed). Writes out [n_latents, Ht].
  // Dumps connector_modality_projection ([nb_h, nb_w, Ht]) and connector_output ([n_latents, Ht]).
  void Run(const float* vision, int64_t nb_h, int64_t nb_w, float* out, const DumpFn& dump);

 private:
  const Idefics2Config& c_;
  const ConnectorWeights& w_;
  ThreadPool* pool_;
  MatMulOptions mm_;  // options of the Linear layers
  ScratchBuffer gate_, up_, ctx_, xn_, x_, q_, k_, v_, a_, o_, mlp_g_, mlp_u_, attn_scratch_;
};

}  // namespace idefics
