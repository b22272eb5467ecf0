// Data movement of the emitted code: Transpose, Concat, Slice, Gather,
// GatherElements, ScatterElements, Tile (rank <= 8). Index errors are
// reported by returning false; the generated run() then fails.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "codegen/emitted/common.h"

namespace hepml_emitted {

// y = transpose(x, perm); dims are x's.
template <typename T>
inline void Transpose(int rank, const int64_t* dims, const int64_t* perm, const T* x, T* y) {
  int64_t xs[8], ys_dims[8], idx[8] = {0};
  Strides(rank, dims, xs);
  for (int d = 0; d < rank; ++d) ys_dims[d] = dims[perm[d]];
  const int64_t n = Product(rank, dims);
  if (n == 0) return;
  if (rank == 0) {
    y[0] = x[0];
    return;
  }
  const int64_t inner = ys_dims[rank - 1], step = xs[perm[rank - 1]];
  int64_t off = 0;
  for (int64_t o = 0; o < n / inner; ++o) {
    T* py = y + o * inner;
    for (int64_t j = 0; j < inner; ++j) py[j] = x[off + j * step];
    for (int d = rank - 2; d >= 0; --d) {
      ++idx[d];
      off += xs[perm[d]];
      if (idx[d] < ys_dims[d]) break;
      off -= xs[perm[d]] * ys_dims[d];
      idx[d] = 0;
    }
  }
}

// Copies `rows` rows of `row` elements from x to y with row strides.
template <typename T>
inline void CopyRows(int64_t rows, int64_t row, const T* x, int64_t x_stride, T* y, int64_t y_stride) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(y + r * y_stride, x + r * x_stride, static_cast<size_t>(row) * sizeof(T));
}

// y = x[starts + i * steps] for i over out_dims (steps may be negative).
template <typename T>
inline void Slice(int rank, const int64_t* in_dims, const int64_t* starts, const int64_t* steps,
                  const int64_t* out_dims, const T* x, T* y) {
  int64_t xs[8], idx[8] = {0};
  Strides(rank, in_dims, xs);
  const int64_t n = Product(rank, out_dims);
  if (n == 0) return;
  int64_t base = 0;
  for (int d = 0; d < rank; ++d) base += starts[d] * xs[d];
  const int64_t inner = out_dims[rank - 1], step = steps[rank - 1] * xs[rank - 1];
  int64_t off = base;
  for (int64_t o = 0; o < n / inner; ++o) {
    T* py = y + o * inner;
    for (int64_t j = 0; j < inner; ++j) py[j] = x[off + j * step];
    for (int d = rank - 2; d >= 0; --d) {
      ++idx[d];
      off += steps[d] * xs[d];
      if (idx[d] < out_dims[d]) break;
      off -= steps[d] * xs[d] * out_dims[d];
      idx[d] = 0;
    }
  }
}

// Gather along an axis: x seen as [outer, n, inner], `count` indices.
template <typename T, typename I>
inline bool Gather(int64_t outer, int64_t n, int64_t inner, const T* x, int64_t count, const I* indices, T* y) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < count; ++c) {
      int64_t i = static_cast<int64_t>(indices[c]);
      if (i < 0) i += n;
      if (i < 0 || i >= n) return false;
      std::memcpy(y + (o * count + c) * inner, x + (o * n + i) * inner, static_cast<size_t>(inner) * sizeof(T));
    }
  return true;
}

// GatherElements / ScatterElements on tensors seen as [outer, n, inner]
// along the axis; indices have shape [outer, m, inner] (same rank, each dim
// no larger than the data's: sizes given as idx_dims with the data's strides).
template <typename T, typename I>
inline bool GatherElements(int rank, const int64_t* x_dims, const int64_t* idx_dims, int axis, const T* x,
                           const I* indices, T* y) {
  int64_t xs[8], idx[8] = {0};
  Strides(rank, x_dims, xs);
  const int64_t n = Product(rank, idx_dims);
  for (int64_t e = 0; e < n; ++e) {
    int64_t off = 0;
    for (int d = 0; d < rank; ++d) {
      int64_t v = idx[d];
      if (d == axis) {
        v = static_cast<int64_t>(indices[e]);
        if (v < 0) v += x_dims[axis];
        if (v < 0 || v >= x_dims[axis]) return false;
      }
      off += v * xs[d];
    }
    y[e] = x[off];
    for (int d = rank - 1; d >= 0; --d) {
      if (++idx[d] < idx_dims[d]) break;
      idx[d] = 0;
    }
  }
  return true;
}

