// Kernels of the less common operators of the emitted code: Einsum (one loop
// over every label combination), Det, LRN, MeanVarianceNormalization,
// ReverseSequence and BatchNormalization in training mode.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

#include "codegen/emitted/common.h"
#include "codegen/emitted/conv.h"

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

// GridSample over x [N, C, in...] (r = 1..3 spatial axes) at the points of
// grid [N, out..., r] (normalised to [-1, 1], the last axis first): mode 0
// nearest, 1 linear, 2 cubic (A = -0.75); padding 0 zeros, 1 border, 2
// reflection; the same rules as hepml's runtime kernel (PyTorch's
// grid_sample for cubic next to a border).
inline double GridReflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (!(range > 0.0)) return lo;
  if (x < lo) {
    const double dx = lo - x, k = std::floor(dx / range), r = dx - k * range;
    return std::fmod(k, 2.0) == 0.0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi, k = std::floor(dx / range), r = dx - k * range;
    return std::fmod(k, 2.0) == 0.0 ? hi - r : lo + r;
  }
  return x;
}

inline double GridCubic(double x) {
  const double A = -0.75;
  x = std::fabs(x);
  if (x <= 1.0) return ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
  return 0.0;
}

template <typename T>
inline void GridSample(int r, int64_t N, int64_t C, const int64_t* in_sp, int64_t n_out, int mode, int pad, bool align,
                       const T* x, const T* grid, T* y) {
  int64_t n_in = 1, in_strides[3] = {1, 1, 1};
  for (int d = r - 1; d >= 0; --d) {
    in_strides[d] = n_in;
    n_in *= in_sp[d];
  }
  const int taps = mode == 0 ? 1 : mode == 1 ? 2 : 4;
  for (int64_t q = 0; q < N * n_out; ++q) {
    const int64_t n = q / n_out, p = q % n_out;
    const T* gp = grid + q * r;
    int64_t tidx[3][4];
    double tw[3][4];
    for (int d = 0; d < r; ++d) {
      const double L = static_cast<double>(in_sp[d]);
      const double v = static_cast<double>(gp[r - 1 - d]);
      double c = align ? (v + 1.0) / 2.0 * (L - 1.0) : ((v + 1.0) * L - 1.0) / 2.0;
      const double lo_b = align ? 0.0 : -0.5, hi_b = align ? L - 1.0 : L - 0.5;
      if (c != c) c = pad == 0 ? -(L + 8.0) : 0.0;
      if (mode == 0) c = r == 3 ? std::round(c) : std::nearbyint(c);
      if (c < lo_b || c > hi_b) {
        if (pad == 1 && mode != 2) c = c < 0.0 ? 0.0 : (c > L - 1.0 ? L - 1.0 : c);
        else if (pad == 2) c = GridReflect(c, lo_b, hi_b);
      }
      c = c < -(L + 8.0) ? -(L + 8.0) : (c > L + 8.0 ? L + 8.0 : c);
      int64_t first;
      if (mode == 0) {
        first = static_cast<int64_t>(c);
        tw[d][0] = 1.0;
      } else {
        const double f = std::floor(c), t = c - f;
        first = static_cast<int64_t>(f) - (mode == 2 ? 1 : 0);
        if (mode == 1) {
          tw[d][0] = 1.0 - t;
          tw[d][1] = t;
        } else {
          for (int k = 0; k < 4; ++k) tw[d][k] = GridCubic(static_cast<double>(k - 1) - t);
        }
      }
      const int64_t len = in_sp[d];
      for (int k = 0; k < taps; ++k) {
        int64_t i = first + k;
        if (i < 0 || i >= len) {
          if (pad == 0) {
            i = -1;
          } else if (pad == 1) {
            i = i < 0 ? 0 : len - 1;
          } else {
            i = static_cast<int64_t>(GridReflect(static_cast<double>(i), lo_b, hi_b));
            i = i < 0 ? 0 : (i > len - 1 ? len - 1 : i);
          }
        }
        tidx[d][k] = i;
      }
    }
    const T* xn = x + n * C * n_in;
    T* yn = y + n * C * n_out + p;
    for (int64_t ch = 0; ch < C; ++ch) {
      double acc = 0.0;
      int combo[3] = {0, 0, 0};
      while (true) {
        double w = 1.0;
        int64_t off = 0;
        bool zero = false;
        for (int d = 0; d < r; ++d) {
          const int64_t i = tidx[d][combo[d]];
          w *= tw[d][combo[d]];
          if (i < 0) zero = true;
          off += i * in_strides[d];
        }
        if (!zero && w != 0.0) acc += w * static_cast<double>(xn[ch * n_in + off]);
        int d = r - 1;
        for (; d >= 0; --d) {
          if (++combo[d] < taps) break;
          combo[d] = 0;
        }
        if (d < 0) break;
      }
      yn[ch * n_out] = static_cast<T>(acc);
    }
  }
}

