// MatMul: picks the decode (GEMV) or blocked (GEMM) kernel for the format, ISA and options, and splits the
// work over the thread pool by output rows/tiles only. Mirrors nn.Linear (y = x·Wᵀ + b).
#include "kernels/matmul.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul_kernels.h"
#include "kernels/norm.h"
#include "kernels/ops.h"

namespace idefics {

namespace {

constexpr int64_t kGemvGrain = 16;      // output rows per GEMV chunk at least
constexpr int64_t kGemmTileNUnit = 64;  // GEMM task columns: a multiple of the 64-column register panel
constexpr int64_t kGemmTileNMax = 256;  // and at most the columns the kernel packs at once
constexpr int64_t kGemmTileMUnit = 6;   // GEMM task rows are a multiple of the register tile height
constexpr int64_t kGemmWideMinRows = 512;  // int8 GEMM: wide column tiles from this many rows
constexpr int64_t kNormBlockRows = 512;    // RmsNormMatMulMany's float32 path: rows normalized at once
constexpr int64_t kFusedBlockRows = 2048;  // RmsNormMatMulMany's int8 / bf16 path: rows converted at once

bool IsQuant(WeightFormat f) {
  return f == WeightFormat::kQ8_0 || f == WeightFormat::kQ4_0;
}

void ForRows(ThreadPool* pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (pool && pool->size() > 1) {
    pool->ParallelFor(n, grain, body);
  } else {
    body(0, n);
  }
}

// The GEMV's split: kGemvTasksPerThread chunks of rows per thread (multiples of kGemvGrain), claimed
// dynamically, so a thread the host slows down is helped by the others instead of holding up the step.
// Rows are independent: the split never changes a result. 8 chunks per thread measured best (decode q4_0,
// 8 layers, three interleaved runs each: 2 → 33.5–34.5, 4 → 33.1–33.9, 8 → 34.9–35.9, 16 → 34.0–35.1 tok/s;
// full depth 8.95–9.04 → 9.17–9.24): the last chunk, which one thread finishes alone, is shorter. The chunks
// shrink linearly (the first holds `tasks` shares, the last one): 8 layers, six interleaved pairs, equal
// chunks 38.5–50.4 (mean 43.5) → shrinking 40.4–51.0 (mean 46.8) tok/s; full depth unchanged within noise.
constexpr int64_t kGemvTasksPerThread = 8;
void ForGemvRows(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  if (!pool || pool->size() <= 1) return body(0, n);
  const int64_t units = (n + kGemvGrain - 1) / kGemvGrain;
  const int64_t tasks = std::min<int64_t>(units, pool->size() * kGemvTasksPerThread);
  // Chunk t holds (tasks - t) shares: large chunks first, small ones last, so the thread that finishes first
  // waits less for the other's last chunk.
  const int64_t total = tasks * (tasks + 1) / 2;
  auto start = [&](int64_t t) {
    const int64_t shares = t * tasks - t * (t - 1) / 2;
    return std::min(n, units * shares / total * kGemvGrain);
  };
  pool->ParallelTasks(tasks, [&](int64_t t) {
    const int64_t b = start(t), e = t + 1 == tasks ? n : start(t + 1);
    if (b < e) body(b, e);
  });
}

// The calling thread's collector (SetGemvStats): the pool's workers, which run attention's score products
// through MatMul, never see it.
thread_local GemvStats* t_gemv_stats = nullptr;

// Times one GEMV dispatch into the installed GemvStats, if any.
class GemvTimer {
 public:
  GemvTimer(const ThreadPool* pool, int64_t rows, int64_t cols, int matrices, WeightFormat format,
            double bytes)
      : stats_(pool ? t_gemv_stats : nullptr),
        rows_(rows),
        cols_(cols),
        matrices_(matrices),
        format_(format),
        bytes_(bytes) {
    if (stats_) t0_ = std::chrono::steady_clock::now();
  }
  ~GemvTimer() {
    if (stats_)
      stats_->Add(rows_, cols_, matrices_, format_,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(), bytes_);
  }
  GemvTimer(const GemvTimer&) = delete;
  GemvTimer& operator=(const GemvTimer&) = delete;

