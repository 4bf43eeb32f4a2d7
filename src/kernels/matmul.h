// Matrix products against weight matrices stored in any supported format. The one entry point the model
// uses for every Linear layer: y[M, N] = x[M, K] · Wᵀ (+ bias), W stored row-major [N, K] like nn.Linear.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace idefics {

class ThreadPool;

enum class WeightFormat : uint8_t {
  kF32,   // float32
  kBF16,  // bfloat16 (products accumulated in float32)
  kF16,   // float16
  kQ8_0,  // blocks of 32: f16 scale + 32 int8 (34 bytes)
  kQ4_0,  // blocks of 32: f16 scale + 16 bytes of 4-bit values (18 bytes), value = (q - 8) * scale
};

const char* WeightFormatName(WeightFormat f);
// Bytes of one row of `cols` elements (cols must be a multiple of 32 for the block formats). Inline: the
// kernels ask for it once per row (out of line it was 0.4 % of a decode profile).
inline size_t WeightRowBytes(WeightFormat f, int64_t cols) {
  switch (f) {
    case WeightFormat::kF32:
      return static_cast<size_t>(cols) * 4;
    case WeightFormat::kBF16:
    case WeightFormat::kF16:
      return static_cast<size_t>(cols) * 2;
    case WeightFormat::kQ8_0:
      return static_cast<size_t>(cols / 32) * 34;
    case WeightFormat::kQ4_0:
      return static_cast<size_t>(cols / 32) * 18;
  }
  return 0;
}

// A view of a weight matrix; the bytes are owned elsewhere (an mmapped file or a converted buffer).
struct WeightMatrix {
  WeightFormat format = WeightFormat::kF32;
  int64_t rows = 0;  // N: output features
  int64_t cols = 0;  // K: input features
  const void* data = nullptr;
  // Optional: the same matrix as bf16 GEMM panels (PackBf16Panels), 64-byte aligned, owned elsewhere. When
  // set, the large-M bf16 GEMM reads them instead of re-packing the rows per call (bitwise the same result),
  // and `data` may be null: every product of such a matrix then runs the bf16 GEMM, whatever M.
  const void* panels = nullptr;

  size_t row_bytes() const { return WeightRowBytes(format, cols); }
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(); }
};

// How MatMul may trade accuracy for speed. The default is "exact": float32 arithmetic on exactly converted
// weights (f32/bf16/f16), except that Q8_0/Q4_0 weights at M <= GemvMaxRows(format) quantize the activations
// to int8 per 32-block (error <= max|x_block|/254 per element) so the dot products run on int8 units (VNNI
// on AVX-512, vpmaddubsw on AVX2).
struct MatMulOptions {
  // bf16 weights (and q8_0/q4_0/f16 in the large-M GEMM): round the activations to bf16
  // (round-to-nearest-even) and use bf16 dot products with float32 accumulation (vdpbf16ps). Relative error
  // per product <= 2^-8 (the bf16 unit roundoff of the activation), <= 2^-7 for non-bf16 weights (rounded to
  // bf16 too). About 2x faster at large M. Ignored at M <= GemvMaxRows(format): the bandwidth-bound GEMV
  // measured no faster with bf16 dot products (docs/performance.md), so the exact path is used there. Also
  // ignored on AVX2 (no bf16 dot instruction; the float32 GEMM runs instead).
  bool bf16_dot = false;
  // Q8_0/Q4_0 weights in the large-M GEMM: quantize the activations to int8 per 32-block exactly as the GEMV
  // does at small M (so prefill and decode see the same arithmetic) and multiply on int8 dot products (VNNI
  // vpdpbusd, exact int32 block sums scaled into float32). Takes precedence over bf16_dot for those weights;
  // ignored on AVX2 (no AVX-512 VNNI) and for matrices with prepacked bf16 panels.
  bool int8_dot = false;
};

// Up to this many rows of x, MatMul runs the matrix-vector (decode) kernels, 4 rows per pass over the
// weights; more rows use the blocked GEMM, whose weight packing only pays off from there (measured crossover,
// single core, 4096×4096: f32 ~12, bf16 ~16, q8_0 ~10, q4_0 ~64 rows; docs/performance.md).
int64_t GemvMaxRows(WeightFormat f);
// The same for a product with these options: Q4_0 with int8_dot on AVX-512 switches to the int8 GEMM after
// 8 rows (it beats the 4-row GEMV passes from ~12 rows on).
int64_t GemvMaxRows(WeightFormat f, const MatMulOptions& options);