// The edge features of an EdgeConv block (ai.hepml EdgeFeatures): x [n, c, p]
// and neighbour indices [n, p, k] along p (from -p) to y [n, 2c, p, k], channel
// ch the point itself, channel c + ch its neighbour minus it.
template <typename I>
inline bool EdgeFeatures(int64_t n, int64_t c, int64_t p, int64_t k, const float* x, const I* idx, float* y) {
  for (int64_t i = 0, e = n * p * k; i < e; ++i)
    if (idx[i] < -p || idx[i] >= p) return false;
  for (int64_t t = 0; t < n * c; ++t) {
    const int64_t s = t / c, ch = t % c;
    const float* xr = x + t * p;
    const I* ir = idx + s * p * k;
    float* center = y + (s * 2 * c + ch) * p * k;
    float* diff = y + (s * 2 * c + c + ch) * p * k;
    for (int64_t q = 0; q < p; ++q) {
      const float v = xr[q];
      for (int64_t j = 0; j < k; ++j) {
        int64_t at = static_cast<int64_t>(ir[q * k + j]);
        at += at < 0 ? p : 0;
        center[q * k + j] = v;
        diff[q * k + j] = xr[at] - v;
      }
    }
  }
  return true;
}

// The factored first layer of an EdgeConv block (ai.hepml EdgeGatherAdd):
// h [n, 2m, p] (per point its own term, then its term as a neighbour) and the
// indices [n, p, k] to y [n, m, p, k] = act(h[s, ch, q] + h[s, m + ch, idx]).
template <typename I>
inline bool EdgeGatherAdd(int64_t n, int64_t m, int64_t p, int64_t k, const float* h, const I* idx, float* y, Act act,
                          float alpha, float beta) {
  for (int64_t i = 0, e = n * p * k; i < e; ++i)
    if (idx[i] < -p || idx[i] >= p) return false;
  for (int64_t t = 0; t < n * m; ++t) {
    const int64_t s = t / m, ch = t % m;
    const float* self = h + (s * 2 * m + ch) * p;
    const float* neighbour = h + (s * 2 * m + m + ch) * p;
    const I* ir = idx + s * p * k;
    float* yr = y + t * p * k;
    for (int64_t q = 0; q < p; ++q) {
      const float v = self[q];
      for (int64_t j = 0; j < k; ++j) {
        int64_t at = static_cast<int64_t>(ir[q * k + j]);
        at += at < 0 ? p : 0;
        yr[q * k + j] = v + neighbour[at];
      }
    }
    ActInPlace(act, yr, p * k, alpha, beta);
  }
  return true;
}

// y (a copy of data, made by the caller) updated at indices with updates:
// reduction 0 none, 1 add, 2 mul, 3 max, 4 min.
template <typename T, typename I>
inline bool ScatterElements(int rank, const int64_t* y_dims, const int64_t* idx_dims, int axis, const I* indices,
                            const T* updates, int reduction, T* y) {
  int64_t ys[8], idx[8] = {0};
  Strides(rank, y_dims, ys);
  const int64_t n = Product(rank, idx_dims);
  for (int64_t e = 0; e < n; ++e) {
    int64_t off = 0;
    for (int d = 0; d < rank; ++d) {
      int64_t v = idx[d];
      if (d == axis) {
        v = static_cast<int64_t>(indices[e]);
        if (v < 0) v += y_dims[axis];
        if (v < 0 || v >= y_dims[axis]) return false;
      }
      off += v * ys[d];
    }
    T& t = y[off];
    const T u = updates[e];
    switch (reduction) {
      case 1: t = t + u; break;
      case 2: t = t * u; break;
      case 3: t = u > t ? u : t; break;
      case 4: t = u < t ? u : t; break;
      default: t = u; break;
    }
    for (int d = rank - 1; d >= 0; --d) {
      if (++idx[d] < idx_dims[d]) break;
      idx[d] = 0;
    }
  }
  return true;
}

// Tile: y[i] = x[i mod x_dims] per dim.
template <typename T>
inline void Tile(int rank, const int64_t* x_dims, const int64_t* y_dims, const T* x, T* y) {
  int64_t xs[8], idx[8] = {0};
  Strides(rank, x_dims, xs);
  const int64_t n = Product(rank, y_dims);
  for (int64_t e = 0; e < n; ++e) {
    int64_t off = 0;
    for (int d = 0; d < rank; ++d) off += (idx[d] % x_dims[d]) * xs[d];
    y[e] = x[off];
    for (int d = rank - 1; d >= 0; --d) {
      if (++idx[d] < y_dims[d]) break;
      idx[d] = 0;
    }
  }
}

// TopK along the middle axis of x seen as [outer, n, inner]: the k largest
// (or smallest) values, ties to the lower index, in order. `order` holds n
// indices of scratch.
template <typename T>
inline void TopK(int64_t outer, int64_t n, int64_t inner, int64_t k, bool largest, const T* x, T* values,
                 int64_t* indices, int64_t* order) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* px = x + o * n * inner + i;
      if (k > 0 && k * 4 <= n) {
        // Few of many (the k-NN of point clouds): insertion into the k best
        // so far, in order; most elements lose to the k-th at once. Same
        // order as the sort below: by value, ties to the lower index.
        int64_t kept = 0;
        for (int64_t j = 0; j < n; ++j) {
          const T v = px[j * inner];
          if (kept == k) {
            const T last = px[order[k - 1] * inner];
            if (!(largest ? v > last : v < last)) continue;  // ties: the kept one has the lower index
            --kept;
          }
          int64_t at = kept;
          while (at > 0) {
            const T prev = px[order[at - 1] * inner];
            if (!(largest ? v > prev : v < prev)) break;
            order[at] = order[at - 1];
            --at;
          }
          order[at] = j;
          ++kept;
        }
      } else {
        for (int64_t j = 0; j < n; ++j) order[j] = j;
        std::partial_sort(order, order + k, order + n, [&](int64_t p, int64_t q) {
          const T a = px[p * inner], b = px[q * inner];
          if (a != b) return largest ? a > b : a < b;
          return p < q;
        });
      }
      for (int64_t j = 0; j < k; ++j) {
        values[(o * k + j) * inner + i] = px[order[j] * inner];
        indices[(o * k + j) * inner + i] = order[j];
      }
    }
  }
}

