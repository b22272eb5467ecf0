// Elementwise kernels of the emitted code: unary maps, and binary / ternary
// maps with numpy broadcasting (rank <= 8). The operation is a functor the
// generated code passes in, so one loop nest serves every operator.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "codegen/emitted/common.h"

namespace hepml_emitted {

inline constexpr int kMaxRank = 8;

template <typename TI, typename TO, typename F>
inline void Unary(int64_t n, const TI* x, TO* y, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// Strides of an input of rank in_rank (right-aligned against the output's
// rank) with 0 where it broadcasts.
inline void BroadcastStrides(int rank, const int64_t* out_dims, int in_rank, const int64_t* in_dims, int64_t* strides) {
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; --d) {
    const int k = d - (rank - in_rank);
    if (k < 0 || in_dims[k] == 1 || out_dims[d] == 1) {
      strides[d] = 0;
    } else {
      strides[d] = s;
    }
    if (k >= 0) s *= in_dims[k];
  }
}

// Steps an N-d index over dims[0..rank-2] (the last dim is the inner loop),
// moving each offset by its stride. Returns false after the last index.
inline void NextOuter(int rank, const int64_t* dims, int64_t* idx, int count, const int64_t* const* strides,
                      int64_t* offsets) {
  for (int d = rank - 2; d >= 0; --d) {
    ++idx[d];
    for (int t = 0; t < count; ++t) offsets[t] += strides[t][d];
    if (idx[d] < dims[d]) return;
    for (int t = 0; t < count; ++t) offsets[t] -= strides[t][d] * dims[d];
    idx[d] = 0;
  }
}

template <typename TA, typename TB, typename TO, typename F>
inline void Binary(int rank, const int64_t* dims, const TA* a, int a_rank, const int64_t* a_dims, const TB* b,
                   int b_rank, const int64_t* b_dims, TO* y, F f) {
  const int64_t n = Product(rank, dims);
  if (n == 0) return;
  if (rank == 0) {
    y[0] = f(a[0], b[0]);
    return;
  }
  int64_t sa[kMaxRank], sb[kMaxRank], idx[kMaxRank] = {0}, off[2] = {0, 0};
  BroadcastStrides(rank, dims, a_rank, a_dims, sa);
  BroadcastStrides(rank, dims, b_rank, b_dims, sb);
  const int64_t* strides[2] = {sa, sb};
  const int64_t inner = dims[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1];
  for (int64_t o = 0; o < n / inner; ++o) {
    const TA* pa = a + off[0];
    const TB* pb = b + off[1];
    TO* py = y + o * inner;
    if (ia == 1 && ib == 1) {
      for (int64_t j = 0; j < inner; ++j) py[j] = f(pa[j], pb[j]);
    } else if (ia == 1 && ib == 0) {
      const TB bv = pb[0];
      for (int64_t j = 0; j < inner; ++j) py[j] = f(pa[j], bv);
    } else if (ia == 0 && ib == 1) {
      const TA av = pa[0];
      for (int64_t j = 0; j < inner; ++j) py[j] = f(av, pb[j]);
    } else {
      for (int64_t j = 0; j < inner; ++j) py[j] = f(pa[j * ia], pb[j * ib]);
    }
    NextOuter(rank, dims, idx, 2, strides, off);
  }
}

template <typename TC, typename T, typename F>
inline void Ternary(int rank, const int64_t* dims, const TC* c, int c_rank, const int64_t* c_dims, const T* a,
                    int a_rank, const int64_t* a_dims, const T* b, int b_rank, const int64_t* b_dims, T* y, F f) {
  const int64_t n = Product(rank, dims);
  if (n == 0) return;
  if (rank == 0) {
    y[0] = f(c[0], a[0], b[0]);
    return;
  }
  int64_t sc[kMaxRank], sa[kMaxRank], sb[kMaxRank], idx[kMaxRank] = {0}, off[3] = {0, 0, 0};
  BroadcastStrides(rank, dims, c_rank, c_dims, sc);
  BroadcastStrides(rank, dims, a_rank, a_dims, sa);
  BroadcastStrides(rank, dims, b_rank, b_dims, sb);
  const int64_t* strides[3] = {sc, sa, sb};
  const int64_t inner = dims[rank - 1];
  for (int64_t o = 0; o < n / inner; ++o) {
    T* py = y + o * inner;
    for (int64_t j = 0; j < inner; ++j)
      py[j] = f(c[off[0] + j * sc[rank - 1]], a[off[1] + j * sa[rank - 1]], b[off[2] + j * sb[rank - 1]]);
    NextOuter(rank, dims, idx, 3, strides, off);
  }
}

// Expand (and any broadcast copy): y[dims] from x[x_dims] broadcast.
template <typename T>
inline void BroadcastCopy(int rank, const int64_t* dims, const T* x, int x_rank, const int64_t* x_dims, T* y) {
  const int64_t n = Product(rank, dims);
  if (n == 0) return;
  if (rank == 0) {
    y[0] = x[0];
    return;
  }
  int64_t sx[kMaxRank], idx[kMaxRank] = {0}, off[1] = {0};
  BroadcastStrides(rank, dims, x_rank, x_dims, sx);
  const int64_t* strides[1] = {sx};
  const int64_t inner = dims[rank - 1], ix = sx[rank - 1];
  for (int64_t o = 0; o < n / inner; ++o) {
    const T* px = x + off[0];
    T* py = y + o * inner;
    for (int64_t j = 0; j < inner; ++j) py[j] = px[j * ix];
    NextOuter(rank, dims, idx, 1, strides, off);
  }
}

}  // namespace hepml_emitted