 private:
  GemvStats* stats_;
  int64_t rows_, cols_;
  int matrices_;
  WeightFormat format_;
  double bytes_;
  std::chrono::steady_clock::time_point t0_;
};

// An RMSNorm applied to each row of x before its conversion (RmsNormMatMulMany), or none.
struct RowNorm {
  const float* w = nullptr;
  float eps = 0.f;
};

// Row m of x as the conversion reads it: x itself, or RMSNorm(x row) in the calling thread's row scratch
// (which stays in L1: the normalized rows never reach memory).
const float* NormedRow(const float* x, int64_t m, int64_t K, const RowNorm& norm) {
  if (!norm.w) return x + m * K;
  thread_local std::vector<float> row;
  if (static_cast<int64_t>(row.size()) < K) row.resize(K);
  RmsNorm(x + m * K, norm.w, K, norm.eps, row.data());
  return row.data();
}

// x [M, K] -> bf16 [M, Kp] with Kp = K rounded up to even and a zero pad column (rows split over the pool).
// The buffer belongs to the calling thread and only grows: a fresh (zero-filled, first-touched) allocation per
// call cost more than the conversion itself on the vision shapes (up to 42 MB per product).
const uint16_t* ToBf16Padded(const float* x, int64_t M, int64_t K, ThreadPool* pool,
                             const RowNorm& norm = {}) {
  thread_local std::unique_ptr<uint16_t[]> buffer;
  thread_local size_t capacity = 0;
  const int64_t Kp = (K + 1) / 2 * 2;
  const size_t need = static_cast<size_t>(M * Kp);
  if (need > capacity) {
    buffer = std::make_unique_for_overwrite<uint16_t[]>(need);
    capacity = need;
  }
  uint16_t* xb = buffer.get();
  ForRows(pool, M, 16, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      ConvertF32ToBf16(NormedRow(x, m, K, norm), xb + m * Kp, K);
      if (Kp != K) xb[m * Kp + K] = 0;
    }
  });
  return xb;
}

// x [M, K] quantized per 32-block for the int8 GEMM (QuantizeActsU8): unsigned bytes [M, K] and scales
// [M, K/32], in the calling thread's grow-only buffers (as ToBf16Padded).
struct U8Acts {
  const uint8_t* q = nullptr;
  const float* s = nullptr;
};
U8Acts ToU8Acts(const float* x, int64_t M, int64_t K, ThreadPool* pool, Isa isa, const RowNorm& norm = {}) {
  thread_local std::unique_ptr<uint8_t[]> q;
  thread_local std::unique_ptr<float[]> s;
  thread_local size_t q_cap = 0, s_cap = 0;
  const size_t nq = static_cast<size_t>(M * K), ns = static_cast<size_t>(M * (K / 32));
  if (nq > q_cap) {
    q = std::make_unique_for_overwrite<uint8_t[]>(nq);
    q_cap = nq;
  }
  if (ns > s_cap) {
    s = std::make_unique_for_overwrite<float[]>(ns);
    s_cap = ns;
  }
  // Plain pointers: inside the workers, q and s would name the workers' own (empty) thread_local buffers.
  uint8_t* qp = q.get();
  float* sp = s.get();
  (void)isa;
  // Rows [m0, m1) of `rows` (x itself, or one normalized row at m0 = 0) to the rows of q and s from `at`.
  auto quantize = [&](const float* rows, int64_t m0, int64_t m1, int64_t at) {
    uint8_t* rq = qp + (at - m0) * K;
    float* rs = sp + (at - m0) * (K / 32);
#if defined(IDEFICS_HAVE_SIMD)
    if (isa == Isa::kAvx512) return kern::avx512::QuantizeActsU8(rows, m0, m1, K, rq, rs);
#endif
    kern::scalar::QuantizeActsU8(rows, m0, m1, K, rq, rs);
  };
  ForRows(pool, M, 16, [&](int64_t m0, int64_t m1) {
    if (!norm.w) return quantize(x, m0, m1, m0);
    for (int64_t m = m0; m < m1; ++m) quantize(NormedRow(x, m, K, norm), 0, 1, m);  // rows are independent
  });
  return {qp, sp};
}

