// Resize / Upsample of the emitted code: separable passes, one per resized
// axis, last axis first (the reference's order), in double precision. The
// tap tables (input index and weight per output index and tap, and which
// output indices take the extrapolation value) are computed by the compiler
// with the runtime's own planner (ops/resize_plan.h) and stored in the weights.
#pragma once

#include <cstdint>

#include "codegen/emitted/common.h"

namespace hepml_emitted {

// x seen as [outer, in_len, inner] -> y [outer, out_len, inner].
inline void ResizeAxis(int64_t outer, int64_t in_len, int64_t out_len, int64_t inner, int64_t taps,
                       const int64_t* index, const double* weight, const unsigned char* outside,
                       double extrapolation, const double* x, double* y) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < out_len; ++j) {
      double* dst = y + (o * out_len + j) * inner;
      if (outside[j]) {
        for (int64_t i = 0; i < inner; ++i) dst[i] = extrapolation;
        continue;
      }
      for (int64_t i = 0; i < inner; ++i) dst[i] = 0.0;
      for (int64_t t = 0; t < taps; ++t) {
        const double w = weight[j * taps + t];
        if (w == 0.0) continue;
        const double* src = x + (o * in_len + index[j * taps + t]) * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] += w * src[i];
      }
    }
  }
}

template <typename T>
inline void ToDouble(int64_t n, const T* x, double* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<double>(x[i]);
}

template <typename T>
inline void FromDouble(int64_t n, const double* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(x[i]);
}

}  // namespace hepml_emitted
