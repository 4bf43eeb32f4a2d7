// AVX-512 VNNI GEMM for Q8_0 / Q4_0 weights at large M (prefill, and the image side of a quantized folder):
// the activations are quantized to int8 per 32-block exactly as the decode GEMV quantizes them (stored as
// unsigned q + 128), the weights are unpacked per call to signed bytes in 64-column panels of 4-k groups (256
// columns over all of K at once, then every block of rows runs all of K against them), and 3×64 register
// tiles sum each block in int32 with vpdpbusd before scaling it into float32. Against the bf16 GEMM: twice
// the multiply-adds per instruction and a packing that never goes through float. Twin: kern::scalar::GemmI8.
// Mirrors nn.Linear.
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsic headers as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "kernels/matmul_kernels.h"
#include "kernels/pack_avx512.h"

namespace idefics::kern::avx512 {

namespace {

constexpr int kNR = kPanelCols;  // columns per panel (4 zmm)
constexpr int kMR = 3;           // x rows per tile: 3 × 4 int32 block sums + 3 × 4 float accumulators
constexpr int64_t kKC =
    512;  // k per packed block (a multiple of 32): a 32 KiB panel stays in L1 (2048: -20 %)
constexpr int64_t kNC = 256;  // columns packed at once (4 panels), shared by every x block
constexpr int64_t kMC = 192;  // x rows per pass over the packed panels (all of K): their outputs stay in L2
constexpr int64_t kBlocksKC = kKC / 32;
// k packed at once (a multiple of kKC): all of K for the 4096-wide inputs, the 14336-wide down
// projections in four passes, so the packing scratch stays at 1.5 MB per thread (over all of K: 5.4 MB).
constexpr int64_t kKSpan = 8 * kKC;
// Bytes ahead of the block being unpacked that UnpackRow prefetches: a row is read once, front to back, and
// the hardware prefetcher alone left the unpacking waiting on memory (perceiver MLP, M = 64, one thread:
// 305 -> 324-330 GFLOPS at 1-2 KiB ahead, 284 at 512 bytes).
constexpr int kUnpackPrefetchBytes = 2048;

// One packed panel block: q [kc/4][64] words of 4 signed weight bytes (k order), then the block scales
// s [kc/32][64] float and the offset corrections c [kc/32][64] int32 = -128 · (sum of the block's weights),
// which cancel the +128 of the unsigned activations (PanelCorrections).
constexpr size_t kPanelQBytes = kKC * kNR;
constexpr size_t kPanelSBytes = kBlocksKC * kNR * 4;
constexpr size_t kPanelBytes = kPanelQBytes + 2 * kPanelSBytes;
alignas(64) const float kZeroWords[kKC / 4] = {};

// Row n, k in [k0, k0 + kc): signed bytes (q - 8 for Q4_0) in k order to q, each block's scale to s[b * 64].
void UnpackRow(const WeightMatrix& w, int64_t n, int64_t k0, int64_t kc, int8_t* q, float* s) {
  const bool q4 = w.format == WeightFormat::kQ4_0;
  const int64_t bb = q4 ? 18 : 34;
  const uint8_t* p = w.row(n) + (k0 / 32) * bb;
  for (int64_t b = 0; b < kc / 32; ++b, p += bb) {
    _mm_prefetch(reinterpret_cast<const char*>(p) + kUnpackPrefetchBytes, _MM_HINT_T0);
    uint16_t s16;
    std::memcpy(&s16, p, 2);
    __m128i lo, hi;
    if (q4) {
      UnpackQ4(p + 2, &lo, &hi);
    } else {
      lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
      hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 18));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b + 16), hi);
    s[b * kNR] = _cvtsh_ss(s16);
  }
}

// The offset corrections of a packed panel block's first nblocks blocks, c[b][j] = -128 · (sum of column j's
// 32 weights in block b), summed from the transposed words (a vpdpbusd of ones adds a word's 4 bytes) for 16
// columns at once rather than row by row (one thread, GFLOPS: perceiver MLP q8_0, M = 64, 373-409 -> 425;
// projection gate q4_0, M = 256, 491-539 -> 555-562).
void PanelCorrections(uint8_t* panel, int64_t nblocks) {
  const int32_t* q = reinterpret_cast<const int32_t*>(panel);
  int32_t* c = reinterpret_cast<int32_t*>(panel + kPanelQBytes + kPanelSBytes);
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t b = 0; b < nblocks; ++b)
    for (int j = 0; j < kNR / 16; ++j) {
      __m512i sum = _mm512_setzero_si512();
      for (int t = 0; t < 8; ++t)
        sum = _mm512_dpbusd_epi32(sum, ones, _mm512_load_si512(q + (b * 8 + t) * kNR + 16 * j));
      _mm512_store_si512(c + b * kNR + 16 * j,
                         _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7)));
    }
}