#if defined(IDEFICS_HAVE_SIMD)
// The calling thread's GEMM packing scratch, large enough for either ISA's float panels (ActiveIsa() may
// change between calls in tests) and for the int8 GEMM's panels over K columns; it only grows.
float* PackScratch(int64_t K = 0) {
  thread_local kern::AlignedPtr<float> pack;
  thread_local size_t capacity = 0;
  const size_t need = std::max(
      {kern::avx512::GemmPackFloats(), kern::avx2::GemmPackFloats(), kern::avx512::GemmI8PackFloats(K)});
  if (need > capacity) {
    pack = kern::AllocAligned<float>(need);
    capacity = need;
  }
  return pack.get();
}
#endif

void Gemv(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, ThreadPool* pool,
          const MatMulOptions& opt, Isa isa) {
  const int64_t N = w.rows;
  if (IsQuant(w.format)) {
#if defined(IDEFICS_HAVE_SIMD)
    if (isa == Isa::kAvx512) {
      const int64_t K = w.cols;
      kern::avx512::QuantActs acts;
      kern::avx512::PrepareQuantActs(x, M, K, w.format, &acts);
      ForGemvRows(pool, N,
              [&](int64_t n0, int64_t n1) { kern::avx512::GemvQuant(acts, w, bias, y, n0, n1); });
      return;
    }
    if (isa == Isa::kAvx2) {
      kern::avx2::QuantActs acts;
      kern::avx2::PrepareQuantActs(x, M, w.cols, w.format, &acts);
      ForGemvRows(pool, N,
              [&](int64_t n0, int64_t n1) { kern::avx2::GemvQuant(acts, w, bias, y, n0, n1); });
      return;
    }
#endif
    ForGemvRows(pool, N,
            [&](int64_t n0, int64_t n1) { kern::scalar::GemvQuant(x, M, w, bias, y, n0, n1); });
    return;
  }
  // opt.bf16_dot is ignored here: the GEMV is bandwidth-bound and the vdpbf16ps version (GemvBf16Dot)
  // measured ~10 % slower than converting the bf16 weights exactly to f32 (docs/performance.md), so exact is
  // also faster.
  (void)opt;
#if defined(IDEFICS_HAVE_SIMD)
  if (isa == Isa::kAvx512) {
    ForGemvRows(pool, N,
            [&](int64_t n0, int64_t n1) { kern::avx512::GemvFloat(x, M, w, bias, y, n0, n1); });
    return;
  }
  if (isa == Isa::kAvx2) {
    ForGemvRows(pool, N,
            [&](int64_t n0, int64_t n1) { kern::avx2::GemvFloat(x, M, w, bias, y, n0, n1); });
    return;
  }
#endif
  ForGemvRows(pool, N,
          [&](int64_t n0, int64_t n1) { kern::scalar::GemvFloat(x, M, w, bias, y, n0, n1); });
}

// Whether Gemm runs w on bf16 dot products (and so needs x converted by ToBf16Padded).
bool GemmUsesBf16(const WeightMatrix& w, const MatMulOptions& opt, Isa isa) {
  return (w.panels != nullptr && w.data == nullptr) ||
         (opt.bf16_dot && w.format != WeightFormat::kF32 && isa != Isa::kAvx2);
}

// Whether Gemm runs w on int8 dot products (x quantized by ToU8Acts): Q8_0/Q4_0 rows without prepacked
// panels, on AVX-512 (VNNI) or the scalar twin.
bool GemmUsesI8(const WeightMatrix& w, const MatMulOptions& opt, Isa isa) {
  return opt.int8_dot && IsQuant(w.format) && w.data != nullptr && w.panels == nullptr && isa != Isa::kAvx2;
}

// The copy of x a product of w at M rows reads: none (the GEMV, the float32 GEMM, or nothing to compute), the
// int8 activations of the int8 GEMM (ToU8Acts) or the bf16 activations of the bf16 GEMM (ToBf16Padded).
enum class XConversion { kNone, kI8, kBf16 };
XConversion ConversionFor(const WeightMatrix& w, int64_t M, const MatMulOptions& opt, Isa isa) {
  const bool gemm = (M > GemvMaxRows(w.format, opt) || w.data == nullptr) && w.rows > 0 && w.cols > 0;
  if (!gemm) return XConversion::kNone;
  if (GemmUsesI8(w, opt, isa)) return XConversion::kI8;
  return GemmUsesBf16(w, opt, isa) ? XConversion::kBf16 : XConversion::kNone;
}

