// The chat page served at GET / (web/index.html, embedded at build time; no external resources).
// No transformers counterpart.
#pragma once

#include <string_view>

namespace idefics::server {

std::string_view IndexHtml();

}  // namespace idefics::server
