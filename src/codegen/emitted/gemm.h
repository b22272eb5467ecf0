// Dense matrix products of the emitted code: a cache-blocked loop over 4x16
// register tiles that compilers auto-vectorise (fixed-width inner loops over
// a local accumulator). Row-major throughout; lda/ldb/ldc are row strides.
#pragma once

#include <cstdint>
#include <cstring>

#include "codegen/emitted/common.h"

namespace hepml_emitted {

inline constexpr int64_t kGemmMR = 4;
inline constexpr int64_t kGemmNR = 16;
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

// The columns [j, N) left of a row block: fewer than a tile.
inline void GemmEdge(int64_t rows, int64_t cols, int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc) {
  for (int64_t i = 0; i < rows; ++i) {
    float* crow = c + i * ldc;
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
        GemmTile<kGemmMR, kGemmNR>(kc, A + i * lda + k0, lda, bk + j, ldb, C + i * ldc + j, ldc);
      if (j < N) GemmEdge(kGemmMR, N - j, kc, A + i * lda + k0, lda, bk + j, ldb, C + i * ldc + j, ldc);
    }
    // Single rows (batch-1 inference): wide tiles stream more of each B row.
    for (; i < M; ++i) {
      int64_t j = 0;
      for (; j + kGemmWide <= N; j += kGemmWide)
        GemmTile<1, kGemmWide>(kc, A + i * lda + k0, lda, bk + j, ldb, C + i * ldc + j, ldc);
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

// C[M, N] = A[M, K] x B, B packed by PackB.
inline void GemmPackedNN(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed, float* C,
                         int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, static_cast<size_t>(N) * sizeof(float));
  for (int64_t j = 0; j < N; j += kGemmWide) {
    const int64_t w = N - j < kGemmWide ? N - j : kGemmWide;
    const float* panel = packed + j * K;
    for (int64_t k0 = 0; k0 < K; k0 += kGemmKC) {
      const int64_t kc = K - k0 < kGemmKC ? K - k0 : kGemmKC;
      const float* bp = panel + k0 * w;
      int64_t i = 0;
      for (; i + kGemmMR <= M; i += kGemmMR) {
        int64_t x = 0;
        for (; x + kGemmNR <= w; x += kGemmNR)
          GemmTile<kGemmMR, kGemmNR>(kc, A + i * lda + k0, lda, bp + x, w, C + i * ldc + j + x, ldc);
        if (x < w) GemmEdge(kGemmMR, w - x, kc, A + i * lda + k0, lda, bp + x, w, C + i * ldc + j + x, ldc);
      }
      for (; i < M; ++i) {
        if (w == kGemmWide) {
          GemmTile<1, kGemmWide>(kc, A + i * lda + k0, lda, bp, w, C + i * ldc + j, ldc);
          continue;
        }
        int64_t x = 0;
        for (; x + kGemmNR <= w; x += kGemmNR)
          GemmTile<1, kGemmNR>(kc, A + i * lda + k0, lda, bp + x, w, C + i * ldc + j + x, ldc);
        if (x < w) GemmEdge(1, w - x, kc, A + i * lda + k0, lda, bp + x, w, C + i * ldc + j + x, ldc);
      }
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

// Gemm with A not transposed and B packed by PackB.
inline void GemmPacked(int64_t M, int64_t N, int64_t K, const float* A, const float* packed_b, float alpha, float beta,
                       const float* C, int64_t c_rows, int64_t c_cols, Act act, float act_alpha, float act_beta,
                       float* Y) {
  GemmPackedNN(M, N, K, A, K, packed_b, Y, N);
  GemmEpilogue(M, N, alpha, beta, C, c_rows, c_cols, act, act_alpha, act_beta, Y);
}

// MatMul with numpy batching: `count` products of A [M, K] x B [K, N]; the
// p-th reads A + p * a_step and B + p * b_step (a step of 0 broadcasts).
inline void BatchedMatMul(int64_t count, int64_t M, int64_t N, int64_t K, const float* A, int64_t a_step,
                          const float* B, int64_t b_step, float* Y) {
  for (int64_t p = 0; p < count; ++p) GemmNN(M, N, K, A + p * a_step, K, B + p * b_step, N, Y + p * M * N, N, false);
}

}  // namespace hepml_emitted
