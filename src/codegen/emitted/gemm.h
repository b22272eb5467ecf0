// Dense matrix products of the emitted code: a cache-blocked loop over 4x16
// register tiles that compilers auto-vectorise (fixed-width inner loops over
// a local accumulator). Row-major throughout; lda/ldb/ldc are row strides.
#pragma once

#include <cstdint>
#include <cstring>

#include "codegen/emitted/common.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace hepml_emitted {

inline constexpr int64_t kGemmMR = 4;
inline constexpr int64_t kGemmWide = 64;  // columns per tile for single rows
inline constexpr int64_t kGemmKC = 256;

// c[kRows, kCols] += a[kRows, kc] x b[kc, kCols] through a local accumulator:
// fixed trip counts and no aliasing, so the inner loop vectorises at -O2.
template <int64_t kRows, int64_t kCols>
inline void GemmTile(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
  float acc[kRows][kCols];
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t x = 0; x < kCols; ++x) acc[r][x] = c[r * ldc + x];
  for (int64_t k = 0; k < kc; ++k) {
    const float* brow = b + k * ldb;
    for (int64_t r = 0; r < kRows; ++r) {
      const float av = a[r * lda + k];
      for (int64_t x = 0; x < kCols; ++x) acc[r][x] += av * brow[x];
    }
  }
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t x = 0; x < kCols; ++x) c[r * ldc + x] = acc[r][x];
}

#if defined(__GNUC__) || defined(__clang__)
// GCC and Clang: the register tiles through vector extensions, one vector of
// the widest size the target compiles natively (8 floats with AVX, else 4),
// every accumulator a named local so none lives on the stack. Other
// compilers use the portable GemmTile above.
#define HEPML_EMITTED_GEMM_VECTOR 1
#if defined(__AVX512F__)
inline constexpr int64_t kGemmVW = 16;
typedef float GemmVec __attribute__((vector_size(64)));
#elif defined(__AVX__)
inline constexpr int64_t kGemmVW = 8;
typedef float GemmVec __attribute__((vector_size(32)));
#else
inline constexpr int64_t kGemmVW = 4;
typedef float GemmVec __attribute__((vector_size(16)));
#endif
inline constexpr int64_t kGemmNR = 2 * kGemmVW > 16 ? 2 * kGemmVW : 16;
// Unaligned loads and stores as statements: a function taking or returning
// a vector would change the ABI between ISA levels (and GCC warns so).
#define HEPML_LDV(v, p) std::memcpy(&(v), (p), sizeof(GemmVec))
#define HEPML_STV(p, v) std::memcpy((p), &(v), sizeof(GemmVec))

// c[4, 2 * kGemmVW] += a[4, kc] x b[kc, 2 * kGemmVW].
inline void GemmTileV4x2(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                         int64_t ldc) {
  constexpr int64_t w = kGemmVW;
  GemmVec c00, c01, c10, c11, c20, c21, c30, c31, b0, b1;
  HEPML_LDV(c00, c);
  HEPML_LDV(c01, c + w);
  HEPML_LDV(c10, c + ldc);
  HEPML_LDV(c11, c + ldc + w);
  HEPML_LDV(c20, c + 2 * ldc);
  HEPML_LDV(c21, c + 2 * ldc + w);
  HEPML_LDV(c30, c + 3 * ldc);
  HEPML_LDV(c31, c + 3 * ldc + w);
  const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
  for (int64_t k = 0; k < kc; ++k) {
    HEPML_LDV(b0, b + k * ldb);
    HEPML_LDV(b1, b + k * ldb + w);
    c00 += a0[k] * b0;
    c01 += a0[k] * b1;
    c10 += a1[k] * b0;
    c11 += a1[k] * b1;
    c20 += a2[k] * b0;
    c21 += a2[k] * b1;
    c30 += a3[k] * b0;
    c31 += a3[k] * b1;
  }
  HEPML_STV(c, c00);
  HEPML_STV(c + w, c01);
  HEPML_STV(c + ldc, c10);
  HEPML_STV(c + ldc + w, c11);
  HEPML_STV(c + 2 * ldc, c20);
  HEPML_STV(c + 2 * ldc + w, c21);
  HEPML_STV(c + 3 * ldc, c30);
  HEPML_STV(c + 3 * ldc + w, c31);
}

// c[1, 8 * kGemmVW] += a[1, kc] x b[kc, 8 * kGemmVW].
inline void GemmTileV1x8(int64_t kc, const float* a, const float* b, int64_t ldb, float* c) {
  constexpr int64_t w = kGemmVW;
  GemmVec c0, c1, c2, c3, c4, c5, c6, c7, r0, r1, r2, r3, r4, r5, r6, r7;
  HEPML_LDV(c0, c);
  HEPML_LDV(c1, c + w);
  HEPML_LDV(c2, c + 2 * w);
  HEPML_LDV(c3, c + 3 * w);
  HEPML_LDV(c4, c + 4 * w);
  HEPML_LDV(c5, c + 5 * w);
  HEPML_LDV(c6, c + 6 * w);
  HEPML_LDV(c7, c + 7 * w);
  for (int64_t k = 0; k < kc; ++k) {
    const float* r = b + k * ldb;
    const float av = a[k];
    HEPML_LDV(r0, r);
    HEPML_LDV(r1, r + w);
    HEPML_LDV(r2, r + 2 * w);
    HEPML_LDV(r3, r + 3 * w);
    HEPML_LDV(r4, r + 4 * w);
    HEPML_LDV(r5, r + 5 * w);
    HEPML_LDV(r6, r + 6 * w);
    HEPML_LDV(r7, r + 7 * w);
    c0 += av * r0;
    c1 += av * r1;
    c2 += av * r2;
    c3 += av * r3;
    c4 += av * r4;
    c5 += av * r5;
    c6 += av * r6;
    c7 += av * r7;
  }
  HEPML_STV(c, c0);
  HEPML_STV(c + w, c1);
  HEPML_STV(c + 2 * w, c2);
  HEPML_STV(c + 3 * w, c3);
  HEPML_STV(c + 4 * w, c4);
  HEPML_STV(c + 5 * w, c5);
  HEPML_STV(c + 6 * w, c6);
  HEPML_STV(c + 7 * w, c7);
}
// c[1, 4 * kGemmVW] += a[1, kc] x b[kc, 4 * kGemmVW].
inline void GemmTileV1x4(int64_t kc, const float* a, const float* b, int64_t ldb, float* c) {
  constexpr int64_t w = kGemmVW;
  GemmVec c0, c1, c2, c3, r0, r1, r2, r3;
  HEPML_LDV(c0, c);
  HEPML_LDV(c1, c + w);
  HEPML_LDV(c2, c + 2 * w);
  HEPML_LDV(c3, c + 3 * w);
  for (int64_t k = 0; k < kc; ++k) {
    const float* r = b + k * ldb;
    const float av = a[k];
    HEPML_LDV(r0, r);
    HEPML_LDV(r1, r + w);
    HEPML_LDV(r2, r + 2 * w);
    HEPML_LDV(r3, r + 3 * w);
    c0 += av * r0;
    c1 += av * r1;
    c2 += av * r2;
    c3 += av * r3;
  }
  HEPML_STV(c, c0);
  HEPML_STV(c + w, c1);
  HEPML_STV(c + 2 * w, c2);
  HEPML_STV(c + 3 * w, c3);
}
#undef HEPML_LDV
#undef HEPML_STV
#else
inline constexpr int64_t kGemmNR = 16;
#endif

// c[kGemmMR, kGemmNR] += a x b: the main tile, vectorised where the compiler
// allows.
inline void GemmMain(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
#ifdef HEPML_EMITTED_GEMM_VECTOR
  static_assert(kGemmNR % (2 * kGemmVW) == 0, "a main tile is whole vector tiles");
  for (int64_t x = 0; x < kGemmNR; x += 2 * kGemmVW) GemmTileV4x2(kc, a, lda, b + x, ldb, c + x, ldc);
#else
  GemmTile<kGemmMR, kGemmNR>(kc, a, lda, b, ldb, c, ldc);
#endif
}

