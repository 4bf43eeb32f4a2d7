// Limits of the Jinja interpreter. The chat template comes from the model folder, which may be hostile, so
// parsing and rendering must end quickly with an error instead of overflowing the stack or running unbounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "idefics/status.h"

namespace idefics::tokenizer::jinja {

// Nesting of statements ({% if %}, {% for %}) plus the recursion of the expression parser, and separately
// the height of every expression tree. Real chat templates nest under ~10 levels. The parser, the
// evaluator and the tree's destructor all recurse per level; 256 parenthesis levels measured 1-2 MiB of
// stack in a release build (about 4x that with AddressSanitizer), inside the 8 MiB a glibc thread gets.
// A deeper template is a parse error (InvalidArgument, naming the position).
inline constexpr int kMaxNestingDepth = 256;

// Nesting of the lists/dicts a template builds ([[[...]]] in a loop): printing and comparing values
// recurses, so their depth is bounded too.
inline constexpr int kMaxValueDepth = 256;

// Items of one range(): transformers renders chat templates in jinja2's sandbox, whose MAX_RANGE is 100000.
inline constexpr int64_t kMaxRangeLength = 100000;

// Bytes of one string the template builds (by *, ~, +, join, replace) and of the rendered output. A prompt
// is a few hundred KiB at most (the text model's context), so 16 MiB is far above any real use.
inline constexpr size_t kMaxStringBytes = size_t{16} << 20;
inline constexpr size_t kMaxOutputBytes = size_t{16} << 20;

// Items of one list the template builds by list + list (doubling a list in a loop grows it exponentially).
inline constexpr size_t kMaxListLength = 1000000;

// Loop iterations of one render, summed over all for loops (nested loops multiply). An empty iteration
// costs ~0.5 us (binding the variables, updating loop.*) and any body more, so 10 million would let a
// render run for many seconds; one million bounds it to about one. Real templates iterate over messages
// and their content parts: thousands at most.
inline constexpr int64_t kMaxLoopIterations = 1000000;

// ResourceExhausted when a string of `bytes` the template builds would exceed kMaxStringBytes.
inline Status CheckStringSize(size_t bytes) {
  if (bytes <= kMaxStringBytes) return Status::Ok();
  return ResourceExhausted("a string of " + std::to_string(bytes) +
                           " bytes exceeds the chat template limit of " + std::to_string(kMaxStringBytes));
}

}  // namespace idefics::tokenizer::jinja
