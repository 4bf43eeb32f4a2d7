// UTF-8 helpers for the tokenizer: character splitting, validation by maximal subparts, U+FFFD repair.
// Mirrors the byte-level rules of Python's bytes.decode(errors="replace") (Unicode §3.9, table 3-7).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace idefics::tokenizer {

// U+FFFD REPLACEMENT CHARACTER, UTF-8 encoded.
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

enum class Utf8Scan {
  kValid,       // a complete, well-formed character of `*len` bytes
  kIncomplete,  // all `n` bytes are a well-formed prefix of a longer character (more bytes may follow)
  kInvalid,     // ill-formed: `*len` bytes (the maximal subpart, >= 1) should become one U+FFFD
};

// Classifies the character starting at p[0] (n >= 1 bytes available).
Utf8Scan ScanUtf8Char(const uint8_t* p, size_t n, size_t* len);

// Returns `s` with every ill-formed subsequence replaced by U+FFFD (also a truncated one at the end).
std::string RepairUtf8(std::string_view s);

// True when `s` is entirely well-formed UTF-8.
bool IsValidUtf8(std::string_view s);

// Appends the UTF-8 encoding of code point `cp` (must be a valid scalar value) to `out`.
void AppendUtf8(uint32_t cp, std::string* out);

}  // namespace idefics::tokenizer