// c[1, kGemmWide] += a x b: one row (batch-1 inference).
inline void GemmWideRow(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
#ifdef HEPML_EMITTED_GEMM_VECTOR
  (void)lda;
  (void)ldc;
  if constexpr (8 * kGemmVW <= kGemmWide) {
    for (int64_t x = 0; x < kGemmWide; x += 8 * kGemmVW) GemmTileV1x8(kc, a, b + x, ldb, c + x);
  } else {
    // AVX-512: a 64-column row is four vectors.
    GemmTileV1x4(kc, a, b, ldb, c);
  }
#else
  GemmTile<1, kGemmWide>(kc, a, lda, b, ldb, c, ldc);
#endif
}

// The columns [j, N) left of a row block: fewer than a tile.
inline void GemmEdge(int64_t rows, int64_t cols, int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc) {
  for (int64_t i = 0; i < rows; ++i) {
    float* crow = c + i * ldc;
#if defined(__AVX512F__)
    // Up to 16 columns: one vector accumulator, the row of b read with a
    // masked load, instead of a load and store of c per k (2x on calo_gan's
    // 10-column edge at batch 1). Without masked loads the plain loop is faster.
    if (cols <= 16) {
      float acc[16] = {};
      for (int64_t k = 0; k < kc; ++k) {
        const float av = a[i * lda + k];
        const float* brow = b + k * ldb;
        for (int64_t x = 0; x < 16; ++x) acc[x] += av * (x < cols ? brow[x] : 0.f);
      }
      for (int64_t x = 0; x < cols; ++x) crow[x] += acc[x];
      continue;
    }
#endif
    for (int64_t k = 0; k < kc; ++k) {
      const float av = a[i * lda + k];
      const float* brow = b + k * ldb;
      for (int64_t x = 0; x < cols; ++x) crow[x] += av * brow[x];
    }
  }
}

// C[M, N] (+)= A[M, K] x B[K, N]. accumulate = false overwrites C.
inline void GemmNN(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                   float* C, int64_t ldc, bool accumulate) {
  if (!accumulate)
    for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, static_cast<size_t>(N) * sizeof(float));
  for (int64_t k0 = 0; k0 < K; k0 += kGemmKC) {
    const int64_t kc = K - k0 < kGemmKC ? K - k0 : kGemmKC;
    const float* bk = B + k0 * ldb;
    int64_t i = 0;
    for (; i + kGemmMR <= M; i += kGemmMR) {
      int64_t j = 0;
      for (; j + kGemmNR <= N; j += kGemmNR)
        GemmMain(kc, A + i * lda + k0, lda, bk + j, ldb, C + i * ldc + j, ldc);
      if (j < N) GemmEdge(kGemmMR, N - j, kc, A + i * lda + k0, lda, bk + j, ldb, C + i * ldc + j, ldc);
    }
    // Single rows (batch-1 inference): wide tiles stream more of each B row.
    for (; i < M; ++i) {
      int64_t j = 0;
      for (; j + kGemmWide <= N; j += kGemmWide)
        GemmWideRow(kc, A + i * lda + k0, lda, bk + j, ldb, C + i * ldc + j, ldc);
      for (; j + kGemmNR <= N; j += kGemmNR)
        GemmTile<1, kGemmNR>(kc, A + i * lda + k0, lda, bk + j, ldb, C + i * ldc + j, ldc);
      if (j < N) GemmEdge(1, N - j, kc, A + i * lda + k0, lda, bk + j, ldb, C + i * ldc + j, ldc);
    }
  }
}

// Constant weights B [K, N] packed ahead of time: column panels of
// kGemmWide, each [K, kGemmWide] contiguous, then the last N % kGemmWide
// columns as [K, N % kGemmWide]. Same size as B. Tiles then read B in
// sequence instead of striding over whole rows.
inline void PackB(int64_t K, int64_t N, const float* b, float* packed) {
  int64_t at = 0;
  for (int64_t j = 0; j < N; j += kGemmWide) {
    const int64_t w = N - j < kGemmWide ? N - j : kGemmWide;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t x = 0; x < w; ++x) packed[at++] = b[k * N + j + x];
  }
}

#if defined(HEPML_EMITTED_GEMM_VECTOR) && defined(__AVX512F__)
// AVX-512 (32 vector registers): c[8, 32] += a[8, kc] x b[kc, 32], sixteen
// accumulators. The 4x2 tile keeps only eight multiply-adds in flight, about
// the latency of one times the two FMA ports, so it stalls; this one runs
// 1.4-2x faster on a transformer's [32, 64..256] x [64..256, 64] layers.
inline void GemmTileV8x2(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                         int64_t ldc) {
  GemmVec acc[8][2], b0, b1;
  for (int r = 0; r < 8; ++r) {
    std::memcpy(&acc[r][0], c + r * ldc, sizeof b0);
    std::memcpy(&acc[r][1], c + r * ldc + 16, sizeof b0);
  }
  for (int64_t k = 0; k < kc; ++k) {
    std::memcpy(&b0, b + k * ldb, sizeof b0);
    std::memcpy(&b1, b + k * ldb + 16, sizeof b1);
    for (int r = 0; r < 8; ++r) {
      const float av = a[r * lda + k];
      acc[r][0] += av * b0;
      acc[r][1] += av * b1;
    }
  }
  for (int r = 0; r < 8; ++r) {
    std::memcpy(c + r * ldc, &acc[r][0], sizeof b0);
    std::memcpy(c + r * ldc + 16, &acc[r][1], sizeof b0);
  }
}
#endif

// One k-block of one packed panel: C[M, w] += A[M, k0:k0+kc] x bp[kc, w],
// bp the panel's rows k0.. (row stride w), C already offset to the panel's
// first column.
inline void GemmPanelBlock(int64_t M, int64_t w, int64_t kc, const float* A, int64_t lda, const float* bp, float* C,
                           int64_t ldc) {
  int64_t i = 0;
#if defined(HEPML_EMITTED_GEMM_VECTOR) && defined(__AVX512F__)
  if (w == kGemmWide) {
    const int64_t m8 = M - M % 8;
    for (; i < m8; i += 8)
      for (int64_t x = 0; x < kGemmWide; x += 32) GemmTileV8x2(kc, A + i * lda, lda, bp + x, w, C + i * ldc + x, ldc);
  }
#endif
  for (; i + kGemmMR <= M; i += kGemmMR) {
    int64_t x = 0;
    for (; x + kGemmNR <= w; x += kGemmNR) GemmMain(kc, A + i * lda, lda, bp + x, w, C + i * ldc + x, ldc);
    if (x < w) GemmEdge(kGemmMR, w - x, kc, A + i * lda, lda, bp + x, w, C + i * ldc + x, ldc);
  }
  for (; i < M; ++i) {
    if (w == kGemmWide) {
      GemmWideRow(kc, A + i * lda, lda, bp, w, C + i * ldc, ldc);
      continue;
    }
    int64_t x = 0;
    for (; x + kGemmNR <= w; x += kGemmNR) GemmTile<1, kGemmNR>(kc, A + i * lda, lda, bp + x, w, C + i * ldc + x, ldc);
    if (x < w) GemmEdge(1, w - x, kc, A + i * lda, lda, bp + x, w, C + i * ldc + x, ldc);
  }
}

// C[M, N] = A[M, K] x B, B packed by PackB.
inline void GemmPackedNN(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, float* C,
                         int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, static_cast<size_t>(N) * sizeof(float));
  for (int64_t j = 0; j < N; j += kGemmWide) {
    const int64_t w = N - j < kGemmWide ? N - j : kGemmWide;
    const float* panel = packed + j * K;
    for (int64_t k0 = 0; k0 < K; k0 += kGemmKC) {
      const int64_t kc = K - k0 < kGemmKC ? K - k0 : kGemmKC;
      GemmPanelBlock(M, w, kc, A + k0, lda, panel + k0 * w, C + j, ldc);
    }
  }
}

