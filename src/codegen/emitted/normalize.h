// Softmax, LogSoftmax, Hardmax and LayerNormalization of the emitted code, over a
// tensor seen as [outer, n, inner] with the normalised axis in the middle.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "codegen/emitted/common.h"

namespace hepml_emitted {

// Sum and maximum of n floats over 8 interleaved lanes, combined in a fixed
// order at the end: the compiler keeps the lanes in vector registers (a
// single running float would be a serial chain it may not reorder), and the
// result does not depend on the target's vector width.
inline float SumF(int64_t n, const float* x) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  const int64_t n8 = n - n % 8;
  int64_t k = 0;
  for (; k < n8; k += 8)
    for (int l = 0; l < 8; ++l) acc[l] += x[k + l];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; k < n; ++k) s += x[k];
  return s;
}

inline float MaxF(int64_t n, const float* x) {
  const float lowest = -std::numeric_limits<float>::infinity();
  float acc[8] = {lowest, lowest, lowest, lowest, lowest, lowest, lowest, lowest};
  const int64_t n8 = n - n % 8;
  int64_t k = 0;
  for (; k < n8; k += 8)
    for (int l = 0; l < 8; ++l) acc[l] = x[k + l] > acc[l] ? x[k + l] : acc[l];
  float m = lowest;
  for (int l = 0; l < 8; ++l) m = acc[l] > m ? acc[l] : m;
  for (; k < n; ++k) m = x[k] > m ? x[k] : m;
  return m;
}

// sum of e^(x[k] - shift) over 8 lanes as SumF.
inline float SumExpF(int64_t n, const float* x, float shift) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  const int64_t n8 = n - n % 8;
  int64_t k = 0;
  for (; k < n8; k += 8)
    for (int l = 0; l < 8; ++l) acc[l] += ExpF(x[k + l] - shift);
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; k < n; ++k) s += ExpF(x[k] - shift);
  return s;
}

inline float SoftmaxExp(float v) { return ExpF(v); }
inline double SoftmaxExp(double v) { return std::exp(v); }

// Softmax / log-softmax of float rows of n contiguous values (the last axis,
// as attention scores are): the maximum, then one vectorised pass writing
// e^(x - max), its sum, and one scaling pass; log-softmax sums without
// storing and writes x - max - log(sum) (so x may be y).
//
// Short rows (n < 8: a classifier's few classes) go 16 rows at a time,
// transposed into registers-sized lanes so that the exponentials vectorise
// across rows; each row sees the same operations in the same order as
// below (for n < 8, MaxF, SumF and SumExpF run one lane, in order), so the
// results are the same bits.
inline void SoftmaxRowsF(int64_t rows, int64_t n, const float* x, float* y, bool log) {
  constexpr int64_t kLanes = 16;
  int64_t r0 = 0;
  if (n > 0 && n < 8) {
    for (; r0 + kLanes <= rows; r0 += kLanes) {
      float t[8][kLanes], mx[kLanes], sum[kLanes];
      for (int64_t l = 0; l < kLanes; ++l)
        for (int64_t k = 0; k < n; ++k) t[k][l] = x[(r0 + l) * n + k];
      for (int64_t l = 0; l < kLanes; ++l) {
        mx[l] = -std::numeric_limits<float>::infinity();
        sum[l] = 0.f;
      }
      for (int64_t k = 0; k < n; ++k)
        for (int64_t l = 0; l < kLanes; ++l) mx[l] = t[k][l] > mx[l] ? t[k][l] : mx[l];
      float e[8][kLanes];
      for (int64_t k = 0; k < n; ++k)
        for (int64_t l = 0; l < kLanes; ++l) {
          e[k][l] = ExpF(t[k][l] - mx[l]);
          sum[l] += e[k][l];
        }
      if (log) {
        for (int64_t l = 0; l < kLanes; ++l) sum[l] = std::log(sum[l]);
        for (int64_t k = 0; k < n; ++k)
          for (int64_t l = 0; l < kLanes; ++l) e[k][l] = t[k][l] - mx[l] - sum[l];
      } else {
        for (int64_t l = 0; l < kLanes; ++l) sum[l] = 1.f / sum[l];
        for (int64_t k = 0; k < n; ++k)
          for (int64_t l = 0; l < kLanes; ++l) e[k][l] *= sum[l];
      }
      for (int64_t l = 0; l < kLanes; ++l)
        for (int64_t k = 0; k < n; ++k) y[(r0 + l) * n + k] = e[k][l];
    }
  }
  for (int64_t r = r0; r < rows; ++r) {
    const float* px = x + r * n;
    float* py = y + r * n;
    const float mx = MaxF(n, px);
    if (log) {
      const float ls = std::log(SumExpF(n, px, mx));
      for (int64_t k = 0; k < n; ++k) py[k] = px[k] - mx - ls;
    } else {
      for (int64_t k = 0; k < n; ++k) py[k] = ExpF(px[k] - mx);
      const float inv = 1.f / SumF(n, py);
      for (int64_t k = 0; k < n; ++k) py[k] *= inv;
    }
  }
}

