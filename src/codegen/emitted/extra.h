// Kernels of the less common operators of the emitted code: Einsum (one loop
// over every label combination), Det, LRN, MeanVarianceNormalization,
// ReverseSequence and BatchNormalization in training mode.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "codegen/emitted/common.h"

namespace hepml_emitted {

// Einsum over L labels (L <= 16) of n_in inputs (n_in <= 8): size[l] is the
// extent of label l, istride[i * L + l] the stride input i moves by per step
// of label l (0 when the input lacks it or broadcasts it; a label repeated in
// one input, a diagonal, has the strides summed), ostride[l] the output's
// (0 for summed labels). y[out] = sum over the summed labels of the product
// of the inputs.
template <typename T>
inline void Einsum(int n_in, const T* const* x, int L, const int64_t* size, const int64_t* istride,
                   const int64_t* ostride, int64_t out_count, T* y) {
  for (int64_t i = 0; i < out_count; ++i) y[i] = T(0);
  int64_t total = 1;
  for (int l = 0; l < L; ++l) total *= size[l];
  if (total == 0) return;
  int64_t idx[16] = {0}, off[8] = {0}, yo = 0;
  for (int64_t it = 0; it < total; ++it) {
    T p = T(1);
    for (int i = 0; i < n_in; ++i) p = p * x[i][off[i]];
    y[yo] = y[yo] + p;
    for (int l = L - 1; l >= 0; --l) {
      ++idx[l];
      for (int i = 0; i < n_in; ++i) off[i] += istride[i * L + l];
      yo += ostride[l];
      if (idx[l] < size[l]) break;
      for (int i = 0; i < n_in; ++i) off[i] -= istride[i * L + l] * size[l];
      yo -= ostride[l] * size[l];
      idx[l] = 0;
    }
  }
}

// Determinants of batch n x n matrices by LU decomposition with partial
// pivoting in double; lu holds n * n doubles.
template <typename T>
inline void Det(int64_t batch, int64_t n, const T* x, double* lu, T* y) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < n * n; ++i) lu[i] = static_cast<double>(x[b * n * n + i]);
    double det = 1.0;
    for (int64_t k = 0; k < n; ++k) {
      int64_t p = k;
      for (int64_t i = k + 1; i < n; ++i)
        if (std::fabs(lu[i * n + k]) > std::fabs(lu[p * n + k])) p = i;
      if (lu[p * n + k] == 0.0) {
        det = 0.0;
        break;
      }
      if (p != k) {
        for (int64_t j = 0; j < n; ++j) {
          const double t = lu[k * n + j];
          lu[k * n + j] = lu[p * n + j];
          lu[p * n + j] = t;
        }
        det = -det;
      }
      det *= lu[k * n + k];
      for (int64_t i = k + 1; i < n; ++i) {
        const double f = lu[i * n + k] / lu[k * n + k];
        for (int64_t j = k; j < n; ++j) lu[i * n + j] -= f * lu[k * n + j];
      }
    }
    y[b] = static_cast<T>(det);
  }
}

// LRN over x [N, C, inner]: x / (bias + alpha / size * sum of x^2 over the
// channels c - floor((size - 1) / 2) .. c + ceil((size - 1) / 2)) ^ beta.
template <typename T>
inline void Lrn(int64_t N, int64_t C, int64_t inner, int64_t size, float alpha, float beta, float bias, const T* x,
                T* y) {
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        double s = 0.0;
        for (int64_t k = c - before; k <= c + after; ++k) {
          if (k < 0 || k >= C) continue;
          const double v = static_cast<double>(x[(n * C + k) * inner + i]);
          s += v * v;
        }
        const int64_t at = (n * C + c) * inner + i;
        y[at] = static_cast<T>(static_cast<double>(x[at]) /
                               std::pow(static_cast<double>(bias) + static_cast<double>(alpha) / static_cast<double>(size) * s,
                                        static_cast<double>(beta)));
      }
}