// ---- 16-bit weights (hepml compile --precision fp16|bf16). Weights are
// stored as IEEE half (kWeightF16) or bfloat16 (kWeightBF16) and widened to
// float where a kernel reads them; products accumulate in float.
inline constexpr int kWeightF16 = 1;
inline constexpr int kWeightBF16 = 2;

inline float BitsToFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
inline uint32_t FloatToBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// IEEE half -> float, exact (subnormals, infinities and NaN included): the
// magnitude bits moved to float's place and rescaled by 2^112.
inline float HalfToFloat(uint16_t h) {
  float f = BitsToFloat(static_cast<uint32_t>(h & 0x7fffu) << 13) * 0x1p112f;
  // Infinity / NaN: exponent all ones (a select, so the loop vectorises).
  const uint32_t b = FloatToBits(f) | ((h & 0x7c00u) == 0x7c00u ? 0x7f800000u : 0u);
  return BitsToFloat(b | (static_cast<uint32_t>(h & 0x8000u) << 16));
}

inline float Bf16ToFloat(uint16_t h) { return BitsToFloat(static_cast<uint32_t>(h) << 16); }

// float -> IEEE half, round to nearest even; overflow gives infinity.
inline uint16_t FloatToHalf(float f) {
  uint32_t x = FloatToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  uint32_t o;
  if (x >= 0x7f800000u) {
    o = x > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (x >= 0x477ff000u) {  // rounds to 65536 and above
    o = 0x7c00u;
  } else if (x < 0x38800000u) {  // below 2^-14: subnormal half, the FPU rounds
    o = FloatToBits(BitsToFloat(x) + 0.5f) - 0x3f000000u;
  } else {
    const uint32_t odd = (x >> 13) & 1u;
    x += 0xc8000fffu + odd;  // rebias exponent (15 - 127) << 23, round half to even
    o = x >> 13;
  }
  return static_cast<uint16_t>(o | sign);
}

// float -> bfloat16, round to nearest even; NaN stays NaN.
inline uint16_t FloatToBf16(float f) {
  const uint32_t x = FloatToBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

template <int kFormat>
inline float DecodeWeight(uint16_t h) {
  if constexpr (kFormat == kWeightBF16) return Bf16ToFloat(h);
  else return HalfToFloat(h);
}

// IEEE half through the CPU's conversion where the target has it (F16C,
// AVX-512: exact, as HalfToFloat), 16 or 8 at a time; the bit-level
// HalfToFloat for the rest and for other targets. (The zero-masking form:
// GCC 12's plain _mm512_cvtph_ps starts from _mm512_undefined_ps, which
// -Wuninitialized reports.)
template <int kFormat>
inline void DecodeWeights(int64_t n, const uint16_t* src, float* dst) {
  int64_t i = 0;
  if constexpr (kFormat == kWeightF16) {
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(dst + i, _mm512_maskz_cvtph_ps(static_cast<__mmask16>(0xffff),
                                                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
#elif defined(__F16C__) && defined(__AVX__)
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
#endif
  }
  for (; i < n; ++i) dst[i] = DecodeWeight<kFormat>(src[i]);
}

#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// bfloat16 weights where the build targets AVX512-BF16 (-march=native on such
// a CPU): vdpbf16ps multiplies pairs of bfloat16 and adds both products to a
// float accumulator, two k per instruction. Rows of A are rounded to
// bfloat16 (nearest even, vcvtne2ps2bf16) in chunks of kBf16KC as they are
// read, so each product carries the rounding of both operands (the error
// `--report` gives for bf16). Rows k and k + 1 of a panel are interleaved
// into the instruction's pairs by one permute per 16 columns, shared by the
// kBf16Rows rows of A in flight.
inline constexpr int64_t kBf16Rows = 4;
inline constexpr int64_t kBf16KC = 1024;

// The first n (<= 16, more is all) lanes of a 16-lane mask.
inline __mmask16 LowLanes16(int64_t n) { return static_cast<__mmask16>(n >= 16 ? 0xffffu : (1u << n) - 1u); }

// out[0, kc) = a[0, kc) rounded to bfloat16 (nearest even), out[kc] = 0 (a
// whole last pair). out holds kc rounded up to 32, plus one.
inline void RowToBf16(const float* a, int64_t kc, uint16_t* out) {
  for (int64_t k = 0; k < kc; k += 32) {
    const int64_t n = kc - k < 32 ? kc - k : 32;
    const __mmask16 lo = LowLanes16(n), hi = n > 16 ? LowLanes16(n - 16) : static_cast<__mmask16>(0);
    const __m512bh h = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, a + k + 16), _mm512_maskz_loadu_ps(lo, a + k));
    std::memcpy(out + k, &h, sizeof h);
  }
  out[kc] = 0;
}

// c[0, w) = acc (16 columns per vector), plus c's own values when `add`.
inline void AddRow16(int64_t w, bool add, const __m512* acc, float* c) {
  for (int64_t g = 0; 16 * g < w; ++g) {
    const __mmask16 m = LowLanes16(w - 16 * g);
    const __m512 prev = add ? _mm512_maskz_loadu_ps(m, c + 16 * g) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(c + 16 * g, m, _mm512_add_ps(prev, acc[g]));
  }
}

// The permutation that interleaves two rows of 16 bfloat16 (the low halves
// of two vectors) into 16 pairs: lane 2j from the first, 2j + 1 the second.
alignas(64) inline constexpr uint16_t kBf16PairLanes[32] = {0, 32, 1, 33, 2,  34, 3,  35, 4,  36, 5,  37, 6,  38, 7,  39,
                                                           8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};

// Columns [16g, 16g + 16) of rows k and k + 1 (if two) of a [kc, w] bfloat16
// panel block as 16 pairs (kBf16PairLanes in `pairs`); masked loads, so
// nothing is read past a narrow panel, and a missing row k + 1 is zeros.
inline __m512i PairOfRows(const uint16_t* panel, int64_t w, int64_t k, bool two, int64_t g, __m512i pairs) {
  const __mmask32 m = LowLanes16(w - 16 * g);
  const __m512i r0 = _mm512_maskz_loadu_epi16(m, panel + k * w + 16 * g);
  const __m512i r1 = two ? _mm512_maskz_loadu_epi16(m, panel + (k + 1) * w + 16 * g) : _mm512_setzero_si512();
  return _mm512_permutex2var_epi16(r0, pairs, r1);
}

inline void GemmBf16DotNN(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed,
                          float* C, int64_t ldc) {
  const __m512i pairs = _mm512_load_si512(kBf16PairLanes);
  alignas(64) uint16_t abf[kBf16Rows][kBf16KC + 32];
  for (int64_t i0 = 0; i0 < M; i0 += kBf16Rows) {
    const int64_t mr = M - i0 < kBf16Rows ? M - i0 : kBf16Rows;
    for (int64_t k0 = 0; k0 < K; k0 += kBf16KC) {
      const int64_t kc = K - k0 < kBf16KC ? K - k0 : kBf16KC;
      // This chunk of the rows in bfloat16, zero-padded to whole pairs.
      for (int64_t r = 0; r < mr; ++r) RowToBf16(A + (i0 + r) * lda + k0, kc, abf[r]);
      for (int64_t j = 0; j < N; j += kGemmWide) {
        const int64_t w = N - j < kGemmWide ? N - j : kGemmWide;
        const uint16_t* panel = packed + j * K + k0 * w;  // rows k0.. of the [K, w] panel
        const int64_t groups = (w + 15) / 16;
        __m512 acc[kBf16Rows][kGemmWide / 16];
        for (int64_t r = 0; r < kBf16Rows; ++r)
          for (int64_t g = 0; g < kGemmWide / 16; ++g) acc[r][g] = _mm512_setzero_ps();
        for (int64_t k = 0; k < kc; k += 2) {
          const bool two = k + 1 < kc;
          __m512i ap[kBf16Rows];
          for (int64_t r = 0; r < kBf16Rows; ++r) {
            uint32_t v = 0;
            if (r < mr) std::memcpy(&v, &abf[r][k], sizeof v);
            ap[r] = _mm512_set1_epi32(static_cast<int>(v));
          }
          for (int64_t g = 0; g < groups; ++g) {
            const __m512i bp = PairOfRows(panel, w, k, two, g, pairs);
            __m512bh b;
            std::memcpy(&b, &bp, sizeof b);
            for (int64_t r = 0; r < kBf16Rows; ++r) {
              __m512bh a;
              std::memcpy(&a, &ap[r], sizeof a);
              if (r < mr) acc[r][g] = _mm512_dpbf16_ps(acc[r][g], a, b);
            }
          }
        }
        for (int64_t r = 0; r < mr; ++r) AddRow16(w, k0 > 0, acc[r], C + (i0 + r) * ldc + j);
      }
    }
  }
}

// GemmBf16DotNN for many rows: each [256, w] block of a panel is interleaved
// into the dot products' pairs once (32 KiB on the stack), then tiles of six
// rows x 64 columns (24 accumulators) read it with no permutes left.
inline constexpr int64_t kBf16BlockKC = 256;
inline constexpr int64_t kBf16BlockRows = 8;

// acc[r][g] += pairs p < np of row r of abf (bfloat16) times pair block
// p, group g of blk, for r < rows, g < groups.
template <int64_t kRowsMax, int64_t kGroupsMax, int64_t kStride>
inline void Bf16DotPairs(int64_t np, const __m512i* blk, const uint16_t (*abf)[kStride], int64_t rows, int64_t groups,
                         __m512 (*acc)[kGroupsMax]) {
  for (int64_t p = 0; p < np; ++p) {
    const __m512i* b = blk + p * kGroupsMax;
    for (int64_t r = 0; r < rows && r < kRowsMax; ++r) {
      uint32_t v;
      std::memcpy(&v, &abf[r][2 * p], sizeof v);
      const __m512i av = _mm512_set1_epi32(static_cast<int>(v));
      __m512bh a;
      std::memcpy(&a, &av, sizeof a);
      for (int64_t g = 0; g < groups; ++g) {
        __m512bh bg;
        std::memcpy(&bg, &b[g], sizeof bg);
        acc[r][g] = _mm512_dpbf16_ps(acc[r][g], a, bg);
      }
    }
  }
}

inline void GemmBf16DotBlockNN(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed,
                               float* C, int64_t ldc) {
  constexpr int64_t kRows = 6, kGroups = kGemmWide / 16;
  const __m512i pairs = _mm512_load_si512(kBf16PairLanes);
  alignas(64) __m512i blk[kBf16BlockKC / 2 * kGroups];
  alignas(64) uint16_t abf[kRows][kBf16BlockKC + 32];
  for (int64_t j = 0; j < N; j += kGemmWide) {
    const int64_t w = N - j < kGemmWide ? N - j : kGemmWide;
    const int64_t groups = (w + 15) / 16;
    for (int64_t k0 = 0; k0 < K; k0 += kBf16BlockKC) {
      const int64_t kc = K - k0 < kBf16BlockKC ? K - k0 : kBf16BlockKC, np = (kc + 1) / 2;
      const uint16_t* panel = packed + j * K + k0 * w;
      for (int64_t p = 0; p < np; ++p)
        for (int64_t g = 0; g < groups; ++g) blk[p * kGroups + g] = PairOfRows(panel, w, 2 * p, 2 * p + 1 < kc, g, pairs);
      for (int64_t i0 = 0; i0 < M; i0 += kRows) {
        const int64_t mr = M - i0 < kRows ? M - i0 : kRows;
        for (int64_t r = 0; r < mr; ++r) RowToBf16(A + (i0 + r) * lda + k0, kc, abf[r]);
        __m512 acc[kRows][kGroups];
        for (int64_t r = 0; r < kRows; ++r)
          for (int64_t g = 0; g < kGroups; ++g) acc[r][g] = _mm512_setzero_ps();
        // Whole tiles with constant bounds (unrolled, accumulators in registers).
        if (mr == kRows && groups == kGroups) Bf16DotPairs<kRows>(np, blk, abf, kRows, kGroups, acc);
        else Bf16DotPairs<kRows>(np, blk, abf, mr, groups, acc);
        for (int64_t r = 0; r < mr; ++r) AddRow16(w, k0 > 0, acc[r], C + (i0 + r) * ldc + j);
      }
    }
  }
}

#endif

// GemmPackedNN with 16-bit panels: each [kc, w] block of a panel is widened
// into a float block on the stack (64 KiB) just before the tiles read it
// (bfloat16 on AVX512-BF16 targets: GemmBf16DotNN for a few rows, whose
// interleaving is shared by them; GemmBf16DotBlockNN from kBf16BlockRows).
template <int kFormat>
inline void GemmPacked16NN(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* packed,
                           float* C, int64_t ldc) {
#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (kFormat == kWeightBF16) {
    if (M >= kBf16BlockRows) GemmBf16DotBlockNN(M, N, K, A, lda, packed, C, ldc);
    else GemmBf16DotNN(M, N, K, A, lda, packed, C, ldc);
    return;
  }
#endif
  alignas(64) float block[kGemmKC * kGemmWide];
  for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, static_cast<size_t>(N) * sizeof(float));
  for (int64_t j = 0; j < N; j += kGemmWide) {
    const int64_t w = N - j < kGemmWide ? N - j : kGemmWide;
    const uint16_t* panel = packed + j * K;
    for (int64_t k0 = 0; k0 < K; k0 += kGemmKC) {
      const int64_t kc = K - k0 < kGemmKC ? K - k0 : kGemmKC;
      DecodeWeights<kFormat>(kc * w, panel + k0 * w, block);
      GemmPanelBlock(M, w, kc, A + k0, lda, block, C + j, ldc);
    }
  }
}

