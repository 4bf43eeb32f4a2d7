// Element types as safetensors names them, their sizes, and exact bf16/f16 <-> f32 conversions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace idefics {

enum class DType : uint8_t { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU64, kU32, kU16, kU8, kBool };

// "F32", "BF16", ... as written in safetensors headers.
std::string_view DTypeName(DType t);
std::optional<DType> DTypeFromName(std::string_view name);
size_t DTypeSize(DType t);
inline bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64; }

inline float Bf16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round-to-nearest-even, as torch's tensor.to(torch.bfloat16); NaN stays NaN.
inline uint16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);  // round-to-nearest-even

// Converts n elements of a float type (F32/F16/BF16/F64) to float32.
void ConvertToF32(DType src_type, const void* src, float* dst, size_t n);

}  // namespace idefics