template <typename T>
inline void Softmax(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
  if constexpr (std::is_same<T, float>::value) {
    if (inner == 1) return SoftmaxRowsF(outer, n, x, y, log);
  }
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* px = x + o * n * inner + i;
      T* py = y + o * n * inner + i;
      T mx = -std::numeric_limits<T>::infinity();
      for (int64_t k = 0; k < n; ++k) mx = px[k * inner] > mx ? px[k * inner] : mx;
      T sum = 0;
      for (int64_t k = 0; k < n; ++k) {
        const T e = SoftmaxExp(px[k * inner] - mx);
        sum += e;
        if (!log) py[k * inner] = e;
      }
      if (log) {
        const T ls = std::log(sum);
        for (int64_t k = 0; k < n; ++k) py[k * inner] = px[k * inner] - mx - ls;
      } else {
        const T inv = T(1) / sum;
        for (int64_t k = 0; k < n; ++k) py[k * inner] *= inv;
      }
    }
  }
}

// Hardmax: 1 at the first maximum along the middle axis, 0 elsewhere.
template <typename T>
inline void Hardmax(int64_t outer, int64_t n, int64_t inner, const T* x, T* y) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* px = x + o * n * inner + i;
      T* py = y + o * n * inner + i;
      int64_t best = 0;
      for (int64_t k = 0; k < n; ++k) {
        if (px[k * inner] > px[best * inner]) best = k;
        py[k * inner] = T(0);
      }
      if (n > 0) py[best * inner] = T(1);
    }
  }
}

// y = (x - mean) / sqrt(var + eps) * scale + bias over rows of n; scale and
// bias (bias may be null) hold n values. mean_out / inv_std_out (may be null)
// receive each row's mean and 1 / sqrt(var + eps). Two passes over a row: the
// sums of d = x - x[0] and of d^2 in 8 lanes (shifted by the row's first
// value, so the variance E[d^2] - E[d]^2 does not cancel when the mean is
// large against the spread), then the normalisation.
inline void LayerNorm(int64_t rows, int64_t n, const float* x, const float* scale, const float* bias, float eps,
                      float* y, float* mean_out = nullptr, float* inv_std_out = nullptr) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* px = x + r * n;
    float* py = y + r * n;
    const float shift = n > 0 ? px[0] : 0.f;
    float s1[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f}, s2[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    const int64_t n8 = n - n % 8;
    int64_t k = 0;
    for (; k < n8; k += 8)
      for (int l = 0; l < 8; ++l) {
        const float d = px[k + l] - shift;
        s1[l] += d;
        s2[l] += d * d;
      }
    float t1 = ((s1[0] + s1[4]) + (s1[1] + s1[5])) + ((s1[2] + s1[6]) + (s1[3] + s1[7]));
    float t2 = ((s2[0] + s2[4]) + (s2[1] + s2[5])) + ((s2[2] + s2[6]) + (s2[3] + s2[7]));
    for (; k < n; ++k) {
      const float d = px[k] - shift;
      t1 += d;
      t2 += d * d;
    }
    const float m1 = t1 / static_cast<float>(n);
    const float mean = shift + m1;
    float var = t2 / static_cast<float>(n) - m1 * m1;
    var = var < 0.f ? 0.f : var;  // rounding can make it slightly negative; NaN stays
    const float inv = 1.f / std::sqrt(var + eps);
    if (mean_out) mean_out[r] = mean;
    if (inv_std_out) inv_std_out[r] = inv;
    if (bias) {
      for (int64_t j = 0; j < n; ++j) py[j] = (px[j] - mean) * inv * scale[j] + bias[j];
    } else {
      for (int64_t j = 0; j < n; ++j) py[j] = (px[j] - mean) * inv * scale[j];
    }
  }
}

