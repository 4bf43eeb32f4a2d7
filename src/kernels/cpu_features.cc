// CPU feature detection via cpuid leaf 1 / leaf 7 and XCR0, plus the IDEFICS_ISA / IDEFICS_FORCE_SCALAR caps.
// Mirrors no reference class.
#include "kernels/cpu_features.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace idefics {

namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t ReadXcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const bool avx = (c >> 28) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = ReadXcr0();
  f.os_avx = (xcr0 & 0x6) == 0x6;                   // SSE + AVX state
  f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  if (!f.os_avx) return f;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = (b >> 5) & 1;
  if (f.os_avx512) {
    f.avx512f = (b >> 16) & 1;
    f.avx512dq = (b >> 17) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
    f.avx512_vnni = (c >> 11) & 1;
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f.avx512_bf16 = (a1 >> 5) & 1;
  }
#endif
  return f;
}

Isa HardwareIsa() {
  const CpuFeatures& f = DetectCpuFeatures();
  Isa isa = Isa::kScalar;
#if defined(IDEFICS_HAVE_SIMD)
  if (f.avx2 && f.fma && f.f16c) isa = Isa::kAvx2;
  if (isa == Isa::kAvx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512_bf16 &&
      f.avx512_vnni)
    isa = Isa::kAvx512;
#else
  (void)f;
#endif
  return isa;
}

Isa EnvCappedIsa() {
  Isa isa = HardwareIsa();
  if (const char* s = std::getenv("IDEFICS_FORCE_SCALAR"); s && *s && std::strcmp(s, "0") != 0) {
    return Isa::kScalar;
  }
  if (const char* s = std::getenv("IDEFICS_ISA"); s && *s) {
    Isa cap = isa;
    if (std::strcmp(s, "scalar") == 0) cap = Isa::kScalar;
    if (std::strcmp(s, "avx2") == 0) cap = Isa::kAvx2;
    if (std::strcmp(s, "avx512") == 0) cap = Isa::kAvx512;
    if (cap < isa) isa = cap;
  }
  return isa;
}

std::atomic<int>& IsaSlot() {
  static std::atomic<int> slot{static_cast<int>(EnvCappedIsa())};
  return slot;
}

}  // namespace

const CpuFeatures& DetectCpuFeatures() {
  static const CpuFeatures f = Detect();
  return f;
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

Isa ActiveIsa() {
  return static_cast<Isa>(IsaSlot().load(std::memory_order_relaxed));
}

Isa SetActiveIsaForTesting(Isa isa) {
  const Isa hw = HardwareIsa();
  if (isa > hw) isa = hw;
  return static_cast<Isa>(IsaSlot().exchange(static_cast<int>(isa)));
}

std::string DescribeCpu() {
  const CpuFeatures& f = DetectCpuFeatures();
  std::string s = IsaName(ActiveIsa());
  s += " (";
  const std::pair<bool, const char*> bits[] = {{f.avx2, "avx2"},
                                               {f.fma, "fma"},
                                               {f.f16c, "f16c"},
                                               {f.avx512f, "avx512f"},
                                               {f.avx512bw, "avx512bw"},
                                               {f.avx512vl, "avx512vl"},
                                               {f.avx512dq, "avx512dq"},
                                               {f.avx512_bf16, "avx512_bf16"},
                                               {f.avx512_vnni, "avx512_vnni"}};
  bool first = true;
  for (const auto& [on, name] : bits) {
    if (!on) continue;
    if (!first) s += ' ';
    s += name;
    first = false;
  }
  s += ")";
  return s;
}

}  // namespace idefics
