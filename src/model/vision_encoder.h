// The vision tower for one unpadded image: patch embedding + bucketized positions, pre-LN encoder layers,
// post-LayerNorm. Mirrors Idefics2VisionTransformer (embeddings, encoder, post_layernorm).
#pragma once

#include <cstdint>

#include "idefics/status.h"
#include "image/image_types.h"
#include "io/model_config.h"
#include "model/idefics2_model.h"
#include "model/scratch.h"
#include "model/weights.h"

namespace idefics {

class VisionEncoder {
 public:
  // Frees the per-image working buffers (~260 MB at 4900 patches); with keep_output the result of the last
  // Encode (h_, 23 MB) stays valid for the connector.
  void ReleaseScratch(bool keep_output) {
    for (ScratchBuffer* b : {&patches_, &x_, &q_, &k_, &v_, &a_, &mlp_, &attn_scratch_}) b->Release();
    if (!keep_output) h_.Release();
  }

  VisionEncoder(const VisionConfig& config, const VisionWeights& weights, ThreadPool* pool,
                const MatMulOptions& mm)
      : c_(config), w_(weights), pool_(pool), mm_(mm) {}

  // Checks that the image can be encoded (3 channels, at least one patch per side, at most
  // num_patches_per_side patches per side, chw of the right size).
  Status Validate(const PixelImage& image) const;

  // Encodes the top-left (h/p)·p × (w/p)·p region (the conv drops the remainder). Returns a pointer to
  // [nb_h*nb_w, Hv] (valid until the next call), sets nb_h/nb_w. Dumps (shape [nb_h, nb_w, Hv]):
  // vision_embeddings, vision_hidden_states.<i> (i = 0..layers, the last before post_layernorm),
  // vision_last_hidden_state.
  const float* Encode(const PixelImage& image, int64_t* nb_h, int64_t* nb_w, const DumpFn& dump);

 private:
  const VisionConfig& c_;
  const VisionWeights& w_;
  ThreadPool* pool_;
  MatMulOptions mm_;  // options of the Linear layers
  ScratchBuffer patches_, h_, x_, q_, k_, v_, a_, mlp_, attn_scratch_;

};

}  // namespace idefics
