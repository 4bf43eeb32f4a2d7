// CPU feature detection (cpuid + xgetbv) and the instruction-set level the kernels dispatch on.
// Mirrors no reference class; the env overrides exist so tests and benchmarks can force the scalar twins.
#pragma once

#include <string>

namespace idefics {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512_bf16 = false;
  bool avx512_vnni = false;
  bool os_avx = false;     // XCR0 has the YMM state enabled
  bool os_avx512 = false;  // XCR0 has the opmask + ZMM states enabled
};

// What this CPU and OS support (instruction bits are only reported when the OS saves the registers).
const CpuFeatures& DetectCpuFeatures();

// Kernel families, in increasing order. kAvx512 requires F/BW/VL/DQ/BF16/VNNI + FMA + F16C (what *_avx512.cc
// files are compiled for, kern::avx512); kAvx2 requires AVX2 + FMA + F16C (*_avx2.cc, kern::avx2: every
// kernel family has an AVX2 version, see docs/performance.md "AVX2 kernels").
enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

const char* IsaName(Isa isa);

// The best ISA the CPU supports, capped by the environment: IDEFICS_FORCE_SCALAR=1 forces kScalar,
// IDEFICS_ISA=scalar|avx2|avx512 caps the level. Also capped by what was compiled (IDEFICS_HAVE_SIMD).
// Read once at first use.
Isa ActiveIsa();

// Test hook: overrides ActiveIsa() (clamped to what the CPU supports); returns the previous value.
Isa SetActiveIsaForTesting(Isa isa);

// One line such as "avx512 (avx2 fma f16c avx512f avx512bw avx512vl avx512dq avx512_bf16 avx512_vnni)".
std::string DescribeCpu();

}  // namespace idefics