// xb_given / x8_given: x already converted by ToBf16Padded / ToU8Acts (MatMulMany shares one conversion), or
// null.
void Gemm(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, ThreadPool* pool,
          const MatMulOptions& opt, Isa isa, const uint16_t* xb_given = nullptr,
          const U8Acts* x8_given = nullptr) {
  const int64_t N = w.rows, K = w.cols;
  // f32 weights always stay f32. AVX2 has no bf16 dot product: there the request runs the (exact, and on AVX2
  // faster than emulated bf16) float32 GEMM instead.
  // Prepacked panels serve the bf16 path, and every product of a matrix kept only as panels.
  const bool i8 = GemmUsesI8(w, opt, isa);
  const bool bf16 = !i8 && GemmUsesBf16(w, opt, isa);
  const bool from_panels = w.panels != nullptr && bf16;
  const uint16_t* xb = bf16 ? (xb_given ? xb_given : ToBf16Padded(x, M, K, pool)) : nullptr;
  const U8Acts x8 = i8 ? (x8_given ? *x8_given : ToU8Acts(x, M, K, pool, isa)) : U8Acts{};
  // Tasks: tiles of tile_n columns × tile_m rows. Every output is one accumulation chain over k whatever the
  // tiling, so the split (which depends on the thread count) never changes the result. Wide column tiles let
  // one x block serve many weight panels; rows are split only as far as needed for a task count that is a
  // multiple of the thread count (each row split repacks that tile's weights once more).
  const int threads = pool ? pool->size() : 1;
  // From prepacked panels a row split costs nothing extra, so column tiles stay at their widest (fewer passes
  // over x: a narrow matrix like the perceiver's k/v, N = 384, otherwise streams x once per 64 columns).
  // The int8 GEMM repacks a q8_0/q4_0 tile cheaply (no float conversion), so at large M it too takes wide
  // column tiles (N / threads, up to the packed width) and splits rows: perceiver k/v (N = 384, M = 4964)
  // 571-575 -> 631-664 GFLOPS, vision q/k/v (N = 1152, M = 1225) 702-724 -> 714-775. From 512 rows: the
  // perceiver projects its context in 512-row blocks (3 runs, best of 2 each: 391-438 -> 395-410 ms).
  int64_t tile_n = kGemmTileNMax;  // from panels
  if (i8 && M >= kGemmWideMinRows) {
    const int64_t per_thread = (N + threads - 1) / threads;
    tile_n = std::min(kGemmTileNMax, (per_thread + kGemmTileNUnit - 1) / kGemmTileNUnit * kGemmTileNUnit);
  } else if (!from_panels) {
    tile_n = std::clamp<int64_t>((N + 4 * threads - 1) / (4 * threads) / kGemmTileNUnit * kGemmTileNUnit,
                                 kGemmTileNUnit, kGemmTileNMax);
  }
  const int64_t n_tiles = (N + tile_n - 1) / tile_n;
  const int64_t m_units = (M + kGemmTileMUnit - 1) / kGemmTileMUnit;
  int64_t m_tiles = std::max<int64_t>(1, (2 * threads + n_tiles - 1) / n_tiles);
  while (m_tiles < threads && (n_tiles * m_tiles) % threads != 0) ++m_tiles;
  m_tiles = std::min(m_tiles, m_units);
  const int64_t tile_m = (m_units + m_tiles - 1) / m_tiles * kGemmTileMUnit;
  const int64_t tasks = n_tiles * ((M + tile_m - 1) / tile_m);
  auto task = [&](int64_t t) {
    const int64_t n0 = (t % n_tiles) * tile_n, n1 = std::min(N, n0 + tile_n);
    const int64_t m0 = (t / n_tiles) * tile_m, m1 = std::min(M, m0 + tile_m);
    if (i8) {
#if defined(IDEFICS_HAVE_SIMD)
      if (isa == Isa::kAvx512)
        return kern::avx512::GemmI8(x8.q, x8.s, K, m0, m1, w, bias, y, n0, n1, PackScratch(K));
#endif
      return kern::scalar::GemmI8(x8.q, x8.s, K, m0, m1, w, bias, y, n0, n1);
    }
#if defined(IDEFICS_HAVE_SIMD)
    if (from_panels && isa == Isa::kAvx512) {
      kern::avx512::GemmBf16Panels(xb, K, m0, m1, w, bias, y, n0, n1);
      return;
    }
    if (isa != Isa::kScalar && !from_panels) {
      float* pack = PackScratch();
      if (isa == Isa::kAvx2) {
        kern::avx2::GemmF32(x, K, m0, m1, w, bias, y, n0, n1, pack);
      } else if (bf16) {
        kern::avx512::GemmBf16(xb, K, m0, m1, w, bias, y, n0, n1, pack);
      } else {
        kern::avx512::GemmF32(x, K, m0, m1, w, bias, y, n0, n1, pack);
      }
      return;
    }
#endif
    if (from_panels) {
      kern::scalar::GemmBf16Panels(xb, K, m0, m1, w, bias, y, n0, n1);
    } else if (bf16) {
      kern::scalar::GemmBf16(xb, K, m0, m1, w, bias, y, n0, n1);
    } else {
      kern::scalar::GemmF32(x, K, m0, m1, w, bias, y, n0, n1);
    }
  };
  if (pool && pool->size() > 1) {
    pool->ParallelTasks(tasks, task);
  } else {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  }
}

}  // namespace