// Y = act(alpha * Y + beta * C), C broadcast from c_rows x c_cols (each 1 or
// the full size; C may be null).
inline void GemmEpilogue(int64_t M, int64_t N, float alpha, float beta, const float* C, int64_t c_rows,
                         int64_t c_cols, Act act, float act_alpha, float act_beta, float* Y) {
  const int64_t n = M * N;
  if (alpha != 1.f)
    for (int64_t i = 0; i < n; ++i) Y[i] *= alpha;
  if (C != nullptr && beta != 0.f) {
    for (int64_t i = 0; i < M; ++i) {
      const float* crow = C + (c_rows == 1 ? 0 : i) * c_cols;
      float* yrow = Y + i * N;
      if (c_cols == 1) {
        const float v = beta * crow[0];
        for (int64_t j = 0; j < N; ++j) yrow[j] += v;
      } else if (beta == 1.f) {
        for (int64_t j = 0; j < N; ++j) yrow[j] += crow[j];
      } else {
        for (int64_t j = 0; j < N; ++j) yrow[j] += beta * crow[j];
      }
    }
  }
  ActInPlace(act, Y, n, act_alpha, act_beta);
}

// ONNX Gemm: Y[M, N] = act(alpha * op(A) x op(B) + beta * C), op = transpose
// when trans*. Transposed operands are read through strides (slower); the
// compiler packs constant weights (GemmPacked) so the usual case is fast.
inline void Gemm(int64_t M, int64_t N, int64_t K, const float* A, bool trans_a, const float* B, bool trans_b,
                 float alpha, float beta, const float* C, int64_t c_rows, int64_t c_cols, Act act, float act_alpha,
                 float act_beta, float* Y) {
  if (!trans_a && !trans_b) {
    GemmNN(M, N, K, A, K, B, N, Y, N, false);
  } else {
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        float s = 0.f;
        for (int64_t k = 0; k < K; ++k) {
          const float a = trans_a ? A[k * M + i] : A[i * K + k];
          const float bv = trans_b ? B[j * K + k] : B[k * N + j];
          s += a * bv;
        }
        Y[i * N + j] = s;
      }
    }
  }
  GemmEpilogue(M, N, alpha, beta, C, c_rows, c_cols, act, act_alpha, act_beta, Y);
}

