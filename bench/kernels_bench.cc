// Kernel benchmarks at Idefics2 shapes: MatMul (GEMV for decode, GEMM for prefill/vision) in every weight
// format vs OpenBLAS sgemv/sgemm/sbgemm, plus the vector ops and the machine probes. Mirrors no reference
// class. Run: build/release/bench/idefics_kernel_bench [--benchmark_filter=Gemm] (counters: GB/s of weights,
// GFLOPS).
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/build_info.h"
#include "core/large_alloc.h"
#include "core/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"
#include "kernels/ops.h"
#include "kernels/probe.h"
#include "tensor/dtype.h"

#if defined(IDEFICS_HAVE_OPENBLAS)
#include <cblas.h>
#endif
#if defined(IDEFICS_HAVE_DNNL)
#include <dnnl.hpp>
#endif

namespace idefics {
namespace {

// Physical cores, or IDEFICS_BENCH_THREADS. With 1 thread the timings use the process CPU time, which stays
// meaningful on a machine shared with other jobs; with more threads they use wall time.
int BenchThreads() {
  const char* s = std::getenv("IDEFICS_BENCH_THREADS");
  return s && std::atoi(s) > 0 ? std::atoi(s) : 0;
}

ThreadPool& Pool() {
  static ThreadPool pool(BenchThreads());
  return pool;
}

template <typename B>
B* Timing(B* b) {
  return Pool().size() == 1 ? b : b->UseRealTime();
}

// Deterministic uniform values in [-scale, scale) (fast enough for 10^8 elements).
void FillRandom(float* p, int64_t n, uint64_t seed, float scale) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < n; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    p[i] = scale * (static_cast<float>(s >> 40) / static_cast<float>(1 << 23) - 1.f);
  }
}

struct Shape {
  const char* name;
  int64_t M, K, N;
};

// One weight matrix at a time (the largest is 235 MB in f32).
struct WeightCache {
  WeightFormat format;
  int64_t N = -1, K = -1;
  std::vector<uint8_t> bytes;
  std::vector<float> dense;  // f32 copy for OpenBLAS (filled on demand)
  WeightMatrix w;
};

WeightCache& Weights(WeightFormat f, int64_t N, int64_t K, bool need_dense = false) {
  static WeightCache c;
  if (c.format != f || c.N != N || c.K != K) {
    c = WeightCache{};
    c.format = f;
    c.N = N;
    c.K = K;
    std::vector<float> row(K);
    const size_t rb = WeightRowBytes(f, K);
    c.bytes.resize(rb * N);
    for (int64_t n = 0; n < N; ++n) {
      FillRandom(row.data(), K, n + 1, 0.05f);
      uint8_t* dst = c.bytes.data() + n * rb;
      switch (f) {
        case WeightFormat::kF32:
          std::memcpy(dst, row.data(), 4 * K);
          break;
        case WeightFormat::kBF16:
          ConvertF32ToBf16(row.data(), reinterpret_cast<uint16_t*>(dst), K);
          break;
        case WeightFormat::kF16:
          for (int64_t k = 0; k < K; ++k) {
            const uint16_t h = F32ToF16(row[k]);
            std::memcpy(dst + 2 * k, &h, 2);
          }
          break;
        case WeightFormat::kQ8_0:
          QuantizeRowQ8_0(row.data(), K, dst);
          break;
        case WeightFormat::kQ4_0:
          QuantizeRowQ4_0(row.data(), K, dst);
          break;
      }
    }
    c.w = WeightMatrix{f, N, K, c.bytes.data()};
  }
  if (need_dense && c.dense.empty()) {
    c.dense.resize(N * K);
    for (int64_t n = 0; n < N; ++n) DequantizeRow(c.w, n, c.dense.data() + n * K);
  }
  return c;
}

