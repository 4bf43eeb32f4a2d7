// The config.json of the real idefics2-8b (keys and values as published on the Hub, spec §1.2), for tests
// that need the real model's shapes without its weights. Mirrors Idefics2Config as transformers writes it.
#pragma once

namespace idefics::test {

// perceiver_config holds only model_type: everything else takes the transformers defaults.
inline constexpr const char kIdefics2_8bConfigJson[] =
    R"({"architectures":["Idefics2ForConditionalGeneration"],"image_token_id":32001,
  "model_type":"idefics2","perceiver_config":{"model_type":"idefics2"},
  "text_config":{"max_position_embeddings":32768,"model_type":"mistral","pad_token_id":0,"rms_norm_eps":1e-05,
                 "vocab_size":32003},
  "tie_word_embeddings":false,"torch_dtype":"float32","use_cache":true,
  "vision_config":{"hidden_size":1152,"image_size":980,"intermediate_size":4304,"model_type":"idefics2",
                   "num_attention_heads":16,"num_hidden_layers":27,"patch_size":14}})";

}  // namespace idefics::test