// TfIdfVectorizer over int32 / int64 tokens x [rows, c]: the pool's n-grams
// as a trie built by the compiler (node k's children are edges first[k] ..
// first[k] + count[k] - 1, keyed by token; col[k] the output column of the
// n-gram ending at node k, or -1), counted with up to max_skip tokens skipped
// between the members of an n-gram (unigrams once). mode 0 TF, 1 IDF, 2
// TFIDF; weights per output column or null. counts holds rows * out_size.
template <typename Tok>
inline void TfIdf(int64_t rows, int64_t c, const Tok* x, int64_t min_n, int64_t max_n, int64_t max_skip,
                  const int64_t* first, const int64_t* count, const int64_t* key, const int64_t* child,
                  const int64_t* col, int mode, const float* weights, int64_t out_size, int64_t* counts, float* y) {
  for (int64_t i = 0; i < rows * out_size; ++i) counts[i] = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const Tok* row = x + r * c;
    int64_t* cr = counts + r * out_size;
    int64_t start_n = min_n;
    for (int64_t skip = 0; skip <= max_skip; ++skip) {
      const int64_t dist = skip + 1;
      for (int64_t begin = 0; begin < c; ++begin) {
        if (begin + dist * (start_n - 1) >= c) break;
        int64_t node = 0;
        for (int64_t n = 1, pos = begin; n <= max_n && pos < c; ++n, pos += dist) {
          int64_t next = -1;
          const int64_t token = static_cast<int64_t>(row[pos]);
          for (int64_t e = first[node]; e < first[node] + count[node]; ++e)
            if (key[e] == token) {
              next = child[e];
              break;
            }
          if (next < 0) break;
          node = next;
          if (n >= start_n && col[node] >= 0) ++cr[col[node]];
        }
      }
      if (start_n == 1) {
        ++start_n;
        if (start_n > max_n) break;
      }
    }
  }
  for (int64_t i = 0; i < rows * out_size; ++i) {
    const float w = weights != nullptr ? weights[i % out_size] : 1.f;
    const int64_t f = counts[i];
    y[i] = mode == 0 ? static_cast<float>(f) : mode == 1 ? (f > 0 ? w : 0.f) : w * static_cast<float>(f);
  }
}

// Dropout (opset 12+) with training_mode given: when training, an element
// is kept when u >= ratio, u uniform in [0, 1) from numpy's legacy stream
// (MT19937 seeded with `seed`, 53-bit doubles from two draws), and scaled by
// 1 / (1 - ratio); else the identity. mask (may be null) marks the kept ones.
template <typename T>
inline void Dropout(int64_t n, const T* x, double ratio, bool training, uint32_t seed, T* y, bool* mask) {
  if (!training) {
    for (int64_t i = 0; i < n; ++i) {
      y[i] = x[i];
      if (mask) mask[i] = true;
    }
    return;
  }
  std::mt19937 mt(seed);
  const double scale = ratio < 1.0 ? 1.0 / (1.0 - ratio) : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t a = static_cast<uint32_t>(mt()) >> 5, b = static_cast<uint32_t>(mt()) >> 6;
    const double u = (a * 67108864.0 + b) / 9007199254740992.0;
    const bool keep = ratio < 1.0 && u >= ratio;
    y[i] = keep ? static_cast<T>(static_cast<double>(x[i]) * scale) : T(0);
    if (mask) mask[i] = keep;
  }
}