#ifdef HEPML_EMITTED_GEMM_VECTOR
// ---- One row (batch 1) against packed weights: a chain of GEMVs, bound by
// streaming the weights (calo_gan's 1.2 MB per call), so each weight is read
// once, in the order PackB laid it out, and the output is finished (bias,
// activation) while it is still in registers and L1.
//
// y[0, kV * kGemmVW) = x[0, K) . p[K, 0 : kV * kGemmVW) (+ bias), p a packed
// panel (rows kGemmWide floats apart), summed over k in order as the tiles
// above do. (Two interleaved sums over k, for more independent multiply-adds
// with AVX-512's four-vector row, measured slower on calo_gan: 13.4 vs 13.1 us.)
template <int64_t kV>
inline void GemvPanel(int64_t K, const float* x, const float* p, const float* bias, float* y) {
  constexpr int64_t w = kGemmVW;
  GemmVec acc[kV] = {}, r;
  for (int64_t k = 0; k < K; ++k) {
    const float xv = x[k];
    const float* row = p + k * kGemmWide;
    for (int64_t v = 0; v < kV; ++v) {
      std::memcpy(&r, row + v * w, sizeof r);
      acc[v] += xv * r;
    }
  }
  if (bias != nullptr)
    for (int64_t v = 0; v < kV; ++v) {
      std::memcpy(&r, bias + v * w, sizeof r);
      acc[v] += r;
    }
  for (int64_t v = 0; v < kV; ++v) std::memcpy(y + v * w, &acc[v], sizeof r);
}

// y[0, N) = act(x[0, K) . B + bias), B packed by PackB, bias [N] or null.
inline void GemvPacked(int64_t N, int64_t K, const float* x, const float* packed, const float* bias, Act act,
                       float act_alpha, float act_beta, float* y) {
  int64_t j = 0;
  for (; j + kGemmWide <= N; j += kGemmWide) {
    const float* p = packed + j * K;
    const float* bj = bias != nullptr ? bias + j : nullptr;
    // At most 8 accumulators per pass (two passes of 32 columns with 4-float
    // vectors, one of 64 with AVX and AVX-512).
    constexpr int64_t kPass = 8 * kGemmVW < kGemmWide ? 8 * kGemmVW : kGemmWide;
    for (int64_t x0 = 0; x0 < kGemmWide; x0 += kPass)
      GemvPanel<kPass / kGemmVW>(K, x, p + x0, bj != nullptr ? bj + x0 : nullptr, y + j + x0);
    ActInPlace(act, y + j, kGemmWide, act_alpha, act_beta);
  }
  if (j == N) return;
  const int64_t cols = N - j;  // the last panel, [K, cols]
  const float* p = packed + j * K;
  float* yj = y + j;
#if defined(__AVX512F__)
  if (cols <= 16) {
    // One masked vector per k, four interleaved sums (a single one waits on
    // the previous multiply-add every k: 0.6 us of calo_gan's 512 x 10 edge).
    const __mmask16 m = static_cast<__mmask16>((1u << cols) - 1u);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    const float* pk = p;
    const int64_t k4 = K - K % 4;
    for (int64_t k = 0; k < k4; k += 4, pk += 4 * cols) {
      s0 = _mm512_fmadd_ps(_mm512_set1_ps(x[k]), _mm512_maskz_loadu_ps(m, pk), s0);
      s1 = _mm512_fmadd_ps(_mm512_set1_ps(x[k + 1]), _mm512_maskz_loadu_ps(m, pk + cols), s1);
      s2 = _mm512_fmadd_ps(_mm512_set1_ps(x[k + 2]), _mm512_maskz_loadu_ps(m, pk + 2 * cols), s2);
      s3 = _mm512_fmadd_ps(_mm512_set1_ps(x[k + 3]), _mm512_maskz_loadu_ps(m, pk + 3 * cols), s3);
    }
    for (int64_t k = k4; k < K; ++k, pk += cols) s0 = _mm512_fmadd_ps(_mm512_set1_ps(x[k]), _mm512_maskz_loadu_ps(m, pk), s0);
    s0 = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
    if (bias != nullptr) s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(m, bias + j));
    _mm512_mask_storeu_ps(yj, m, s0);
    ActInPlace(act, yj, cols, act_alpha, act_beta);
    return;
  }
#endif
  std::memset(yj, 0, static_cast<size_t>(cols) * sizeof(float));
  GemmEdge(1, cols, K, x, K, p, cols, yj, cols);
  if (bias != nullptr)
    for (int64_t x0 = 0; x0 < cols; ++x0) yj[x0] += bias[j + x0];
  ActInPlace(act, yj, cols, act_alpha, act_beta);
}
#endif

// Gemm with A not transposed and B packed by PackB.
inline void GemmPacked(int64_t M, int64_t N, int64_t K, const float* A, const float* packed_b, float alpha, float beta,
                       const float* C, int64_t c_rows, int64_t c_cols, Act act, float act_alpha, float act_beta,
                       float* Y) {
#ifdef HEPML_EMITTED_GEMM_VECTOR
  // Batch 1 with a plain bias (a dense layer's): the GEMV above.
  const bool no_c = C == nullptr || beta == 0.f;
  if (M == 1 && alpha == 1.f && (no_c || (beta == 1.f && c_cols == N))) {
    GemvPacked(N, K, A, packed_b, no_c ? nullptr : C, act, act_alpha, act_beta, Y);
    return;
  }
#endif
  GemmPackedNN(M, N, K, A, K, packed_b, Y, N);
  GemmEpilogue(M, N, alpha, beta, C, c_rows, c_cols, act, act_alpha, act_beta, Y);
}

// GemmPacked with B stored as 16-bit panels (kWeightF16 / kWeightBF16).
template <int kFormat>
inline void GemmPacked16(int64_t M, int64_t N, int64_t K, const float* A, const uint16_t* packed_b, float alpha,
                         float beta, const float* C, int64_t c_rows, int64_t c_cols, Act act, float act_alpha,
                         float act_beta, float* Y) {
  GemmPacked16NN<kFormat>(M, N, K, A, K, packed_b, Y, N);
  GemmEpilogue(M, N, alpha, beta, C, c_rows, c_cols, act, act_alpha, act_beta, Y);
}

// ---- Sparse weights, batch-vectorised (hepml compile --prune). The
// weights are CSC by output column (column j: val[p] at row idx[p] for p in
// [ptr[j], ptr[j + 1]), the layout GemmCsr reads). A block of kSpMB batch
// rows is transposed to at[K, kSpMB]; each non-zero w[k, j] is then loaded
// once per block and multiplies the contiguous row at[k, :] into column j's
// kSpMB accumulators (registers), so every multiply does useful work and
// vectorises across the batch. ct[N, kSpMB] is transposed back into Y.
// Below SparseBatchMin rows the fixed cost of a block (the transposes and a
// pass over all non-zeros for up to kSpMB rows) loses to the dense tiles.
#ifdef HEPML_EMITTED_GEMM_VECTOR
inline constexpr int64_t kSpMB = 4 * kGemmVW;
#else
inline constexpr int64_t kSpMB = 16;
#endif
inline constexpr int64_t kSpMBMax = 64;  // the scratch the compiler plans: at[K, 64], ct[N, 64]
static_assert(kSpMB <= kSpMBMax, "sparse batch block fits the planned scratch");