// Packs rows [n0, n0 + nvalid) (zero columns after), k in [k_begin, k_begin + k_len), into the panel blocks
// out(kb) of its k blocks kb: each row is unpacked front to back into tmp (64 rows of k_len bytes), then each
// k block transposed.
template <typename PanelAt>
void PackPanels(const WeightMatrix& w, int64_t n0, int nvalid, int64_t k_begin, int64_t k_len, int8_t* tmp,
                const PanelAt& out) {
  const int64_t kblocks = (k_len + kKC - 1) / kKC;
  for (int j = 0; j < kNR; ++j)
    for (int64_t kb = 0; kb < kblocks; ++kb) {
      const int64_t k0 = kb * kKC, kc = std::min(kKC, k_len - k0);
      float* s = reinterpret_cast<float*>(out(kb) + kPanelQBytes);
      if (j < nvalid) {
        UnpackRow(w, n0 + j, k_begin + k0, kc, tmp + j * k_len + k0, s + j);
      } else {
        for (int64_t b = 0; b < kc / 32; ++b) s[b * kNR + j] = 0.f;
      }
    }
  for (int64_t kb = 0; kb < kblocks; ++kb) {
    const int64_t k0 = kb * kKC, kc = std::min(kKC, k_len - k0);
    const float* src[kNR];
    for (int j = 0; j < kNR; ++j)
      src[j] = j < nvalid ? reinterpret_cast<const float*>(tmp + j * k_len + k0) : kZeroWords;
    TransposePanel(src, kc / 4, kZeroWords, reinterpret_cast<float*>(out(kb)));
    PanelCorrections(out(kb), kc / 32);
  }
}

// c[MR][64] (= or +=) the blocks of a[MR][32 · nblocks] (unsigned bytes, row stride lda; scales as[i * las +
// b]) times one packed panel block: per block an exact int32 sum, then acc = fma(float(sum), ws · xs, acc).
template <int MR>
void Tile(const uint8_t* a, int64_t lda, const float* as, int64_t las, const uint8_t* panel, int64_t nblocks,
          float* c, int64_t ldc, const __mmask16* mk, bool load_c) {
  const int32_t* bq = reinterpret_cast<const int32_t*>(panel);
  const float* bs = reinterpret_cast<const float*>(panel + kPanelQBytes);
  const int32_t* bc = reinterpret_cast<const int32_t*>(panel + kPanelQBytes + kPanelSBytes);
  __m512 acc[MR][4];
  LoadTileC<MR>(acc, c, ldc, mk, load_c);
  for (int64_t b = 0; b < nblocks; ++b) {
    __m512i sum[MR][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m512i corr = _mm512_load_si512(bc + b * kNR + 16 * j);
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) sum[i][j] = corr;
    }
    const int32_t* qb = bq + b * 8 * kNR;
    const uint8_t* ab = a + 32 * b;
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) {
      __m512i w0 = _mm512_load_si512(qb + t * kNR), w1 = _mm512_load_si512(qb + t * kNR + 16);
      __m512i w2 = _mm512_load_si512(qb + t * kNR + 32), w3 = _mm512_load_si512(qb + t * kNR + 48);
      // Keeps the four weight vectors in registers: left alone, GCC folds each load into every row's
      // vpdpbusd (12 loads where 4 do), and the load ports, not the dot products, set the pace (one thread,
      // GFLOPS: perceiver k/v 380 -> 435-460, projection gate 415 -> 510-525, text gate/up q4_0 416 -> 550).
      asm("" : "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3));
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) {
        int32_t v;
        std::memcpy(&v, ab + i * lda + 4 * t, 4);
        const __m512i av = _mm512_set1_epi32(v);
        sum[i][0] = _mm512_dpbusd_epi32(sum[i][0], av, w0);
        sum[i][1] = _mm512_dpbusd_epi32(sum[i][1], av, w1);
        sum[i][2] = _mm512_dpbusd_epi32(sum[i][2], av, w2);
        sum[i][3] = _mm512_dpbusd_epi32(sum[i][3], av, w3);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m512 xs = _mm512_set1_ps(as[i * las + b]);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[i][j]),
                                    _mm512_mul_ps(_mm512_load_ps(bs + b * kNR + 16 * j), xs), acc[i][j]);
    }
  }
  StoreTileC<MR>(acc, c, ldc, mk);
}

}  // namespace