// Reduction of x seen as [outer, n, inner] over the middle axis:
// kind 0 sum, 1 mean, 2 max, 3 min, 4 prod, 5 sum of squares, 6 L2 norm.
inline void Reduce(int64_t outer, int64_t n, int64_t inner, int kind, const float* x, float* y) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const float* px = x + o * n * inner + i;
      float acc = kind == 2 ? -INFINITY : (kind == 3 ? INFINITY : (kind == 4 ? 1.f : 0.f));
      for (int64_t k = 0; k < n; ++k) {
        const float v = px[k * inner];
        switch (kind) {
          case 2: acc = v > acc ? v : acc; break;
          case 3: acc = v < acc ? v : acc; break;
          case 4: acc *= v; break;
          case 5:
          case 6: acc += v * v; break;
          default: acc += v; break;
        }
      }
      if (kind == 1) acc /= static_cast<float>(n);
      if (kind == 6) acc = std::sqrt(acc);
      y[o * inner + i] = acc;
    }
  }
}

// y = x * scale[c] + shift[c] over x seen as [outer, channels, inner]
// (an unfolded BatchNormalization with its statistics precomputed).
inline void ChannelAffine(int64_t outer, int64_t channels, int64_t inner, const float* x, const float* scale,
                          const float* shift, float* y) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      const float s = scale[c], t = shift[c];
      const float* px = x + (o * channels + c) * inner;
      float* py = y + (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) py[i] = px[i] * s + t;
    }
}

// BatchNormalization with run-time statistics: the per-channel scale and
// shift into s and t (channels values each), then ChannelAffine.
inline void BatchNormScale(int64_t channels, const float* scale, const float* bias, const float* mean,
                           const float* var, float eps, float* s, float* t) {
  for (int64_t c = 0; c < channels; ++c) {
    s[c] = scale[c] / std::sqrt(var[c] + eps);
    t[c] = bias[c] - mean[c] * s[c];
  }
}

// InstanceNormalization: each [n, c] plane of `inner` values normalised, then
// scale[c] and bias[c].
inline void InstanceNorm(int64_t batch, int64_t channels, int64_t inner, const float* x, const float* scale,
                         const float* bias, float eps, float* y) {
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      const float* px = x + (n * channels + c) * inner;
      float* py = y + (n * channels + c) * inner;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < inner; ++i) mean += px[i];
      mean /= static_cast<double>(inner);
      for (int64_t i = 0; i < inner; ++i) var += (px[i] - mean) * (px[i] - mean);
      var /= static_cast<double>(inner);
      const double inv = 1.0 / std::sqrt(var + eps);
      for (int64_t i = 0; i < inner; ++i)
        py[i] = static_cast<float>((px[i] - mean) * inv * scale[c] + bias[c]);
    }
}

}  // namespace hepml_emitted