// ct[j, 0:kSpMB] = sum over column j's non-zeros of val[p] * at[idx[p], 0:kSpMB].
inline void SpColumnsT(int64_t N, const float* at, const int32_t* ptr, const int32_t* idx, const float* val,
                       float* ct) {
#ifdef HEPML_EMITTED_GEMM_VECTOR
#define HEPML_LDV(v, p) std::memcpy(&(v), (p), sizeof(GemmVec))
#define HEPML_STV(p, v) std::memcpy((p), &(v), sizeof(GemmVec))
  constexpr int64_t w = kGemmVW;
  for (int64_t j = 0; j < N; ++j) {
    // Two independent sets of accumulators (even and odd non-zeros) hide
    // the multiply-add latency.
    GemmVec a0 = {}, a1 = {}, a2 = {}, a3 = {}, b0 = {}, b1 = {}, b2 = {}, b3 = {}, r0, r1, r2, r3, q0, q1, q2, q3;
    int32_t p = ptr[j];
    const int32_t end = ptr[j + 1];
    for (; p + 1 < end; p += 2) {
      const float v = val[p], u = val[p + 1];
      const float* r = at + static_cast<int64_t>(idx[p]) * kSpMB;
      const float* q = at + static_cast<int64_t>(idx[p + 1]) * kSpMB;
      HEPML_LDV(r0, r);
      HEPML_LDV(r1, r + w);
      HEPML_LDV(r2, r + 2 * w);
      HEPML_LDV(r3, r + 3 * w);
      HEPML_LDV(q0, q);
      HEPML_LDV(q1, q + w);
      HEPML_LDV(q2, q + 2 * w);
      HEPML_LDV(q3, q + 3 * w);
      a0 += v * r0;
      a1 += v * r1;
      a2 += v * r2;
      a3 += v * r3;
      b0 += u * q0;
      b1 += u * q1;
      b2 += u * q2;
      b3 += u * q3;
    }
    if (p < end) {
      const float v = val[p];
      const float* r = at + static_cast<int64_t>(idx[p]) * kSpMB;
      HEPML_LDV(r0, r);
      HEPML_LDV(r1, r + w);
      HEPML_LDV(r2, r + 2 * w);
      HEPML_LDV(r3, r + 3 * w);
      a0 += v * r0;
      a1 += v * r1;
      a2 += v * r2;
      a3 += v * r3;
    }
    a0 += b0;
    a1 += b1;
    a2 += b2;
    a3 += b3;
    float* o = ct + j * kSpMB;
    HEPML_STV(o, a0);
    HEPML_STV(o + w, a1);
    HEPML_STV(o + 2 * w, a2);
    HEPML_STV(o + 3 * w, a3);
  }
#undef HEPML_LDV
#undef HEPML_STV
#else
  for (int64_t j = 0; j < N; ++j) {
    float acc[kSpMB] = {};
    for (int32_t p = ptr[j]; p < ptr[j + 1]; ++p) {
      const float v = val[p];
      const float* r = at + static_cast<int64_t>(idx[p]) * kSpMB;
      for (int64_t x = 0; x < kSpMB; ++x) acc[x] += v * r[x];
    }
    std::memcpy(ct + j * kSpMB, acc, sizeof acc);
  }
#endif
}

