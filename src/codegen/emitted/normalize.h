// Softmax, LogSoftmax, Hardmax and LayerNormalization of the emitted code, over a
// tensor seen as [outer, n, inner] with the normalised axis in the middle.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "codegen/emitted/common.h"

namespace hepml_emitted {

template <typename T>
inline void Softmax(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* px = x + o * n * inner + i;
      T* py = y + o * n * inner + i;
      T mx = -std::numeric_limits<T>::infinity();
      for (int64_t k = 0; k < n; ++k) mx = px[k * inner] > mx ? px[k * inner] : mx;
      T sum = 0;
      for (int64_t k = 0; k < n; ++k) {
        const T e = std::exp(px[k * inner] - mx);
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
// receive each row's mean and 1 / sqrt(var + eps).
inline void LayerNorm(int64_t rows, int64_t n, const float* x, const float* scale, const float* bias, float eps,
                      float* y, float* mean_out = nullptr, float* inv_std_out = nullptr) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* px = x + r * n;
    float* py = y + r * n;
    float mean = 0.f;
    for (int64_t k = 0; k < n; ++k) mean += px[k];
    mean /= static_cast<float>(n);
    float var = 0.f;
    for (int64_t k = 0; k < n; ++k) var += (px[k] - mean) * (px[k] - mean);
    var /= static_cast<float>(n);
    const float inv = 1.f / std::sqrt(var + eps);
    if (mean_out) mean_out[r] = mean;
    if (inv_std_out) inv_std_out[r] = inv;
    for (int64_t k = 0; k < n; ++k) py[k] = (px[k] - mean) * inv * scale[k] + (bias ? bias[k] : 0.f);
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
