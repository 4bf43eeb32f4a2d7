// The real Backend: an idefics::Engine (tokenizer, chat template, image processor, Idefics2Model, sampler and
// stop rules) seen through the server's per-sequence interface. Mirrors Idefics2Processor + generate().
#pragma once

#include <memory>
#include <string>

#include "idefics/engine.h"
#include "server/backend.h"

namespace idefics::server {

// Loads the engine (blocking; run it off the listener thread). The model is named after the folder.
StatusOr<std::unique_ptr<Backend>> LoadEngineBackend(const EngineOptions& options);

// Wraps an already loaded engine.
std::unique_ptr<Backend> MakeEngineBackend(std::unique_ptr<Engine> engine, std::string model_name);

}  // namespace idefics::server