size_t Bf16PanelBytes(int64_t rows, int64_t cols) {
  return static_cast<size_t>((rows + 63) / 64) * static_cast<size_t>((cols + 1) / 2) * 64 * sizeof(uint32_t);
}

void PackBf16Panels(const WeightMatrix& w, void* out, ThreadPool* pool) {
  IDEFICS_CHECK(w.data != nullptr && reinterpret_cast<uintptr_t>(out) % 64 == 0);
  uint32_t* o = static_cast<uint32_t*>(out);
  const bool simd = ActiveIsa() == Isa::kAvx512;
  (void)simd;
  ForRows(pool, (w.rows + 63) / 64, 1, [&](int64_t p0, int64_t p1) {
#if defined(IDEFICS_HAVE_SIMD)
    if (simd) return kern::avx512::PackBf16Panels(w, p0, p1, o, PackScratch());
#endif
    kern::scalar::PackBf16Panels(w, p0, p1, o);
  });
}

void GemvStats::Add(int64_t rows, int64_t cols, int matrices, WeightFormat format, double seconds,
                    double bytes) {
  for (GemvShapeStats& e : shapes) {
    if (e.rows == rows && e.cols == cols && e.matrices == matrices && e.format == format) {
      ++e.calls;
      e.seconds += seconds;
      e.bytes += bytes;
      return;
    }
  }
  shapes.push_back({rows, cols, matrices, format, 1, seconds, bytes});
}

GemvStats* SetGemvStats(GemvStats* stats) {
  GemvStats* const previous = t_gemv_stats;
  t_gemv_stats = stats;
  return previous;
}

int64_t GemvMaxRows(WeightFormat f) {
  return f == WeightFormat::kQ4_0 ? 32 : 8;
}

int64_t GemvMaxRows(WeightFormat f, const MatMulOptions& options) {
  // The int8 GEMM needs no float packing: against Q4_0's GEMV (4 rows per pass over the weights) it wins
  // from ~12 rows (8-layer q4_0 prefill, tok/s, GEMV / int8 GEMM: 12 rows 70 / 74-76, 16 rows 82 / 85-87,
  // 24 rows 91 / 109-110, 32 rows 88 / 117-135; docs/performance.md).
  if (f == WeightFormat::kQ4_0 && options.int8_dot && ActiveIsa() == Isa::kAvx512) return 8;
  return GemvMaxRows(f);
}

void MatMul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, ThreadPool* pool) {
  MatMul(x, M, w, bias, y, pool, MatMulOptions{});
}

