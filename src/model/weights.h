// Loaded Idefics2 weights: views into the mmapped checkpoint (zero-copy) or into converted buffers, grouped
// per module. Mirrors the parameter tree of Idefics2ForConditionalGeneration (spec §1.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "idefics/status.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "kernels/matmul.h"
#include "model/idefics2_model.h"

namespace idefics {

struct VisionLayerWeights {
  const float* ln1_w = nullptr;  // [Hv]
  const float* ln1_b = nullptr;
  WeightMatrix q, k, v, o;       // [Hv, Hv]
  const float* q_b = nullptr;    // [Hv]
  const float* k_b = nullptr;
  const float* v_b = nullptr;
  const float* o_b = nullptr;
  const float* ln2_w = nullptr;
  const float* ln2_b = nullptr;
  WeightMatrix fc1;              // [Iv, Hv]
  const float* fc1_b = nullptr;  // [Iv]
  WeightMatrix fc2;              // [Hv, Iv]
  const float* fc2_b = nullptr;  // [Hv]
};

struct VisionWeights {
  WeightMatrix patch;                 // f32 [Hv, C*p*p] (the conv kernel flattened channel, ky, kx)
  const float* patch_b = nullptr;     // [Hv]
  const float* pos_embed = nullptr;   // [nps*nps, Hv]
  std::vector<VisionLayerWeights> layers;
  const float* post_ln_w = nullptr;   // [Hv]
  const float* post_ln_b = nullptr;
};

struct PerceiverLayerWeights {
  const float* latents_norm = nullptr;  // [Ht]
  const float* context_norm = nullptr;  // [Ht]
  WeightMatrix q;                       // [nh*hd, Ht]
  WeightMatrix k, v;                    // [nkv*hd, Ht]
  WeightMatrix o;                       // [Ht, nh*hd]
  const float* post_norm = nullptr;     // [Ht]
  WeightMatrix gate, up;                // [4Ht, Ht]
  WeightMatrix down;                    // [Ht, 4Ht]
};

struct ConnectorWeights {
  WeightMatrix proj_gate, proj_up;      // [It, Hv]
  WeightMatrix proj_down;               // [Ht, It]
  const float* latents = nullptr;       // [n_latents, Ht]
  std::vector<PerceiverLayerWeights> layers;
  const float* norm = nullptr;          // [Ht]
};

struct TextLayerWeights {
  const float* input_norm = nullptr;  // [Ht]
  WeightMatrix q;                     // [nh*hd, Ht]
  WeightMatrix k, v;                  // [nkv*hd, Ht]
  WeightMatrix o;                     // [Ht, nh*hd]
  const float* post_norm = nullptr;   // [Ht]
  WeightMatrix gate, up;              // [It, Ht]
  WeightMatrix down;                  // [Ht, It]
};

struct TextWeights {
  WeightMatrix embed;                 // [V, Ht] in its storage format (F32/BF16/F16), rows converted on lookup
  bool embed_mapped = false;          // embed.data points into the file mapping (not a converted copy)
  std::vector<TextLayerWeights> layers;
  const float* norm = nullptr;        // [Ht]
  WeightMatrix lm_head;               // [V, Ht]
};

// Owns the mmapped checkpoint and every converted buffer the views point into.
struct ModelWeights {
  VisionWeights vision;
  ConnectorWeights connector;
  TextWeights text;

  size_t bytes = 0;          // resident weight bytes: converted buffers + mmapped tensors used in place
  size_t mapped_bytes = 0;   // of which mmapped in place (zero-copy)

  std::unique_ptr<TensorStore> store;
  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  // Converted and copied tensors and GEMM panels: 64-byte aligned; from 2 MiB on, 2 MiB-aligned and advised
  // as huge pages (fewer first-touch faults, and the decode GEMV streams ~1.4x faster from them than from
  // 4 KiB pages on the measurement VM).
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> owned;
};

// Opens <dir>'s safetensors, checks every tensor against the config (all problems in one message) and builds
// the views. Matrices are stored as PlanMatrixFormat(name, cols, opts.matrix_format) (model/weight_formats.h),
// quantized at load time row block by row block for q8_0/q4_0; matrices already quantized in the folder
// (`idefics quantize`) are used in place whatever the requested format. Everything else is float32, except
// embed_tokens which stays in its storage format (bf16 when a block format is requested). With
// opts.no_mmap, the text decoder's matrices and lm_head that would be used in place are copied into owned
// huge-page memory instead (the mapped pages are then dropped).
StatusOr<std::unique_ptr<ModelWeights>> LoadModelWeights(const std::string& dir, const Idefics2Config& config,
                                                         const ModelLoadOptions& opts);

// Lays out every vision-encoder and connector matrix as bf16 GEMM panels (PackBf16Panels) when their products
// run on bf16 dot products (mm.bf16_dot, non-f32 weights, an AVX-512 BF16 CPU): those matrices only meet
// large M (patches, latents), where re-packing per call cost up to 40 % of the product (the perceiver MLP at
// 64 rows). The row-major originals are then dropped (a converted buffer is freed, mapped pages released), so
// resident memory does not grow. Results are bitwise those of the per-call packing. Idempotent; returns the
// bytes packed. Q8_0/Q4_0 matrices stay as they are when mm.int8_dot is set: the int8 GEMM that then runs
// them is faster than the bf16 GEMM even from prepacked panels.
size_t PackImageWeights(ModelWeights* w, const MatMulOptions& mm, ThreadPool* pool);

}  // namespace idefics