// y[r, c] = x[c, r] for r < rows, c < cols (row strides ldx, ldy), in 4x4
// register blocks where the compiler has vector shuffles. One block of
// TransposeRows (at most 16 x 16). Not inlined, and
// the edge loops bounded by their few iterations: GCC otherwise propagates a
// caller's constant strides into them and warns
// (-Waggressive-loop-optimizations) about iterations it cannot rule out; one
// call per block costs nothing next to the copy.
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
inline void TransposeBlock(int64_t rows_, int64_t cols_, const float* x, int64_t ldx_, float* y, int64_t ldy_) {
  const size_t rows = static_cast<size_t>(rows_), cols = static_cast<size_t>(cols_);
  const size_t ldx = static_cast<size_t>(ldx_), ldy = static_cast<size_t>(ldy_);
  size_t c0 = 0;
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#if defined(__AVX512F__)
  // 16 x 16 blocks in 512-bit registers: 64 shuffles per 256 floats, where
  // the 8 x 8 blocks below take 96.
  typedef float V16 __attribute__((vector_size(64)));
  for (; c0 + 16 <= cols; c0 += 16) {
    size_t r0 = 0;
    for (; r0 + 16 <= rows; r0 += 16) {
      V16 a[16], t[16], u[16], v[16];
      for (size_t i = 0; i < 16; ++i) std::memcpy(&a[i], x + (c0 + i) * ldx + r0, 64);
      for (size_t i = 0; i < 16; i += 2) {
        t[i] = __builtin_shufflevector(a[i], a[i + 1], 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29);
        t[i + 1] = __builtin_shufflevector(a[i], a[i + 1], 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
      }
      for (size_t i = 0; i < 16; i += 4) {
        u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
        u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
        u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
        u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
      }
      // u[g + j] (g = 0, 4, 8, 12; j < 4): 128-bit lane q holds lines g to
      // g + 3 of x at column 4q + j.
      for (size_t j = 0; j < 4; ++j) {
        v[j] = __builtin_shufflevector(u[j], u[4 + j], 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
        v[j + 4] = __builtin_shufflevector(u[j], u[4 + j], 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
        v[j + 8] = __builtin_shufflevector(u[8 + j], u[12 + j], 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
        v[j + 12] =
            __builtin_shufflevector(u[8 + j], u[12 + j], 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
      }
      // v[j + 4p]: 256-bit half h holds lines 0-7 at column 8p + 4h + j;
      // v[j + 8 + 4p] the same for lines 8-15.
      for (size_t j = 0; j < 4; ++j)
        for (size_t p = 0; p < 2; ++p) {
          const V16 lo = __builtin_shufflevector(v[j + 4 * p], v[j + 8 + 4 * p], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19,
                                                 20, 21, 22, 23);
          const V16 hi = __builtin_shufflevector(v[j + 4 * p], v[j + 8 + 4 * p], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25,
                                                 26, 27, 28, 29, 30, 31);
          std::memcpy(y + (r0 + 8 * p + j) * ldy + c0, &lo, 64);
          std::memcpy(y + (r0 + 8 * p + j + 4) * ldy + c0, &hi, 64);
        }
    }
    for (size_t i = 0; i < 15 && r0 + i < rows; ++i)  // the last rows % 16
      for (size_t c = 0; c < 16; ++c) y[(r0 + i) * ldy + c0 + c] = x[(c0 + c) * ldx + r0 + i];
  }
#endif
#if defined(__AVX__)
  // 8 x 8 blocks in 256-bit registers: 24 shuffles per 64 floats, where the
  // 4 x 4 blocks below take 32.
  typedef float V8 __attribute__((vector_size(32)));
  for (; c0 + 8 <= cols; c0 += 8) {
    size_t r0 = 0;
    for (; r0 + 8 <= rows; r0 += 8) {
      V8 a[8];
      for (size_t i = 0; i < 8; ++i) std::memcpy(&a[i], x + (c0 + i) * ldx + r0, 32);
      V8 t[8], u[8];
      for (size_t i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(a[i], a[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(a[i], a[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
      }
      for (size_t i = 0; i < 8; i += 4) {
        u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
      }
      // u[j] (j < 4) holds column j of rows 0-3 and column j + 4 of rows
      // 0-3 in its halves; u[j + 4] the same for rows 4-7.
      for (size_t j = 0; j < 4; ++j) {
        const V8 lo = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        const V8 hi = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        std::memcpy(y + (r0 + j) * ldy + c0, &lo, 32);
        std::memcpy(y + (r0 + j + 4) * ldy + c0, &hi, 32);
      }
    }
    for (size_t i = 0; i < 7 && r0 + i < rows; ++i)  // the last rows % 8
      for (size_t c = 0; c < 8; ++c) y[(r0 + i) * ldy + c0 + c] = x[(c0 + c) * ldx + r0 + i];
  }
#endif
  typedef float V4 __attribute__((vector_size(16)));
  for (; c0 + 4 <= cols; c0 += 4) {
    size_t r0 = 0;
    for (; r0 + 4 <= rows; r0 += 4) {
      V4 a, b, c, d;
      std::memcpy(&a, x + c0 * ldx + r0, 16);
      std::memcpy(&b, x + (c0 + 1) * ldx + r0, 16);
      std::memcpy(&c, x + (c0 + 2) * ldx + r0, 16);
      std::memcpy(&d, x + (c0 + 3) * ldx + r0, 16);
      const V4 t0 = __builtin_shufflevector(a, b, 0, 4, 1, 5), t1 = __builtin_shufflevector(a, b, 2, 6, 3, 7);
      const V4 t2 = __builtin_shufflevector(c, d, 0, 4, 1, 5), t3 = __builtin_shufflevector(c, d, 2, 6, 3, 7);
      const V4 o0 = __builtin_shufflevector(t0, t2, 0, 1, 4, 5), o1 = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
      const V4 o2 = __builtin_shufflevector(t1, t3, 0, 1, 4, 5), o3 = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
      std::memcpy(y + r0 * ldy + c0, &o0, 16);
      std::memcpy(y + (r0 + 1) * ldy + c0, &o1, 16);
      std::memcpy(y + (r0 + 2) * ldy + c0, &o2, 16);
      std::memcpy(y + (r0 + 3) * ldy + c0, &o3, 16);
    }
    for (size_t i = 0; i < 3 && r0 + i < rows; ++i)  // the last rows % 4
      for (size_t c = 0; c < 4; ++c) y[(r0 + i) * ldy + c0 + c] = x[(c0 + c) * ldx + r0 + i];
  }
#endif
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = c0; c < cols; ++c) y[r * ldy + c] = x[c * ldx + r];
}

// y[r, c] = x[c, r] for r < rows, c < cols, in blocks of 16 x 16: each
// block reads 16 lines of x and writes 16 lines of y whole. Sweeping every
// r for 4 columns at a time instead writes 16 bytes into each of `rows`
// lines of y at a stride of ldy (the sparse kernel's 256-byte scratch rows,
// or an output row of up to 2 KiB), which fall into a few cache sets and
// are evicted before the next 4 columns come back to them.
inline void TransposeRows(int64_t rows, int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy) {
  for (int64_t rb = 0; rb < rows; rb += 16) {
    const int64_t nr = rows - rb < 16 ? rows - rb : 16;
    for (int64_t cb = 0; cb < cols; cb += 16) {
      const int64_t nc = cols - cb < 16 ? cols - cb : 16;
      TransposeBlock(nr, nc, x + cb * ldx + rb, ldx, y + rb * ldy + cb, ldy);
    }
  }
}

// Y[M, N] = A[M, K] x B, B CSC by column, through the batch-vectorised
// kernel. at: K * kSpMBMax floats, ct: N * kSpMBMax floats of scratch.
inline void GemmCscBatchNN(int64_t M, int64_t N, int64_t K, const float* A, const int32_t* ptr, const int32_t* idx,
                           const float* val, float* at, float* ct, float* Y) {
  for (int64_t i0 = 0; i0 < M; i0 += kSpMB) {
    const int64_t mb = M - i0 < kSpMB ? M - i0 : kSpMB;
    TransposeRows(K, mb, A + i0 * K, K, at, kSpMB);  // at[k, r] = A[i0 + r, k]
    if (mb < kSpMB)
      for (int64_t k = 0; k < K; ++k) std::memset(at + k * kSpMB + mb, 0, sizeof(float) * (kSpMB - mb));
    SpColumnsT(N, at, ptr, idx, val, ct);
    TransposeRows(mb, N, ct, kSpMB, Y + i0 * N, N);
  }
}

// y[0, N] = a[0, K] x B, B CSC by column: a gathered dot product per column
// over its non-zeros (four accumulators for the add latency).
inline void GemvCsc(int64_t N, const float* a, const int32_t* ptr, const int32_t* idx, const float* val, float* y) {
  for (int64_t j = 0; j < N; ++j) {
    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
    int32_t p = ptr[j];
    const int32_t end = ptr[j + 1];
    for (; p + 3 < end; p += 4) {
      s0 += val[p] * a[idx[p]];
      s1 += val[p + 1] * a[idx[p + 1]];
      s2 += val[p + 2] * a[idx[p + 2]];
      s3 += val[p + 3] * a[idx[p + 3]];
    }
    for (; p < end; ++p) s0 += val[p] * a[idx[p]];
    y[j] = (s0 + s1) + (s2 + s3);
  }
}

// ---- Sparse weights for single rows: lane slots. Columns go in blocks of
// kSpLanes (one 16-float vector); rows in chunks of 16, chunk c starting at
// min(16c, K - 16) so that 16 floats from its start stay inside the row
// (K >= 16). Slot s of column block j, s in [sptr[j], sptr[j + 1]), holds for
// each lane l (column 16j + l) one non-zero of that column within one chunk:
// row k0[s] + lidx[16s + l], value lval[16s + l] (0 where the column has no
// more in the chunk). With AVX-512 a slot is one vector multiply-add of the
// values by the chunk of a, permuted by the lane indices (vpermps): the
// non-zeros are processed 16 at a time (about 8 per slot at 20% density),
// where the dense tiles read every weight. The layout does not depend on the
// target; other targets run the same slots one lane at a time.
inline constexpr int64_t kSpLanes = 16;
// Without AVX-512 a slot costs 16 scalar multiply-adds, about half of them
// on padding: single rows then take the gathered dot products (GemvCsc),
// which run about as fast as the dense code.
#if defined(__AVX512F__)
inline constexpr bool kLaneSlotsVectorised = true;
#else
inline constexpr bool kLaneSlotsVectorised = false;
#endif

inline void GemvLanes(int64_t N, const float* a, const int32_t* sptr, const int32_t* k0, const uint8_t* lidx,
                      const float* lval, float* y) {
  const int64_t blocks = (N + kSpLanes - 1) / kSpLanes;
  for (int64_t j = 0; j < blocks; ++j) {
    int32_t s = sptr[j];
    const int32_t end = sptr[j + 1];
    const int64_t w = N - j * kSpLanes < kSpLanes ? N - j * kSpLanes : kSpLanes;
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    // The zero-masking forms with every lane set: the plain ones start from
    // _mm512_undefined_*, which GCC 12 reports as maybe-uninitialized.
    const __mmask16 all = 0xffff;
#define HEPML_SLOT(acc, t)                                                                                \
  acc = _mm512_fmadd_ps(                                                                                  \
      _mm512_loadu_ps(lval + 16 * static_cast<int64_t>(t)),                                               \
      _mm512_maskz_permutexvar_ps(                                                                        \
          all,                                                                                            \
          _mm512_maskz_cvtepu8_epi32(                                                                     \
              all, _mm_loadu_si128(reinterpret_cast<const __m128i*>(lidx + 16 * static_cast<int64_t>(t)))), \
          _mm512_loadu_ps(a + k0[t])),                                                                    \
      acc)
    for (; s + 3 < end; s += 4) {
      HEPML_SLOT(a0, s);
      HEPML_SLOT(a1, s + 1);
      HEPML_SLOT(a2, s + 2);
      HEPML_SLOT(a3, s + 3);
    }
    for (; s < end; ++s) HEPML_SLOT(a0, s);
#undef HEPML_SLOT
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    _mm512_mask_storeu_ps(y + j * kSpLanes, static_cast<__mmask16>((1u << w) - 1u), sum);
#else
    float acc[kSpLanes] = {};
    for (; s < end; ++s) {
      const float* chunk = a + k0[s];
      const uint8_t* li = lidx + 16 * static_cast<int64_t>(s);
      const float* lv = lval + 16 * static_cast<int64_t>(s);
      for (int64_t l = 0; l < kSpLanes; ++l) acc[l] += lv[l] * chunk[li[l]];
    }
    for (int64_t l = 0; l < w; ++l) y[j * kSpLanes + l] = acc[l];
#endif
  }
}

// Gemm of a pruned layer, the kernel chosen by the batch at run time:
// M >= batch_min: the batch-vectorised sparse kernel (CSC ptr/idx/val,
// scratch at/ct); fewer rows, one row at a time: the lane slots where the
// compiler wrote them (sptr non-null) and the target has AVX-512, else the dense panels (packed_b, the
// same weights packed by PackB), else the gathered dot products.
inline void GemmSparse(int64_t M, int64_t N, int64_t K, const float* A, const int32_t* sptr, const int32_t* k0,
                       const uint8_t* lidx, const float* lval, const float* packed_b, const int32_t* ptr,
                       const int32_t* idx, const float* val, int64_t batch_min, float* at, float* ct, float alpha,
                       float beta, const float* C, int64_t c_rows, int64_t c_cols, Act act, float act_alpha,
                       float act_beta, float* Y) {
  if (M >= batch_min) GemmCscBatchNN(M, N, K, A, ptr, idx, val, at, ct, Y);
  else if (sptr != nullptr && kLaneSlotsVectorised)
    for (int64_t i = 0; i < M; ++i) GemvLanes(N, A + i * K, sptr, k0, lidx, lval, Y + i * N);
  else if (packed_b != nullptr) GemmPackedNN(M, N, K, A, K, packed_b, Y, N);
  else
    for (int64_t i = 0; i < M; ++i) GemvCsc(N, A + i * K, ptr, idx, val, Y + i * N);
  GemmEpilogue(M, N, alpha, beta, C, c_rows, c_cols, act, act_alpha, act_beta, Y);
}

// ---- Linked pruned layers (hepml compile --prune). Where a pruned layer's
// only reader is the next pruned layer, the compiler links the two: from
// `chain_min` rows (the largest crossover of the chain's layers) every layer
// of the chain takes the batch kernel, and a layer with a linked reader
// (out_t) leaves each whole kSpMB-row block of its output transposed,
// [N, kSpMB] in the block's own place, with its epilogue applied there; the
// reader (in_t) takes that block as its at[K, kSpMB]. The two transposes
// between the layers go, which in a chain of small layers is most of the
// time of a block. A partial last block stays row-major both ways. Sums are
// those of the unlinked layers, term for term and in the same order; the
// epilogue is the same per element.
inline void EpilogueT(int64_t N, float alpha, float beta, const float* C, int64_t c_cols, Act act, float act_alpha,
                      float act_beta, float* yt) {
  const int64_t n = N * kSpMB;
  if (alpha != 1.f)
    for (int64_t i = 0; i < n; ++i) yt[i] *= alpha;
  if (C != nullptr && beta != 0.f) {
    for (int64_t j = 0; j < N; ++j) {
      const float v = c_cols == 1 ? beta * C[0] : beta == 1.f ? C[j] : beta * C[j];
      float* row = yt + j * kSpMB;
      for (int64_t x = 0; x < kSpMB; ++x) row[x] += v;
    }
  }
  ActInPlace(act, yt, n, act_alpha, act_beta);
}

// GemmCscBatchNN plus the epilogue, reading whole blocks of A transposed
// when in_t and writing whole blocks of Y transposed when out_t (see above;
// REQUIRES c_rows == 1 when out_t: one bias per column or one in all).
inline void GemmCscBatchLinked(int64_t M, int64_t N, int64_t K, const float* A, bool in_t, bool out_t,
                               const int32_t* ptr, const int32_t* idx, const float* val, float* at, float* ct,
                               float alpha, float beta, const float* C, int64_t c_rows, int64_t c_cols, Act act,
                               float act_alpha, float act_beta, float* Y) {
  for (int64_t i0 = 0; i0 < M; i0 += kSpMB) {
    const int64_t mb = M - i0 < kSpMB ? M - i0 : kSpMB;
    const bool whole = mb == kSpMB;
    const float* a = at;
    if (in_t && whole) {
      a = A + i0 * K;  // the writer's [K, kSpMB] block
    } else {
      TransposeRows(K, mb, A + i0 * K, K, at, kSpMB);
      if (!whole)
        for (int64_t k = 0; k < K; ++k) std::memset(at + k * kSpMB + mb, 0, sizeof(float) * (kSpMB - mb));
    }
    if (out_t && whole) {
      float* yt = Y + i0 * N;
      SpColumnsT(N, a, ptr, idx, val, yt);
      EpilogueT(N, alpha, beta, C, c_cols, act, act_alpha, act_beta, yt);
    } else {
      SpColumnsT(N, a, ptr, idx, val, ct);
      TransposeRows(mb, N, ct, kSpMB, Y + i0 * N, N);
      if (out_t) GemmEpilogue(mb, N, alpha, beta, C, 1, c_cols, act, act_alpha, act_beta, Y + i0 * N);
    }
  }
  if (!out_t) GemmEpilogue(M, N, alpha, beta, C, c_rows, c_cols, act, act_alpha, act_beta, Y);
}

// A pruned layer of a linked chain: the linked batch kernel from chain_min
// rows, else GemmSparse (row-major in and out) with the same arguments.
// Every layer of a chain gets the same chain_min, so writer and reader agree
// on the layout of each call.
inline void GemmSparseLinked(int64_t M, int64_t N, int64_t K, const float* A, bool in_t, bool out_t,
                             int64_t chain_min, const int32_t* sptr, const int32_t* k0, const uint8_t* lidx,
                             const float* lval, const float* packed_b, const int32_t* ptr, const int32_t* idx,
                             const float* val, int64_t batch_min, float* at, float* ct, float alpha, float beta,
                             const float* C, int64_t c_rows, int64_t c_cols, Act act, float act_alpha,
                             float act_beta, float* Y) {
  if (M >= chain_min) {
    GemmCscBatchLinked(M, N, K, A, in_t, out_t, ptr, idx, val, at, ct, alpha, beta, C, c_rows, c_cols, act,
                       act_alpha, act_beta, Y);
  } else {
    GemmSparse(M, N, K, A, sptr, k0, lidx, lval, packed_b, ptr, idx, val, batch_min, at, ct, alpha, beta, C, c_rows,
               c_cols, act, act_alpha, act_beta, Y);
  }
}

#ifdef HEPML_EMITTED_GEMM_VECTOR
// c[4, kGemmVW] = a[4, K] x b[K, kGemmVW] (row strides lda, ldb, ldc): one
// vector of columns, four rows, so four independent accumulators. An
// attention head's probabilities x values ([32, 32] x [32, 16] with AVX-512)
// is this shape; GemmNN takes it to GemmEdge, one row at a time, whose single
// accumulator is a chain of dependent multiply-adds.
inline void GemmColumnTile4(int64_t K, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                            int64_t ldc) {
  GemmVec c0 = {}, c1 = {}, c2 = {}, c3 = {}, r;
  const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
  for (int64_t k = 0; k < K; ++k) {
    std::memcpy(&r, b + k * ldb, sizeof r);
    c0 += a0[k] * r;
    c1 += a1[k] * r;
    c2 += a2[k] * r;
    c3 += a3[k] * r;
  }
  std::memcpy(c, &c0, sizeof c0);
  std::memcpy(c + ldc, &c1, sizeof c1);
  std::memcpy(c + 2 * ldc, &c2, sizeof c2);
  std::memcpy(c + 3 * ldc, &c3, sizeof c3);
}

// The rows left under a whole tile: c[1, kGemmVW] = a[1, K] x b.
inline void GemmColumnRow(int64_t K, const float* a, const float* b, int64_t ldb, float* c) {
  GemmVec c0 = {}, r;
  for (int64_t k = 0; k < K; ++k) {
    std::memcpy(&r, b + k * ldb, sizeof r);
    c0 += a[k] * r;
  }
  std::memcpy(c, &c0, sizeof c0);
}
#endif

// MatMul with numpy batching: `count` products of A [M, K] x B [K, N]; the
// p-th reads A + p * a_step and B + p * b_step (a step of 0 broadcasts).
inline void BatchedMatMul(int64_t count, int64_t M, int64_t N, int64_t K, const float* A, int64_t a_step,
                          const float* B, int64_t b_step, float* Y) {
#ifdef HEPML_EMITTED_GEMM_VECTOR
  if (N == kGemmVW) {
    const int64_t m4 = M - M % 4;
    for (int64_t p = 0; p < count; ++p) {
      const float *a = A + p * a_step, *b = B + p * b_step;
      float* y = Y + p * M * N;
      for (int64_t i = 0; i < m4; i += 4) GemmColumnTile4(K, a + i * K, K, b, N, y + i * N, N);
      for (int64_t i = m4; i < M; ++i) GemmColumnRow(K, a + i * K, b, N, y + i * N);
    }
    return;
  }
#endif
  // (y_step hoisted: with p * M * N in the loop GCC 12 -O3 warns of an
  // overflowing iteration once the branch above is inlined.)
  const int64_t y_step = M * N;
  for (int64_t p = 0; p < count; ++p) GemmNN(M, N, K, A + p * a_step, K, B + p * b_step, N, Y + p * y_step, N, false);
}

}  // namespace hepml_emitted