// Trilu: the upper (j - i >= k) or lower (j - i <= k) triangle of each of
// `batches` [rows, cols] matrices, zeros elsewhere.
template <typename T>
inline void Trilu(int64_t batches, int64_t rows, int64_t cols, int64_t k, bool upper, const T* x, T* y) {
  for (int64_t b = 0; b < batches; ++b)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t at = (b * rows + i) * cols + j;
        const bool keep = upper ? j - i >= k : j - i <= k;
        y[at] = keep ? x[at] : T(0);
      }
}

// Pad: y[y_dims] from x[x_dims] shifted by pad_begin (negative crops).
// mode 0 constant (value), 1 reflect, 2 edge, 3 wrap.
template <typename T>
inline void Pad(int rank, const int64_t* x_dims, const int64_t* y_dims, const int64_t* pad_begin, int mode, T value,
                const T* x, T* y) {
  int64_t xs[8], idx[8] = {0};
  Strides(rank, x_dims, xs);
  const int64_t n = Product(rank, y_dims);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    bool outside = false;
    for (int d = 0; d < rank; ++d) {
      int64_t s = idx[d] - pad_begin[d];
      const int64_t len = x_dims[d];
      if (s < 0 || s >= len) {
        if (mode == 0 || len == 0) {
          outside = true;
          break;
        }
        if (mode == 2) {
          s = s < 0 ? 0 : len - 1;
        } else if (mode == 3) {
          s = ((s % len) + len) % len;
        } else if (len == 1) {
          s = 0;
        } else {
          const int64_t period = 2 * (len - 1);
          s = ((s % period) + period) % period;
          if (s >= len) s = period - s;
        }
      }
      off += s * xs[d];
    }
    y[i] = outside ? value : x[off];
    for (int d = rank - 1; d >= 0; --d) {
      if (++idx[d] < y_dims[d]) break;
      idx[d] = 0;
    }
  }
}

// GatherND: for each of `batches` leading batch entries and each of `tuples`
// index tuples of k values, copies the slice of `slice` elements at
// x[batch][i0, ..., ik-1] (dims in `dims`, negative indices wrap). False when
// an index is out of range.
template <typename T, typename I>
inline bool GatherND(int64_t batches, int64_t tuples, int k, const int64_t* dims, int64_t slice, const T* x,
                     const I* indices, T* y) {
  int64_t x_batch = slice;
  for (int j = 0; j < k; ++j) x_batch *= dims[j];
  for (int64_t b = 0; b < batches; ++b)
    for (int64_t t = 0; t < tuples; ++t) {
      const I* ix = indices + (b * tuples + t) * k;
      int64_t off = 0;
      for (int j = 0; j < k; ++j) {
        int64_t v = static_cast<int64_t>(ix[j]);
        if (v < 0) v += dims[j];
        if (v < 0 || v >= dims[j]) return false;
        off = off * dims[j] + v;
      }
      const T* src = x + b * x_batch + off * slice;
      T* dst = y + (b * tuples + t) * slice;
      for (int64_t e = 0; e < slice; ++e) dst[e] = src[e];
    }
  return true;
}

// ScatterND into y (already a copy of the data): each of `tuples` index
// tuples of k values selects a slice of `slice` elements that receives the
// update (reduction 0 none, 1 add, 2 mul, 3 max, 4 min).
template <typename T, typename I>
inline bool ScatterND(int64_t tuples, int k, const int64_t* dims, int64_t slice, const I* indices, const T* updates,
                      int reduction, T* y) {
  for (int64_t t = 0; t < tuples; ++t) {
    const I* ix = indices + t * k;
    int64_t off = 0;
    for (int j = 0; j < k; ++j) {
      int64_t v = static_cast<int64_t>(ix[j]);
      if (v < 0) v += dims[j];
      if (v < 0 || v >= dims[j]) return false;
      off = off * dims[j] + v;
    }
    T* dst = y + off * slice;
    const T* src = updates + t * slice;
    for (int64_t e = 0; e < slice; ++e) {
      switch (reduction) {
        case 1: dst[e] = static_cast<T>(dst[e] + src[e]); break;
        case 2: dst[e] = static_cast<T>(dst[e] * src[e]); break;
        case 3: dst[e] = src[e] > dst[e] ? src[e] : dst[e]; break;
        case 4: dst[e] = src[e] < dst[e] ? src[e] : dst[e]; break;
        default: dst[e] = src[e]; break;
      }
    }
  }
  return true;
}

}  // namespace hepml_emitted