void MatMul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, ThreadPool* pool,
            const MatMulOptions& options) {
  IDEFICS_CHECK(w.data != nullptr || w.panels != nullptr || w.rows == 0);
  const int64_t N = w.rows, K = w.cols;
  if (M <= 0 || N <= 0) return;
  if (IsQuant(w.format)) IDEFICS_CHECK_MSG(K % 32 == 0, "MatMul: Q8_0/Q4_0 need cols % 32 == 0");
  if (K == 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y[m * N + n] = bias ? bias[n] : 0.f;
    return;
  }
  const Isa isa = ActiveIsa();
  if (M <= GemvMaxRows(w.format, options) && w.data != nullptr) {
    const GemvTimer timer(pool, N, K, 1, w.format, static_cast<double>(w.row_bytes()) * N);
    Gemv(x, M, w, bias, y, pool, options, isa);
  } else {
    Gemm(x, M, w, bias, y, pool, options, isa);
  }
}

void MatMulMany(const float* x, int64_t M, const std::vector<const WeightMatrix*>& ws,
                const std::vector<float*>& ys, ThreadPool* pool, const MatMulOptions& options) {
  IDEFICS_CHECK(ws.size() == ys.size());
  if (ws.empty() || M <= 0) return;
  const WeightFormat f = ws[0]->format;
  const int64_t K = ws[0]->cols;
  bool shared = M <= GemvMaxRows(f, options) && K > 0;
  std::vector<int64_t> first(ws.size() + 1, 0);  // matrix i owns rows [first[i], first[i+1]) of the range
  for (size_t i = 0; i < ws.size(); ++i) {
    IDEFICS_CHECK(ws[i]->cols == K && (ws[i]->data != nullptr || ws[i]->panels != nullptr || ws[i]->rows == 0));
    shared = shared && ws[i]->format == f && (ws[i]->data != nullptr || ws[i]->rows == 0);
    first[i + 1] = first[i] + ws[i]->rows;
  }
  if (!shared) {
    // Large M: one bf16 (int8) conversion of x serves every product that takes the bf16 (int8) GEMM.
    const Isa isa = ActiveIsa();
    const uint16_t* xb = nullptr;
    U8Acts x8;
    for (size_t i = 0; i < ws.size(); ++i) {
      const WeightMatrix& w = *ws[i];
      const XConversion conversion = ConversionFor(w, M, options, isa);
      if (conversion == XConversion::kI8) {
        IDEFICS_CHECK_MSG(K % 32 == 0, "MatMul: Q8_0/Q4_0 need cols % 32 == 0");
        if (!x8.q) x8 = ToU8Acts(x, M, K, pool, isa);
        Gemm(x, M, w, nullptr, ys[i], pool, options, isa, nullptr, &x8);
      } else if (conversion == XConversion::kBf16) {
        if (IsQuant(w.format)) IDEFICS_CHECK_MSG(K % 32 == 0, "MatMul: Q8_0/Q4_0 need cols % 32 == 0");
        if (!xb) xb = ToBf16Padded(x, M, K, pool);
        Gemm(x, M, w, nullptr, ys[i], pool, options, isa, xb);
      } else {
        MatMul(x, M, w, nullptr, ys[i], pool, options);
      }
    }
    return;
  }
  if (IsQuant(f)) IDEFICS_CHECK_MSG(K % 32 == 0, "MatMul: Q8_0/Q4_0 need cols % 32 == 0");
  const Isa isa = ActiveIsa();
  const bool simd = isa == Isa::kAvx512;
  (void)simd;
#if defined(IDEFICS_HAVE_SIMD)
  kern::avx512::QuantActs acts;
  if (simd && IsQuant(f)) kern::avx512::PrepareQuantActs(x, M, K, f, &acts);
  kern::avx2::QuantActs acts2;
  if (isa == Isa::kAvx2 && IsQuant(f)) kern::avx2::PrepareQuantActs(x, M, K, f, &acts2);
#endif
  double bytes = 0;
  for (const WeightMatrix* w : ws) bytes += static_cast<double>(w->row_bytes()) * w->rows;
  const GemvTimer timer(pool, first.back(), K, static_cast<int>(ws.size()), f, bytes);
  // Rows [b, e) of the concatenated range, each matrix's share with the same kernel as Gemv uses.
  auto rows = [&](int64_t b, int64_t e) {
    for (size_t i = 0; i < ws.size(); ++i) {
      const int64_t lo = std::max(b, first[i]) - first[i], hi = std::min(e, first[i + 1]) - first[i];
      if (lo >= hi) continue;
#if defined(IDEFICS_HAVE_SIMD)
      if (simd) {
        if (IsQuant(f)) {
          kern::avx512::GemvQuant(acts, *ws[i], nullptr, ys[i], lo, hi);
        } else {
          kern::avx512::GemvFloat(x, M, *ws[i], nullptr, ys[i], lo, hi);
        }
        continue;
      }
      if (isa == Isa::kAvx2) {
        if (IsQuant(f)) {
          kern::avx2::GemvQuant(acts2, *ws[i], nullptr, ys[i], lo, hi);
        } else {
          kern::avx2::GemvFloat(x, M, *ws[i], nullptr, ys[i], lo, hi);
        }
        continue;
      }
#endif
      if (IsQuant(f)) {
        kern::scalar::GemvQuant(x, M, *ws[i], nullptr, ys[i], lo, hi);
      } else {
        kern::scalar::GemvFloat(x, M, *ws[i], nullptr, ys[i], lo, hi);
      }
    }
  };
  ForGemvRows(pool, first.back(), rows);
}

