// Reductions of the emitted code over any set of axes and any numeric type,
// ArgMax/ArgMin and CumSum. Layout: x of `rank` dims; out_strides gives, per
// input axis, the output stride of a kept axis and 0 for a reduced one, so
// keepdims does not change anything here.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "codegen/emitted/common.h"

namespace hepml_emitted {

enum ReduceKind {
  kReduceSum = 0,
  kReduceMean = 1,
  kReduceMax = 2,
  kReduceMin = 3,
  kReduceProd = 4,
  kReduceSumSquare = 5,
  kReduceL2 = 6,
  kReduceL1 = 7,
  kReduceLogSum = 8,
  kReduceLogSumExp = 9
};

// y[out_count] = the reduction of x over the axes whose out_strides are 0.
// acc and mx are scratch of out_count doubles (mx only for LogSumExp).
template <typename T>
inline void ReduceAxes(int rank, const int64_t* dims, const int64_t* out_strides, int64_t out_count, int kind,
                       const T* x, T* y, double* acc, double* mx) {
  const int64_t n = Product(rank, dims);
  const double init = kind == kReduceMax ? -std::numeric_limits<double>::infinity()
                      : kind == kReduceMin ? std::numeric_limits<double>::infinity()
                      : kind == kReduceProd ? 1.0
                                            : 0.0;
  for (int64_t o = 0; o < out_count; ++o) acc[o] = init;
  const int64_t reduced = out_count > 0 ? n / out_count : 0;
  int64_t idx[8] = {0};
  for (int pass = kind == kReduceLogSumExp ? 0 : 1; pass < 2; ++pass) {
    if (pass == 1 && kind == kReduceLogSumExp) {
      for (int64_t o = 0; o < out_count; ++o) {
        mx[o] = acc[o];
        if (std::isinf(mx[o])) mx[o] = 0.0;
        acc[o] = 0.0;
      }
    }
    int64_t off = 0;
    for (int d = 0; d < rank; ++d) idx[d] = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double v = static_cast<double>(x[i]);
      double& a = acc[off];
      if (pass == 0) {
        a = v > a ? v : a;
      } else {
        switch (kind) {
          case kReduceMax: a = v > a ? v : a; break;
          case kReduceMin: a = v < a ? v : a; break;
          case kReduceProd: a *= v; break;
          case kReduceSumSquare:
          case kReduceL2: a += v * v; break;
          case kReduceL1: a += std::fabs(v); break;
          case kReduceLogSumExp: a += std::exp(v - mx[off]); break;
          default: a += v; break;
        }
      }
      for (int d = rank - 1; d >= 0; --d) {
        ++idx[d];
        off += out_strides[d];
        if (idx[d] < dims[d]) break;
        off -= out_strides[d] * dims[d];
        idx[d] = 0;
      }
    }
  }
  for (int64_t o = 0; o < out_count; ++o) {
    double a = acc[o];
    switch (kind) {
      case kReduceMean: a = a / static_cast<double>(reduced); break;
      case kReduceL2: a = std::sqrt(a); break;
      case kReduceLogSum: a = std::log(a); break;
      case kReduceLogSumExp: a = std::log(a) + mx[o]; break;
      case kReduceMax:
        if (reduced == 0) a = static_cast<double>(std::numeric_limits<T>::lowest());
        break;
      case kReduceMin:
        if (reduced == 0) a = static_cast<double>(std::numeric_limits<T>::max());
        break;
      default: break;
    }
    y[o] = static_cast<T>(a);
  }
}

// ArgMax (max true) / ArgMin of x seen as [outer, n, inner] over the middle
// axis: the first index of the extreme value, or the last with select_last.
template <typename T>
inline void ArgReduce(int64_t outer, int64_t n, int64_t inner, bool max, bool select_last, const T* x, int64_t* y) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* px = x + o * n * inner + i;
      int64_t best = 0;
      for (int64_t k = 1; k < n; ++k) {
        const T v = px[k * inner], b = px[best * inner];
        const bool better = max ? (select_last ? v >= b : v > b) : (select_last ? v <= b : v < b);
        if (better) best = k;
      }
      y[o * inner + i] = best;
    }
  }
}

// CumSum of x seen as [outer, n, inner] along the middle axis.
template <typename T>
inline void CumSum(int64_t outer, int64_t n, int64_t inner, bool exclusive, bool reverse, const T* x, T* y) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* px = x + o * n * inner + i;
      T* py = y + o * n * inner + i;
      T sum = T(0);
      for (int64_t s = 0; s < n; ++s) {
        const int64_t k = reverse ? n - 1 - s : s;
        if (exclusive) {
          py[k * inner] = sum;
          sum = static_cast<T>(sum + px[k * inner]);
        } else {
          sum = static_cast<T>(sum + px[k * inner]);
          py[k * inner] = sum;
        }
      }
    }
  }
}

}  // namespace hepml_emitted