// MaxPool of any element type with the Indices output (may be null): the
// flat index of each maximum in x, row major over the spatial dims, or
// column major when col_major (storage_order 1). Padding never wins.
template <typename T>
inline void MaxPoolIndices(const ConvGeometry& g, int64_t planes, bool col_major, const T* x, T* y, int64_t* idx) {
  const ConvGeometry g3 = As3d(g);
  const int64_t *in = g3.in, *out = g3.out, *ker = g3.kernel, *str = g3.stride, *dil = g3.dilation,
                *pad = g3.pad_begin;
  const int64_t in_size = in[0] * in[1] * in[2], out_size = out[0] * out[1] * out[2];
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * in_size;
    for (int64_t o0 = 0; o0 < out[0]; ++o0)
      for (int64_t o1 = 0; o1 < out[1]; ++o1)
        for (int64_t o2 = 0; o2 < out[2]; ++o2) {
          T acc = T(0);
          int64_t at = -1, at_col = -1;
          for (int64_t k0 = 0; k0 < ker[0]; ++k0) {
            const int64_t i0 = o0 * str[0] - pad[0] + k0 * dil[0];
            if (i0 < 0 || i0 >= in[0]) continue;
            for (int64_t k1 = 0; k1 < ker[1]; ++k1) {
              const int64_t i1 = o1 * str[1] - pad[1] + k1 * dil[1];
              if (i1 < 0 || i1 >= in[1]) continue;
              for (int64_t k2 = 0; k2 < ker[2]; ++k2) {
                const int64_t i2 = o2 * str[2] - pad[2] + k2 * dil[2];
                if (i2 < 0 || i2 >= in[2]) continue;
                const int64_t off = (i0 * in[1] + i1) * in[2] + i2;
                if (at < 0 || xp[off] > acc) {
                  acc = xp[off];
                  at = off;
                  at_col = i0 + in[0] * (i1 + in[1] * i2);
                }
              }
            }
          }
          const int64_t o = p * out_size + (o0 * out[1] + o1) * out[2] + o2;
          y[o] = acc;
          if (idx) idx[o] = at < 0 ? -1 : p * in_size + (col_major ? at_col : at);
        }
  }
}

// MaxUnpool: y (dims out) zero but for y[idx[i]] = x[i], the indices flat
// in the tensor MaxPool saw (dims full); when out differs from full, each
// index goes to the same coordinates of y, dropped outside it (rank <= 8).
// False for an index outside full.
template <typename T, typename I>
inline bool MaxUnpool(int rank, const int64_t* full, const int64_t* out, int64_t n, const T* x, const I* idx, T* y) {
  int64_t fs[8], os[8];
  Strides(rank, full, fs);
  Strides(rank, out, os);
  const int64_t full_size = Product(rank, full), out_size = Product(rank, out);
  for (int64_t i = 0; i < out_size; ++i) y[i] = T(0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = static_cast<int64_t>(idx[i]);
    if (k < 0 || k >= full_size) return false;
    int64_t o = 0;
    bool inside = true;
    for (int d = 0; d < rank; ++d) {
      const int64_t c = k / fs[d];
      k %= fs[d];
      if (c >= out[d]) inside = false;
      o += c * os[d];
    }
    if (inside) y[o] = x[i];
  }
  return true;
}