// MeanVarianceNormalization: (x - mean) / (sqrt(E[x^2] - mean^2) + 1e-9)
// with the statistics over the axes where reduced[d] is non-zero (rank <= 8);
// stats holds 2 doubles per group of the kept axes.
template <typename T>
inline void MeanVarianceNormalization(int rank, const int64_t* dims, const int* reduced, const T* x, double* stats,
                                      T* y) {
  int64_t gstride[8], groups = 1;
  for (int d = rank - 1; d >= 0; --d) {
    gstride[d] = reduced[d] ? 0 : groups;
    if (!reduced[d]) groups *= dims[d];
  }
  const int64_t total = Product(rank, dims);
  if (total == 0) return;
  for (int64_t g = 0; g < 2 * groups; ++g) stats[g] = 0.0;
  for (int pass = 0; pass < 2; ++pass) {
    int64_t idx[8] = {0}, g = 0;
    for (int64_t e = 0; e < total; ++e) {
      const double v = static_cast<double>(x[e]);
      if (pass == 0) {
        stats[2 * g] += v;
        stats[2 * g + 1] += v * v;
      } else {
        y[e] = static_cast<T>((v - stats[2 * g]) / stats[2 * g + 1]);
      }
      for (int d = rank - 1; d >= 0; --d) {
        ++idx[d];
        g += gstride[d];
        if (idx[d] < dims[d]) break;
        g -= gstride[d] * dims[d];
        idx[d] = 0;
      }
    }
    if (pass == 0) {
      const double count = static_cast<double>(total / groups);
      for (int64_t k = 0; k < groups; ++k) {
        const double mean = stats[2 * k] / count;
        const double var = stats[2 * k + 1] / count - mean * mean;
        stats[2 * k] = mean;
        stats[2 * k + 1] = std::sqrt(var > 0.0 ? var : 0.0) + 1e-9;
      }
    }
  }
}

// ReverseSequence over x [T, B, inner] (time major) or [B, T, inner]: row b's
// first lens[b] steps reversed, the rest copied.
template <typename T, typename I>
inline bool ReverseSequence(int64_t steps, int64_t B, int64_t inner, bool batch_major, const T* x, const I* lens,
                            T* y) {
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = static_cast<int64_t>(lens[b]);
    if (len < 0 || len > steps) return false;
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t from = t < len ? len - 1 - t : t;
      const int64_t dst = batch_major ? b * steps + t : t * B + b, src = batch_major ? b * steps + from : from * B + b;
      std::memcpy(y + dst * inner, x + src * inner, static_cast<size_t>(inner) * sizeof(T));
    }
  }
  return true;
}

// BatchNormalization with training_mode = 1 over x [N, C, inner]: each
// channel normalised with its batch mean and (population) variance; the
// running statistics out (may be null) are mean_in * momentum + batch
// statistic * (1 - momentum).
template <typename T>
inline void BatchNormTraining(int64_t N, int64_t C, int64_t inner, const T* x, const T* scale, const T* bias,
                              const T* mean_in, const T* var_in, float eps, float momentum, T* y, T* mean_out,
                              T* var_out) {
  const double count = static_cast<double>(N * inner);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0.0, sq = 0.0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const double v = static_cast<double>(x[(n * C + c) * inner + i]);
        s += v;
        sq += v * v;
      }
    const double mean = count > 0 ? s / count : 0.0;
    double var = count > 0 ? sq / count - mean * mean : 0.0;
    var = var > 0.0 ? var : 0.0;
    const double inv = 1.0 / std::sqrt(var + static_cast<double>(eps));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t at = (n * C + c) * inner + i;
        y[at] = static_cast<T>((static_cast<double>(x[at]) - mean) * inv * static_cast<double>(scale[c]) +
                               static_cast<double>(bias[c]));
      }
    const double m = static_cast<double>(momentum);
    if (mean_out) mean_out[c] = static_cast<T>(static_cast<double>(mean_in[c]) * m + mean * (1.0 - m));
    if (var_out) var_out[c] = static_cast<T>(static_cast<double>(var_in[c]) * m + var * (1.0 - m));
  }
}

}  // namespace hepml_emitted
