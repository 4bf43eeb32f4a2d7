// Short machine probes for `idefics bench`: sustained memory read bandwidth and peak FMA throughput, measured
// with the same thread pool the model uses. Mirrors no reference class.
#pragma once

namespace idefics {

class ThreadPool;

// Read bandwidth in GB/s (1e9 bytes/s) over a 256 MiB buffer, every pool thread streaming its own slice;
// best of a few passes. Takes about 0.5 s (mostly touching the buffer once).
double MeasureReadBandwidthGBs(ThreadPool& pool);

// Peak arithmetic rate in GFLOPS (1e9 flop/s, an FMA = 2 flop) of register-only FMA chains on every pool
// thread: float32 FMA, or bf16 dot products (vdpbf16ps, 4 flop per lane) when bf16 is true. ~0.25 s. On an
// AVX2 CPU (or with IDEFICS_ISA=avx2) bf16 reports the 8-lane f32 FMA rate (the engine runs bf16 requests in
// f32 there); without AVX2 it measures the scalar loop.
double MeasurePeakGflops(ThreadPool& pool, bool bf16);

// Peak int8 dot-product rate in GOPS (a multiply-add = 2 op) of register-only vpdpbusd chains on every pool
// thread (64 multiply-adds per instruction): the ceiling of the int8 GEMM that q8_0/q4_0 weights use at
// large M. 0 without AVX-512 VNNI (or below that ISA level). ~0.1 s.
double MeasurePeakInt8Gops(ThreadPool& pool);

}  // namespace idefics