void RmsNormMatMulMany(const float* x, int64_t M, const float* norm_w, float eps,
                       const std::vector<const WeightMatrix*>& ws, const std::vector<float*>& ys,
                       ThreadPool* pool, const MatMulOptions& options) {
  IDEFICS_CHECK(ws.size() == ys.size());
  if (ws.empty() || M <= 0) return;
  const int64_t K = ws[0]->cols;
  const Isa isa = ActiveIsa();
  // Whether every product takes the int8 (the bf16) GEMM: then one conversion of the normalized rows serves
  // them all, and no normalized row is ever stored in float.
  const XConversion conversion = ConversionFor(*ws[0], M, options, isa);
  bool fused = conversion != XConversion::kNone;
  for (const WeightMatrix* w : ws) {
    IDEFICS_CHECK(w->cols == K && (w->data != nullptr || w->panels != nullptr || w->rows == 0));
    if (IsQuant(w->format)) IDEFICS_CHECK_MSG(K % 32 == 0, "MatMul: Q8_0/Q4_0 need cols % 32 == 0");
    fused = fused && ConversionFor(*w, M, options, isa) == conversion;
  }
  const bool all_i8 = fused && conversion == XConversion::kI8,
             all_bf16 = fused && conversion == XConversion::kBf16;
  const RowNorm norm{norm_w, eps};
  // Rows go through in blocks of equal size (rows are independent, and no block is small enough to leave the
  // GEMM for the GEMV, so the blocking never changes a result): fused, up to 2048 rows at a time (8 MB of
  // int8 activations where a perceiver context of 4964 rows would hold 20 MB); otherwise normalized in
  // float32 into the calling thread's grow-only buffer, up to 512 rows at a time (not all M rows: the whole
  // context would be 80 MB of fresh memory).
  const int64_t max_block = fused ? kFusedBlockRows : kNormBlockRows;
  const int64_t blocks = (M + max_block - 1) / max_block, block = (M + blocks - 1) / blocks;
  thread_local std::vector<float> normed;
  if (!fused && normed.size() < static_cast<size_t>(block * K)) normed.resize(block * K);
  std::vector<float*> yb(ys.size());
  for (int64_t r0 = 0; r0 < M; r0 += block) {
    const int64_t m = std::min(block, M - r0);
    for (size_t i = 0; i < ys.size(); ++i) yb[i] = ys[i] + r0 * ws[i]->rows;
    if (!fused) {
      RmsNorm(x + r0 * K, m, K, norm_w, eps, normed.data(), pool);
      MatMulMany(normed.data(), m, ws, yb, pool, options);
      continue;
    }
    const U8Acts x8 = all_i8 ? ToU8Acts(x + r0 * K, m, K, pool, isa, norm) : U8Acts{};
    const uint16_t* xb = all_bf16 ? ToBf16Padded(x + r0 * K, m, K, pool, norm) : nullptr;
    for (size_t i = 0; i < ws.size(); ++i)
      Gemm(nullptr, m, *ws[i], nullptr, yb[i], pool, options, isa, xb, all_i8 ? &x8 : nullptr);
  }
}

}  // namespace idefics