void SetCounters(benchmark::State& st, const Shape& s, double weight_bytes) {
  st.counters["GFLOPS"] =
      benchmark::Counter(2.0 * s.M * s.N * s.K * st.iterations() / 1e9, benchmark::Counter::kIsRate);
  st.counters["GB/s"] = benchmark::Counter(weight_bytes * st.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void BM_MatMul(benchmark::State& st, Shape s, WeightFormat f, bool bf16_dot, bool int8_dot) {
  WeightCache& c = Weights(f, s.N, s.K);
  std::vector<float> x(s.M * s.K), y(s.M * s.N);
  FillRandom(x.data(), x.size(), 7, 1.f);
  MatMulOptions opt;
  opt.bf16_dot = bf16_dot;
  opt.int8_dot = int8_dot;
  for (auto _ : st) {
    MatMul(x.data(), s.M, c.w, nullptr, y.data(), &Pool(), opt);
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(st, s, static_cast<double>(c.bytes.size()));
}

// The GEMV as decode sees it: a different matrix each call, cycling through copies that together exceed any
// cache (>= 768 MB), so the figure is the memory-streaming rate, comparable to Probe/ReadBandwidth (the
// single-matrix benchmarks above re-read one matrix that may partly stay in the last-level cache).
// `huge`: the copies sit in 2 MiB pages (AllocLarge, as `--no-mmap` loads the decoder), else in 4 KiB pages
// (as a mapped file).
// IDEFICS_BENCH_MISALIGN=B (0-63, even) starts every copy B bytes past a cache line, as a tensor of a hub
// safetensors file may start (the format aligns tensors to 8 bytes at most).
void BM_MatMulStream(benchmark::State& st, Shape s, WeightFormat f, bool huge) {
  WeightCache& c = Weights(f, s.N, s.K);
  const size_t bytes = c.bytes.size();
  const char* misalign_env = std::getenv("IDEFICS_BENCH_MISALIGN");
  const size_t misalign = misalign_env ? std::strtoul(misalign_env, nullptr, 10) % 64 / 2 * 2 : 0;
  const size_t copies = std::max<size_t>(2, (size_t{768} << 20) / bytes + 1);
  std::vector<std::unique_ptr<uint8_t, decltype(&std::free)>> mats;
  std::vector<uint8_t*> data;
  for (size_t i = 0; i < copies; ++i) {
    const size_t alloc = bytes + 64;
    uint8_t* p =
        static_cast<uint8_t*>(huge ? AllocLarge(alloc) : std::aligned_alloc(64, (alloc + 63) / 64 * 64));
    if (!huge)
      madvise(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{4095}), alloc,
              MADV_NOHUGEPAGE);
    std::memcpy(p + misalign, c.bytes.data(), bytes);
    data.push_back(p + misalign);
    mats.emplace_back(p, &std::free);
  }
  std::vector<float> x(s.M * s.K), y(s.M * s.N);
  FillRandom(x.data(), x.size(), 7, 1.f);
  size_t i = 0;
  for (auto _ : st) {
    WeightMatrix w = c.w;
    w.data = data[i];
    i = (i + 1) % copies;
    MatMul(x.data(), s.M, w, nullptr, y.data(), &Pool(), MatMulOptions{});
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(st, s, static_cast<double>(bytes));
}

// The bf16 GEMM from weights packed once (PackBf16Panels, as the vision encoder and connector run).
void BM_MatMulPanels(benchmark::State& st, Shape s) {
  WeightCache& c = Weights(WeightFormat::kBF16, s.N, s.K);
  std::unique_ptr<void, decltype(&std::free)> panels(std::aligned_alloc(64, Bf16PanelBytes(s.N, s.K)), &std::free);
  PackBf16Panels(c.w, panels.get(), &Pool());
  WeightMatrix w = c.w;
  w.panels = panels.get();
  std::vector<float> x(s.M * s.K), y(s.M * s.N);
  FillRandom(x.data(), x.size(), 7, 1.f);
  MatMulOptions opt;
  opt.bf16_dot = true;
  for (auto _ : st) {
    MatMul(x.data(), s.M, w, nullptr, y.data(), &Pool(), opt);
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(st, s, static_cast<double>(c.bytes.size()));
}

// Packing a matrix into bf16 GEMM panels (done once per image-side matrix).
void BM_PackPanels(benchmark::State& st, Shape s, WeightFormat f) {
  WeightCache& c = Weights(f, s.N, s.K);
  std::unique_ptr<void, decltype(&std::free)> panels(std::aligned_alloc(64, Bf16PanelBytes(s.N, s.K)), &std::free);
  for (auto _ : st) {
    PackBf16Panels(c.w, panels.get(), &Pool());
    benchmark::DoNotOptimize(panels.get());
  }
  SetCounters(st, s, static_cast<double>(c.bytes.size()));
}

#if defined(IDEFICS_HAVE_SIMD)
// The vdpbf16ps GEMV that MatMul does not use (it measured slower than the exact bf16 -> f32 GEMV).
void BM_GemvBf16Dot(benchmark::State& st, Shape s) {
  WeightCache& c = Weights(WeightFormat::kBF16, s.N, s.K);
  std::vector<float> x(s.M * s.K), y(s.M * s.N);
  FillRandom(x.data(), x.size(), 7, 1.f);
  std::vector<uint16_t> xb(x.size());
  for (auto _ : st) {
    ConvertF32ToBf16(x.data(), xb.data(), xb.size());
    Pool().ParallelFor(s.N, 16, [&](int64_t n0, int64_t n1) {
      kern::avx512::GemvBf16Dot(xb.data(), s.M, c.w, nullptr, y.data(), n0, n1);
    });
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(st, s, static_cast<double>(c.bytes.size()));
}
#endif

#if defined(IDEFICS_HAVE_OPENBLAS)
// Debian's OpenBLAS 0.3.21 is built without bf16 (no cblas_sbgemm), so only float32 is compared.
void BM_OpenBlas(benchmark::State& st, Shape s) {
  openblas_set_num_threads(Pool().size());
  WeightCache& c = Weights(WeightFormat::kF32, s.N, s.K, /*need_dense=*/true);
  std::vector<float> x(s.M * s.K), y(s.M * s.N);
  FillRandom(x.data(), x.size(), 7, 1.f);
  for (auto _ : st) {
    if (s.M == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, s.N, s.K, 1.f, c.dense.data(), s.K, x.data(), 1, 0.f, y.data(),
                  1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.M, s.N, s.K, 1.f, x.data(), s.K, c.dense.data(),
                  s.K, 0.f, y.data(), s.N);
    }
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(st, s, 4.0 * s.N * s.K);
}
#endif

#if defined(IDEFICS_HAVE_DNNL)
// oneDNN matmul with its preferred (pre-reordered, outside the timing) weight layout; float32 or bf16 inputs
// with float32 output. Threads: Debian's build uses OpenMP, so set OMP_NUM_THREADS to match the pool.
void BM_Dnnl(benchmark::State& st, Shape s, bool bf16) {
  using dnnl::memory;
  WeightCache& c = Weights(WeightFormat::kF32, s.N, s.K, /*need_dense=*/true);
  std::vector<float> x(s.M * s.K), y(s.M * s.N);
  FillRandom(x.data(), x.size(), 7, 1.f);
  const memory::data_type dt = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const memory::desc a_md({s.M, s.K}, dt, memory::format_tag::ab);
  const memory::desc b_any({s.K, s.N}, dt, memory::format_tag::any);
  const memory::desc c_md({s.M, s.N}, memory::data_type::f32, memory::format_tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_any, c_md), eng);
  // Our W is [N, K] row-major, i.e. the [K, N] weights in "ba" layout.
  memory w_f32({{s.K, s.N}, memory::data_type::f32, memory::format_tag::ba}, eng, c.dense.data());
  memory w_packed(pd.weights_desc(), eng);
  dnnl::reorder(w_f32, w_packed).execute(strm, w_f32, w_packed);
  memory a_f32({{s.M, s.K}, memory::data_type::f32, memory::format_tag::ab}, eng, x.data());
  memory a(a_md, eng);
  memory out(c_md, eng, y.data());
  for (auto _ : st) {
    dnnl::reorder(a_f32, a).execute(strm, a_f32, a);  // the activation conversion counts (ours does it too)
    dnnl::matmul(pd).execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w_packed}, {DNNL_ARG_DST, out}});
    strm.wait();
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(st, s, (bf16 ? 2.0 : 4.0) * s.N * s.K);
}
#endif

void BM_Op(benchmark::State& st, int which) {
  const int64_t n = 14336;
  std::vector<float> a(n), b(n), y(n);
  FillRandom(a.data(), n, 1, 3.f);
  FillRandom(b.data(), n, 2, 3.f);
  for (auto _ : st) {
    switch (which) {
      case 0:
        benchmark::DoNotOptimize(Dot(a.data(), b.data(), n));
        break;
      case 1:
        RmsNorm(a.data(), b.data(), n, 1e-5f, y.data());
        break;
      case 2:
        LayerNorm(a.data(), b.data(), a.data(), n, 1e-6f, y.data());
        break;
      case 3:
        std::memcpy(y.data(), a.data(), 4 * n);
        SoftmaxInPlace(y.data(), n);
        break;
      case 4:
        SiluMul(a.data(), b.data(), y.data(), n);
        break;
      case 5:
        GeluTanh(a.data(), y.data(), n);
        break;
      case 6:
        ConvertF32ToBf16(a.data(), reinterpret_cast<uint16_t*>(y.data()), n);
        break;
    }
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * n);
}

void BM_Probe(benchmark::State& st, bool bandwidth, bool bf16) {
  double v = 0;
  for (auto _ : st) v = bandwidth ? MeasureReadBandwidthGBs(Pool()) : MeasurePeakGflops(Pool(), bf16);
  st.counters[bandwidth ? "GB/s" : "GFLOPS"] = v;
}

const Shape kGemvShapes[] = {
    {"text_q_o_4096x4096", 1, 4096, 4096},
    {"text_gate_up_4096to14336", 1, 4096, 14336},
    {"text_down_14336to4096", 1, 14336, 4096},
};
const Shape kGemmShapes[] = {
    {"vision_fc1_M4900_1152to4304", 4900, 1152, 4304},
    {"text_gate_up_M512_4096to14336", 512, 4096, 14336},
    {"vision_qkv_M1225_1152to1152", 1225, 1152, 1152},
    {"proj_gate_M256_1152to14336", 256, 1152, 14336},
    {"proj_down_M256_14336to4096", 256, 14336, 4096},
    {"perceiver_mlp_M64_4096to16384", 64, 4096, 16384},
    {"perceiver_kv_M4964_4096to384", 4964, 4096, 384},
    {"text_q_M128_4096to4096", 128, 4096, 4096},
};

struct Registrar {
  Registrar() {
    benchmark::AddCustomContext("idefics_isa", DescribeCpu());
    benchmark::AddCustomContext("idefics_commit", GitCommit());
    benchmark::AddCustomContext("idefics_threads", std::to_string(Pool().size()));
    struct Fmt {
      const char* name;
      WeightFormat f;
      bool bf16_dot;
      bool int8_dot = false;
    };
    const Fmt fmts[] = {{"f32", WeightFormat::kF32, false},
                        {"bf16", WeightFormat::kBF16, false},
                        {"bf16dot", WeightFormat::kBF16, true},
                        {"f16", WeightFormat::kF16, false},
                        {"q8_0", WeightFormat::kQ8_0, false},
                        {"q4_0", WeightFormat::kQ4_0, false},
                        {"q8_0_bf16dot", WeightFormat::kQ8_0, true},
                        {"q4_0_bf16dot", WeightFormat::kQ4_0, true},
                        {"q8_0_int8dot", WeightFormat::kQ8_0, false, true},
                        {"q4_0_int8dot", WeightFormat::kQ4_0, false, true}};
    for (const Shape& s : kGemvShapes) {
      for (const Fmt& f : fmts) {
        if (std::string(f.name).find("_bf16dot") != std::string::npos || f.int8_dot)
          continue;  // as without at M = 1
        if (std::string(f.name) == "bf16dot") {
#if defined(IDEFICS_HAVE_SIMD)
          if (ActiveIsa() == Isa::kAvx512)
            Timing(benchmark::RegisterBenchmark((std::string("Gemv/") + s.name + "/bf16dot_kernel").c_str(),
                                                BM_GemvBf16Dot, s))
                ->Unit(benchmark::kMicrosecond);
#endif
          continue;  // MatMul runs the exact bf16 path at M = 1
        }
        Timing(benchmark::RegisterBenchmark((std::string("Gemv/") + s.name + "/" + f.name).c_str(), BM_MatMul,
                                            s, f.f, f.bf16_dot, f.int8_dot))
            ->Unit(benchmark::kMicrosecond);
      }
      for (WeightFormat f : {WeightFormat::kBF16, WeightFormat::kQ8_0, WeightFormat::kQ4_0})
        for (bool huge : {false, true})
          Timing(benchmark::RegisterBenchmark((std::string("Gemv/") + s.name + "/" + WeightFormatName(f) +
                                               (huge ? "_stream_huge" : "_stream"))
                                                  .c_str(),
                                              BM_MatMulStream, s, f, huge))
              ->Unit(benchmark::kMicrosecond);
#if defined(IDEFICS_HAVE_OPENBLAS)
      Timing(benchmark::RegisterBenchmark((std::string("Gemv/") + s.name + "/openblas_sgemv").c_str(),
                                          BM_OpenBlas, s))
          ->Unit(benchmark::kMicrosecond);
#endif
#if defined(IDEFICS_HAVE_DNNL)
      for (bool bf16 : {false, true}) {
        Timing(benchmark::RegisterBenchmark(
                   (std::string("Gemv/") + s.name + (bf16 ? "/onednn_bf16" : "/onednn_f32")).c_str(), BM_Dnnl,
                   s, bf16))
            ->Unit(benchmark::kMicrosecond);
      }
#endif
    }
    for (const Shape& s : kGemmShapes) {
      for (const Fmt& f : fmts) {
        Timing(benchmark::RegisterBenchmark((std::string("Gemm/") + s.name + "/" + f.name).c_str(), BM_MatMul,
                                            s, f.f, f.bf16_dot, f.int8_dot))
            ->Unit(benchmark::kMillisecond)
            ->MinTime(1.0);
      }
      for (const Fmt& f : fmts)
        if (!f.bf16_dot && !f.int8_dot && f.f != WeightFormat::kF32 && f.f != WeightFormat::kF16)
          Timing(benchmark::RegisterBenchmark((std::string("Pack/") + s.name + "/" + f.name).c_str(),
                                              BM_PackPanels, s, f.f))
              ->Unit(benchmark::kMillisecond);
      Timing(benchmark::RegisterBenchmark((std::string("Gemm/") + s.name + "/bf16dot_panels").c_str(),
                                          BM_MatMulPanels, s))
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0);
#if defined(IDEFICS_HAVE_OPENBLAS)
      Timing(benchmark::RegisterBenchmark((std::string("Gemm/") + s.name + "/openblas_sgemm").c_str(),
                                          BM_OpenBlas, s))
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0);
#endif
#if defined(IDEFICS_HAVE_DNNL)
      for (bool bf16 : {false, true}) {
        Timing(benchmark::RegisterBenchmark(
                   (std::string("Gemm/") + s.name + (bf16 ? "/onednn_bf16" : "/onednn_f32")).c_str(), BM_Dnnl,
                   s, bf16))
            ->Unit(benchmark::kMillisecond)
            ->MinTime(1.0);
      }
#endif
    }
    const char* ops[] = {"Dot", "RmsNorm", "LayerNorm", "Softmax", "SiluMul", "GeluTanh", "F32ToBf16"};
    for (int i = 0; i < 7; ++i)
      benchmark::RegisterBenchmark((std::string("Op/") + ops[i] + "/14336").c_str(), BM_Op, i);
    benchmark::RegisterBenchmark("Probe/ReadBandwidth", BM_Probe, true, false)->Iterations(1)->UseRealTime();
    benchmark::RegisterBenchmark("Probe/PeakF32", BM_Probe, false, false)->Iterations(1)->UseRealTime();
    benchmark::RegisterBenchmark("Probe/PeakBf16", BM_Probe, false, true)->Iterations(1)->UseRealTime();
  }
};
const Registrar registrar;

}  // namespace
}  // namespace idefics
