// fp32 GEMM throughput on one core: hepml's GEMM (operands as given, and with
// B prepacked as constant weights are), OpenBLAS sgemm (one thread) and a
// naive loop, for square and skinny shapes; plus the core's fp32 peak,
// measured with a tight loop of independent FMAs.
//
//   build/bench/gemm_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true --benchmark_min_time=0.2
//
// Counters: GFLOPS (2*m*n*k per second) and pct_peak (of the measured peak).
// The peak is printed first (context "fp32_peak_gflops"): the best of several
// runs of 12 independent accumulator chains of the widest FMA the CPU has
// (AVX-512: 16 lanes, AVX2: 8 lanes), 2 flops per lane per FMA. A core with
// two FMA pipes of the full width doing one each per cycle reaches
// 2 pipes x lanes x 2 flops x clock; one that splits 512-bit FMAs in two
// halves (AMD Zen 4) reaches the same flops per cycle with either width.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include <immintrin.h>

#include "ops/gemm.h"
#include "ops/linalg.h"

#if HEPML_HAVE_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);
#endif

namespace {

// ---------------------------------------------------------------------------
// Peak: 12 independent FMA chains (more than latency x pipes = 4 x 2), so
// throughput, not latency, bounds the loop.

// Written out as twelve named accumulators (an array would live in memory).
#define HEPML_FMA_PEAK_BODY(V, SET, FMA, LANES)                                        \
  constexpr int64_t kIters = 20'000'000;                                               \
  const V x = SET(1e-7f);                                                              \
  V a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x,    \
    a10 = x, a11 = x;                                                                  \
  const double t0 = CpuSeconds();                                                      \
  for (int64_t i = 0; i < kIters; ++i) {                                               \
    a0 = FMA(x, x, a0), a1 = FMA(x, x, a1), a2 = FMA(x, x, a2), a3 = FMA(x, x, a3);    \
    a4 = FMA(x, x, a4), a5 = FMA(x, x, a5), a6 = FMA(x, x, a6), a7 = FMA(x, x, a7);    \
    a8 = FMA(x, x, a8), a9 = FMA(x, x, a9), a10 = FMA(x, x, a10), a11 = FMA(x, x, a11); \
    asm volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5),      \
                 "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));          \
  }                                                                                    \
  return 12.0 * kIters * LANES * 2 / (CpuSeconds() - t0) / 1e9;

// CPU time of this thread: the machine is shared, wall time would count
// the time other processes hold the core.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

__attribute__((target("avx512f"))) double Peak512() {
  HEPML_FMA_PEAK_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
}
__attribute__((target("avx2,fma"))) double Peak256() {
  HEPML_FMA_PEAK_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)
}

struct Peak {
  double gflops = 0;
  double avx512 = 0, avx2 = 0;
};

const Peak& MeasuredPeak() {
  static const Peak peak = [] {
    Peak p;
    for (int rep = 0; rep < 5; ++rep) {
      if (__builtin_cpu_supports("avx512f")) p.avx512 = std::max(p.avx512, Peak512());
      if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        p.avx2 = std::max(p.avx2, Peak256());
      }
    }
    p.gflops = std::max(p.avx512, p.avx2);
    return p;
  }();
  return peak;
}

// ---------------------------------------------------------------------------
// Operands and the implementations

struct Operands {
  int64_t m, n, k;
  std::vector<float> a, b, c;
  Operands(int64_t m_, int64_t n_, int64_t k_) : m(m_), n(n_), k(k_) {
    a.resize(m * k);
    b.resize(k * n);
    c.resize(m * n);
    uint32_t s = 1;
    for (auto* v : {&a, &b}) {
      for (float& x : *v) {
        s = s * 1664525u + 1013904223u;
        x = static_cast<float>((s >> 8) % 2000) / 1000.0f - 1.0f;
      }
    }
  }
};

void SetCounters(benchmark::State& state, const Operands& o) {
  const double flops = 2.0 * o.m * o.n * o.k;
  state.counters["GFLOPS"] =
      benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pct_peak"] = benchmark::Counter(
      flops / 1e9 * 100.0 / MeasuredPeak().gflops, benchmark::Counter::kIsIterationInvariantRate);
}