// y[M, N] = x[M, K] · Wᵀ + bias[N] (bias may be null). x and y are row-major float32 and must not alias.
// Uses the pool when given. For a given M, format and options the result is bitwise independent of the
// thread count (work is split over output rows/tiles only, never over K). Dispatches on ActiveIsa().
void MatMul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, ThreadPool* pool);
void MatMul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, ThreadPool* pool,
            const MatMulOptions& options);

// Several products of the same x without bias: ys[i][M, N_i] = x · ws[i]ᵀ (all ws[i].cols equal). In the
// GEMV regime (M <= GemvMaxRows, one format) the activations are prepared once and one pool dispatch covers
// the rows of all matrices (decode: q/k/v, gate/up); otherwise one MatMul each. Results are bitwise those of
// separate MatMul calls.
void MatMulMany(const float* x, int64_t M, const std::vector<const WeightMatrix*>& ws,
                const std::vector<float*>& ys, ThreadPool* pool, const MatMulOptions& options);

// ys[i] = RMSNorm(x) · ws[i]ᵀ, with RMSNorm(x) the rows of x normalized as RmsNorm (norm.h) does with weight
// norm_w [K] and eps: bitwise the result of RmsNorm into a buffer and then MatMulMany. Where every product
// takes the int8 (or every one the bf16) GEMM, each row is normalized into a scratch row in cache and
// converted at once, so the normalized matrix is never stored in float32 (the perceiver's keys and values
// over an image's whole context: one product instead of 80 MB written and read again); otherwise blocks of
// rows are normalized into a reused buffer.
void RmsNormMatMulMany(const float* x, int64_t M, const float* norm_w, float eps,
                       const std::vector<const WeightMatrix*>& ws, const std::vector<float*>& ys,
                       ThreadPool* pool, const MatMulOptions& options);

// The large-M bf16 GEMM's weight layout, made once instead of per call: panels of 64 output rows (the last
// zero-padded), each holding k in bf16 pairs, panel[k/2][j] = (W[64p+j][k], W[64p+j][k+1]) as one 32-bit word
// (a zero pad when K is odd); non-bf16 formats are converted to float32 exactly, then rounded to bf16 (nearest
// even), as the per-call packing does. Worth it for weights that only meet large M (vision encoder, connector).
size_t Bf16PanelBytes(int64_t rows, int64_t cols);
// Fills `out` (Bf16PanelBytes, 64-byte aligned) from w.data; rows split over the pool (bitwise the same for
// any thread count). Dispatches on ActiveIsa() (an AVX-512 kernel and its scalar twin).
void PackBf16Panels(const WeightMatrix& w, void* out, ThreadPool* pool);

// Where decode's time goes (`idefics bench`): while a GemvStats is installed on a thread, every
// matrix-vector product that thread dispatches on a pool (M <= GemvMaxRows; a MatMulMany of several matrices
// counts once, under their summed rows) adds its wall time and weight bytes under its shape. Products run
// without a pool (attention's per-head score products inside pool tasks) and other threads are not counted.
struct GemvShapeStats {
  int64_t rows = 0, cols = 0;  // output rows (summed over the matrices of a MatMulMany), K
  int matrices = 1;
  WeightFormat format = WeightFormat::kF32;
  int64_t calls = 0;
  double seconds = 0, bytes = 0;
};
struct GemvStats {
  std::vector<GemvShapeStats> shapes;  // in order of first call
  void Add(int64_t rows, int64_t cols, int matrices, WeightFormat format, double seconds, double bytes);
};
// Installs `stats` for the calling thread (nullptr stops collecting); returns the previous collector.
GemvStats* SetGemvStats(GemvStats* stats);

// Reference (scalar) implementation; SIMD paths are tested against it.
void MatMulRef(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);

// Dequantizes row r of W into out[cols] as float32.
void DequantizeRow(const WeightMatrix& w, int64_t r, float* out);
// Dequantizes elements [k0, k0 + len) of row r (k0 and len multiples of 32 for the block formats).
void DequantizeRowSegment(const WeightMatrix& w, int64_t r, int64_t k0, int64_t len, float* out);

// Quantizers for building Q8_0 / Q4_0 weights (k must be a multiple of 32; dst holds WeightRowBytes bytes).
// Q8_0: scale d = max|x|/127 stored as f16; q = round(x / d) with the f16-rounded d, clamped to [-127, 127].
// Q4_0: d = m / -8 where m is the element of largest magnitude (sign kept), q = clamp(round(x / d) + 8, 0,
// 15). Round-trip error per element: Q8_0 <= d/2 (+ f16 scale rounding), Q4_0 <= |d| (the +8 side clamps).
void QuantizeRowQ8_0(const float* x, int64_t k, void* dst);
void QuantizeRowQ4_0(const float* x, int64_t k, void* dst);

}  // namespace idefics