// RoiAlign (opset 10 / 16) on x [N, C, H, W]: for roi r (x1, y1, x2, y2 in
// rois[4r..]) of image bidx[r], y[r, c, ph, pw] is the average (or the max of
// the weighted corner values, as the reference and ONNX Runtime) of
// gh x gw bilinear samples per bin, computed in double. False when a batch
// index is outside [0, N).
template <typename T, typename R, typename I>
inline bool RoiAlign(int64_t N, int64_t C, int64_t H, int64_t W, const T* x, int64_t num_rois, const R* rois,
                     const I* bidx, int64_t oh, int64_t ow, int64_t sampling, double spatial_scale, bool half_pixel,
                     bool is_max, T* y) {
  for (int64_t r = 0; r < num_rois; ++r)
    if (bidx[r] < 0 || static_cast<int64_t>(bidx[r]) >= N) return false;
  for (int64_t r = 0; r < num_rois; ++r) {
    const double offset = half_pixel ? 0.5 : 0.0;
    const double start_w = static_cast<double>(rois[4 * r]) * spatial_scale - offset;
    const double start_h = static_cast<double>(rois[4 * r + 1]) * spatial_scale - offset;
    const double end_w = static_cast<double>(rois[4 * r + 2]) * spatial_scale - offset;
    const double end_h = static_cast<double>(rois[4 * r + 3]) * spatial_scale - offset;
    double roi_w = end_w - start_w, roi_h = end_h - start_h;
    if (!half_pixel) {
      roi_w = roi_w > 1.0 ? roi_w : 1.0;
      roi_h = roi_h > 1.0 ? roi_h : 1.0;
    }
    const double bin_h = roi_h / static_cast<double>(oh), bin_w = roi_w / static_cast<double>(ow);
    auto grid = [&](double v) -> int64_t {
      if (sampling > 0) return sampling;
      const double c = std::ceil(v);
      if (!(c > 0.0)) return 0;
      return static_cast<int64_t>(c < 1.0e6 ? c : 1.0e6);
    };
    const int64_t gh = grid(bin_h), gw = grid(bin_w);
    const double count = static_cast<double>(gh * gw > 1 ? gh * gw : 1);
    for (int64_t c = 0; c < C; ++c) {
      const T* xc = x + (static_cast<int64_t>(bidx[r]) * C + c) * H * W;
      T* yc = y + (r * C + c) * oh * ow;
      for (int64_t ph = 0; ph < oh; ++ph) {
        for (int64_t pw = 0; pw < ow; ++pw) {
          double out = 0.0;
          bool first = true;
          for (int64_t iy = 0; iy < gh; ++iy) {
            const double yy = start_h + static_cast<double>(ph) * bin_h + (static_cast<double>(iy) + 0.5) * bin_h / static_cast<double>(gh);
            for (int64_t ix = 0; ix < gw; ++ix) {
              double xx = start_w + static_cast<double>(pw) * bin_w + (static_cast<double>(ix) + 0.5) * bin_w / static_cast<double>(gw);
              double yv = yy;
              double v[4] = {0.0, 0.0, 0.0, 0.0};
              if (yv >= -1.0 && yv <= static_cast<double>(H) && xx >= -1.0 && xx <= static_cast<double>(W)) {
                yv = yv > 0.0 ? yv : 0.0;
                xx = xx > 0.0 ? xx : 0.0;
                int64_t y_lo = static_cast<int64_t>(yv), x_lo = static_cast<int64_t>(xx), y_hi, x_hi;
                if (y_lo >= H - 1) {
                  y_hi = y_lo = H - 1;
                  yv = static_cast<double>(y_lo);
                } else {
                  y_hi = y_lo + 1;
                }
                if (x_lo >= W - 1) {
                  x_hi = x_lo = W - 1;
                  xx = static_cast<double>(x_lo);
                } else {
                  x_hi = x_lo + 1;
                }
                const double ly = yv - static_cast<double>(y_lo), lx = xx - static_cast<double>(x_lo);
                const double hy = 1.0 - ly, hx = 1.0 - lx;
                v[0] = hy * hx * static_cast<double>(xc[y_lo * W + x_lo]);
                v[1] = hy * lx * static_cast<double>(xc[y_lo * W + x_hi]);
                v[2] = ly * hx * static_cast<double>(xc[y_hi * W + x_lo]);
                v[3] = ly * lx * static_cast<double>(xc[y_hi * W + x_hi]);
              }
              if (is_max) {
                double m = v[0] > v[1] ? v[0] : v[1];
                m = m > v[2] ? m : v[2];
                m = m > v[3] ? m : v[3];
                out = first ? m : (m > out ? m : out);
              } else {
                out += v[0] + v[1] + v[2] + v[3];
              }
              first = false;
            }
          }
          if (!is_max) out /= count;
          yc[ph * ow + pw] = static_cast<T>(out);
        }
      }
    }
  }
  return true;
}