size_t GemmI8PackFloats(int64_t K) {
  const int64_t span = std::min(K, kKSpan), kblocks = (span + kKC - 1) / kKC;
  // The panel blocks of kNC columns over a k span, then 64 rows of a span of signed weight bytes.
  return (kNC / kNR * kblocks * kPanelBytes + kNR * span) / sizeof(float) + 1;
}

void GemmI8(const uint8_t* xq, const float* xs, int64_t K, int64_t m0, int64_t m1, const WeightMatrix& w,
            const float* bias, float* y, int64_t n0, int64_t n1, float* pack) {
  IDEFICS_CHECK(K % 32 == 0 && (w.format == WeightFormat::kQ8_0 || w.format == WeightFormat::kQ4_0));
  const int64_t N = w.rows, nb = K / 32, span_blocks = (std::min(K, kKSpan) + kKC - 1) / kKC;
  uint8_t* packed = reinterpret_cast<uint8_t*>(pack);
  int8_t* tmp = reinterpret_cast<int8_t*>(packed + kNC / kNR * span_blocks * kPanelBytes);
  for (int64_t nc0 = n0; nc0 < n1; nc0 += kNC) {
    const int64_t nc1 = std::min(n1, nc0 + kNC);
    const int panels = static_cast<int>((nc1 - nc0 + kNR - 1) / kNR);
    __mmask16 mk[kNC / kNR][4];
    for (int p = 0; p < panels; ++p)
      ColumnMasks(static_cast<int>(std::min<int64_t>(kNR, nc1 - nc0 - p * kNR)), mk[p]);
    // The chunk's columns over a k span (all of K up to kKSpan) are packed once, panel by panel with the k
    // blocks in order (each row is read front to back), and then every row block runs the whole span against
    // them: a row block's outputs stay in cache from one k block to the next instead of streaming through
    // memory once per k block.
    auto panel_at = [&](int p, int64_t kb) { return packed + (p * span_blocks + kb) * kPanelBytes; };
    for (int64_t ks = 0; ks < K; ks += kKSpan) {
      const int64_t ks_len = std::min(kKSpan, K - ks), kblocks = (ks_len + kKC - 1) / kKC;
      for (int p = 0; p < panels; ++p)
        PackPanels(w, nc0 + p * kNR, static_cast<int>(std::min<int64_t>(kNR, nc1 - nc0 - p * kNR)), ks,
                   ks_len, tmp, [&](int64_t kb) { return panel_at(p, kb); });
      for (int64_t mc0 = m0; mc0 < m1; mc0 += kMC) {
        const int64_t mc1 = std::min(m1, mc0 + kMC);
        for (int64_t kb = 0; kb < kblocks; ++kb) {
          const int64_t k0 = ks + kb * kKC, kc = std::min(kKC, K - k0);
          for (int p = 0; p < panels; ++p) {
            const uint8_t* panel = panel_at(p, kb);
            for (int64_t m = mc0; m < mc1; m += kMR) {
              const uint8_t* a = xq + m * K + k0;
              const float* as = xs + m * nb + k0 / 32;
              float* c = y + m * N + nc0 + p * kNR;
              switch (std::min<int64_t>(kMR, mc1 - m)) {
                case 1:
                  Tile<1>(a, K, as, nb, panel, kc / 32, c, N, mk[p], k0 > 0);
                  break;
                case 2:
                  Tile<2>(a, K, as, nb, panel, kc / 32, c, N, mk[p], k0 > 0);
                  break;
                default:
                  Tile<3>(a, K, as, nb, panel, kc / 32, c, N, mk[p], k0 > 0);
                  break;
              }
            }
          }
        }
      }
    }
    if (bias)
      for (int64_t m = m0; m < m1; ++m)
        for (int64_t n = nc0; n < nc1; ++n) y[m * N + n] += bias[n];
  }
}

}  // namespace idefics::kern::avx512