// C = A * B, B row-major k x n as a MatMul passes it.
void BM_Hepml(benchmark::State& state) {
  Operands o(state.range(0), state.range(1), state.range(2));
  for (auto _ : state) {
    hepml::ops::GemmRowMajor<float>(false, false, o.m, o.n, o.k, 1.0f, o.a.data(), o.k,
                                    o.b.data(), o.n, 0.0f, o.c.data(), o.n, nullptr);
    benchmark::DoNotOptimize(o.c.data());
  }
  SetCounters(state, o);
}

// The same with B packed beforehand (constant weights, packed at Session creation).
void BM_HepmlPrepacked(benchmark::State& state) {
  Operands o(state.range(0), state.range(1), state.range(2));
  const hepml::ops::PackedB pb = hepml::ops::PackedB::Pack(false, o.k, o.n, o.b.data(), o.n);
  for (auto _ : state) {
    hepml::ops::GemmF32(false, false, o.m, o.n, o.k, 1.0f, o.a.data(), o.k, nullptr, nullptr, 0,
                        &pb, 0.0f, o.c.data(), o.n, nullptr);
    benchmark::DoNotOptimize(o.c.data());
  }
  SetCounters(state, o);
}

#if HEPML_HAVE_OPENBLAS
void BM_OpenBlas(benchmark::State& state) {
  Operands o(state.range(0), state.range(1), state.range(2));
  openblas_set_num_threads(1);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, o.m, o.n, o.k, 1.0f, o.a.data(), o.k,
                o.b.data(), o.n, 0.0f, o.c.data(), o.n);
    benchmark::DoNotOptimize(o.c.data());
  }
  SetCounters(state, o);
}
#endif

// The textbook i-j-p loop, as a floor.
void BM_Naive(benchmark::State& state) {
  Operands o(state.range(0), state.range(1), state.range(2));
  for (auto _ : state) {
    for (int64_t i = 0; i < o.m; ++i)
      for (int64_t j = 0; j < o.n; ++j) {
        float s = 0;
        for (int64_t p = 0; p < o.k; ++p) s += o.a[i * o.k + p] * o.b[p * o.n + j];
        o.c[i * o.n + j] = s;
      }
    benchmark::DoNotOptimize(o.c.data());
  }
  SetCounters(state, o);
}

void BM_FmaPeak(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(MeasuredPeak().gflops);
  state.counters["GFLOPS"] = MeasuredPeak().gflops;
  state.counters["avx512_GFLOPS"] = MeasuredPeak().avx512;
  state.counters["avx2_GFLOPS"] = MeasuredPeak().avx2;
}

// Square sizes and skinny M x (N, K) products. The naive loop only where it
// finishes in reasonable time.
void Shapes(benchmark::internal::Benchmark* b, bool small_only) {
  for (int64_t s : {64, 128, 256, 512, 1024, 2048}) {
    if (small_only && s > 512) continue;
    b->Args({s, s, s});
  }
  for (int64_t m : {1, 8, 64, 256})
    for (int64_t n : {64, 256, 1024})
      for (int64_t k : {64, 256, 1024}) {
        if (small_only && m * n * k > (int64_t{1} << 24)) continue;
        if (m == n && n == k) continue;  // already among the squares
        b->Args({m, n, k});
      }
  b->ArgNames({"m", "n", "k"});
}

BENCHMARK(BM_FmaPeak)->Iterations(1);
BENCHMARK(BM_Hepml)->Apply([](auto* b) { Shapes(b, false); });
BENCHMARK(BM_HepmlPrepacked)->Apply([](auto* b) { Shapes(b, false); });
#if HEPML_HAVE_OPENBLAS
BENCHMARK(BM_OpenBlas)->Apply([](auto* b) { Shapes(b, false); });
#endif
BENCHMARK(BM_Naive)->Apply([](auto* b) { Shapes(b, true); });

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const Peak& peak = MeasuredPeak();
  benchmark::AddCustomContext("fp32_peak_gflops", std::to_string(peak.gflops));
  benchmark::AddCustomContext("fma_avx512_gflops", std::to_string(peak.avx512));
  benchmark::AddCustomContext("fma_avx2_gflops", std::to_string(peak.avx2));
  const hepml::ops::GemmKernelShape ks = hepml::ops::GemmF32KernelShape();
  benchmark::AddCustomContext("hepml_kernel", std::string(ks.target) + " " + std::to_string(ks.mr) +
                                                  "x" + std::to_string(ks.nr));
#if HEPML_HAVE_OPENBLAS
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