// DFT along one axis, directly (O(n^2), in double): x [outer, len_in, inner,
// comp] (comp 1: real, 2: complex), zero-padded or cut to n; y [outer, out_n,
// inner, 2] holds the first out_n bins (n / 2 + 1 when one-sided). The
// inverse includes the 1 / n factor.
template <typename T>
inline void Dft(int64_t outer, int64_t len_in, int64_t inner, int comp, int64_t n, int64_t out_n, bool inverse,
                const T* x, T* y) {
  const double two_pi = 6.283185307179586476925286766559;
  const int64_t copy_n = len_in < n ? len_in : n;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* src = x + (o * len_in * inner + i) * comp;
      T* dst = y + (o * out_n * inner + i) * 2;
      for (int64_t k = 0; k < out_n; ++k) {
        double re = 0.0, im = 0.0;
        for (int64_t j = 0; j < copy_n; ++j) {
          const double angle = (inverse ? two_pi : -two_pi) * static_cast<double>((j * k) % n) / static_cast<double>(n);
          const double c = std::cos(angle), s = std::sin(angle);
          const double xr = static_cast<double>(src[j * inner * comp]);
          const double xi = comp == 2 ? static_cast<double>(src[j * inner * comp + 1]) : 0.0;
          re += xr * c - xi * s;
          im += xr * s + xi * c;
        }
        if (inverse) {
          re /= static_cast<double>(n);
          im /= static_cast<double>(n);
        }
        dst[k * inner * 2] = static_cast<T>(re);
        dst[k * inner * 2 + 1] = static_cast<T>(im);
      }
    }
  }
}

// STFT: signal x [batch, length, comp], frames of frame_length every step,
// times the window (nullptr: ones), each transformed; y [batch, frames, bins, 2].
template <typename T>
inline void Stft(int64_t batch, int64_t length, int comp, int64_t step, const T* window, int64_t frame_length,
                 int64_t frames, int64_t bins, const T* x, T* y) {
  const double two_pi = 6.283185307179586476925286766559;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t f = 0; f < frames; ++f) {
      const T* src = x + (b * length + f * step) * comp;
      T* dst = y + (b * frames + f) * bins * 2;
      for (int64_t k = 0; k < bins; ++k) {
        double re = 0.0, im = 0.0;
        for (int64_t j = 0; j < frame_length; ++j) {
          const double w = window ? static_cast<double>(window[j]) : 1.0;
          const double angle = -two_pi * static_cast<double>((j * k) % frame_length) / static_cast<double>(frame_length);
          const double c = std::cos(angle), s = std::sin(angle);
          const double xr = static_cast<double>(src[j * comp]) * w;
          const double xi = comp == 2 ? static_cast<double>(src[j * comp + 1]) * w : 0.0;
          re += xr * c - xi * s;
          im += xr * s + xi * c;
        }
        dst[2 * k] = static_cast<T>(re);
        dst[2 * k + 1] = static_cast<T>(im);
      }
    }
  }
}

// MelWeightMatrix as the ONNX reference: num_mel_bins + 2 points evenly
// spaced in mel, mapped to DFT bins by floor((dft_length + 1) * hz /
// sample_rate); y [dft_length / 2 + 1, mels] of triangular filters. False
// when an edge maps past the last bin or the arguments are out of range.
template <typename T>
inline bool MelWeightMatrix(int64_t mels, int64_t dft_length, double sample_rate, double lower, double upper, T* y) {
  const int64_t spec_bins = dft_length / 2 + 1;
  if (mels <= 0 || mels > 4096 || dft_length <= 0 || !(sample_rate > 0) || !(lower >= 0 && upper >= lower) ||
      !std::isfinite(upper))
    return false;
  for (int64_t i = 0; i < spec_bins * mels; ++i) y[i] = static_cast<T>(0);
  const double low_mel = 2595.0 * std::log10(1.0 + lower / 700.0), high_mel = 2595.0 * std::log10(1.0 + upper / 700.0);
  const double step = (high_mel - low_mel) / static_cast<double>(mels + 2);
  auto point = [&](int64_t i, int64_t* bin) {
    const double mel = static_cast<double>(i) * step + low_mel;
    const double hz = 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
    const double b = std::floor(static_cast<double>(dft_length + 1) * hz / sample_rate);
    if (!(b >= 0 && b < static_cast<double>(spec_bins))) return false;
    *bin = static_cast<int64_t>(b);
    return true;
  };
  for (int64_t i = 0; i < mels; ++i) {
    int64_t left, center, right;
    if (!point(i, &left) || !point(i + 1, &center) || !point(i + 2, &right)) return false;
    if (center == left) {
      y[center * mels + i] = static_cast<T>(1.0);
    } else {
      for (int64_t j = left; j <= center; ++j)
        y[j * mels + i] = static_cast<T>(static_cast<double>(j - left) / static_cast<double>(center - left));
    }
    for (int64_t j = center; j < right; ++j)
      y[j * mels + i] = static_cast<T>(static_cast<double>(right - j) / static_cast<double>(right - center));
  }
  return true;
}

}  // namespace hepml_emitted
