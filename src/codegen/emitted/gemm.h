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
inline constexpr int64_t kGemmKC = 256;

template <int64_t kRows>
inline void GemmTile(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
  float acc[kRows][kGemmNR];
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t x = 0; x < kGemmNR; ++x) acc[r][x] = c[r * ldc + x];
  for (int64_t k = 0; k < kc; ++k) {
    const float* brow = b + k * ldb;
    for (int64_t r = 0; r < kRows; ++r) {
      const float av = a[r * lda + k];
      for (int64_t x = 0; x < kGemmNR; ++x) acc[r][x] += av * brow[x];
    }
  }
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t x = 0; x < kGemmNR; ++x) c[r * ldc + x] = acc[r][x];
}

// C[M, N] (+)= A[M, K] x B[K, N]. accumulate = false overwrites C.
inline void GemmNN(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                   float* C, int64_t ldc, bool accumulate) {
  if (!accumulate)
    for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, static_cast<size_t>(N) * sizeof(float));
  for (int64_t k0 = 0; k0 < K; k0 += kGemmKC) {
    const int64_t kc = K - k0 < kGemmKC ? K - k0 : kGemmKC;
    int64_t j = 0;
    for (; j + kGemmNR <= N; j += kGemmNR) {
      int64_t i = 0;
      for (; i + kGemmMR <= M; i += kGemmMR)
        GemmTile<kGemmMR>(kc, A + i * lda + k0, lda, B + k0 * ldb + j, ldb, C + i * ldc + j, ldc);
      for (; i < M; ++i) GemmTile<1>(kc, A + i * lda + k0, lda, B + k0 * ldb + j, ldb, C + i * ldc + j, ldc);
    }
    if (j < N) {
      for (int64_t i = 0; i < M; ++i) {
        float* crow = C + i * ldc;
        for (int64_t k = 0; k < kc; ++k) {
          const float av = A[i * lda + k0 + k];
          const float* brow = B + (k0 + k) * ldb;
          for (int64_t x = j; x < N; ++x) crow[x] += av * brow[x];
        }
      }
    }
  }
}

// ONNX Gemm: Y[M, N] = act(alpha * op(A) x op(B) + beta * C), op = transpose
// when trans*. C (may be null) broadcasts from c_rows x c_cols, each 1 or the
// full size. Transposed operands are read through strides (slower); the
// compiler stores constant weights as [K, N] so the usual case is NN.
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

// MatMul with numpy batching: `count` products of A [M, K] x B [K, N]; the
// p-th reads A + p * a_step and B + p * b_step (a step of 0 broadcasts).
inline void BatchedMatMul(int64_t count, int64_t M, int64_t N, int64_t K, const float* A, int64_t a_step,
                          const float* B, int64_t b_step, float* Y) {
  for (int64_t p = 0; p < count; ++p) GemmNN(M, N, K, A + p * a_step, K, B + p * b_step, N, Y + p * M * N, N, false);
}

}  // namespace hepml_emitted
