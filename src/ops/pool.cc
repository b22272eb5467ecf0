// Pooling operators: AveragePool, MaxPool (with Indices), LpPool, their
// Global* forms, MaxUnpool and MaxRoiPool. Window geometry from conv.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "ops/conv.h"
#include "ops/direct_conv.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// Error unless inputs [0, n) are all present.
absl::Status RequireInputs(const KernelContext& ctx, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is required");
  }
  return absl::OkStatus();
}


constexpr int kMaxPoolDims = 8;

// The windows of one spatial dim, per output coordinate: the valid kernel
// offsets [kmin, kmax), the input coordinate of kernel offset 0, and how many
// offsets fall inside the padded input (count_include_pad divisor).
struct DimWindows {
  std::vector<int64_t> kmin, kmax, start, padded;
};

std::vector<DimWindows> PrecomputeWindows(const WindowGeometry& g) {
  std::vector<DimWindows> dims(g.nd);
  for (int d = 0; d < g.nd; ++d) {
    DimWindows& w = dims[d];
    const int64_t s = g.strides[d], dil = g.dilations[d], k = g.kernel[d], in = g.in[d];
    for (int64_t o = 0; o < g.out[d]; ++o) {
      const int64_t start = o * s - g.pads_begin[d];
      int64_t kmin = 0, kmax = k, padded = 0;
      while (kmin < k && start + kmin * dil < 0) ++kmin;
      while (kmax > kmin && start + (kmax - 1) * dil >= in) --kmax;
      for (int64_t q = 0; q < k; ++q) {
        const int64_t p = start + q * dil;
        if (p >= -g.pads_begin[d] && p < in + g.pads_end[d]) ++padded;
      }
      w.kmin.push_back(kmin);
      w.kmax.push_back(kmax);
      w.start.push_back(start);
      w.padded.push_back(padded);
    }
  }
  return dims;
}

// Calls visit(out_index, window) for each output point of one plane, then
// for each valid input point of the window window.Add(in_index, coords).
// `Window` has Reset(out_index, padded_count), Add(in_offset, coord*) and
// Finish(out_index, valid_count).
template <typename Window>
void PoolPlane(const WindowGeometry& g, const std::vector<DimWindows>& dims, const Shape& in_strides,
               Window& win) {
  const int nd = g.nd;
  const int64_t out_size = g.OutSize();
  int64_t od[kMaxPoolDims] = {0};
  int64_t kd[kMaxPoolDims];
  int64_t coord[kMaxPoolDims];
  for (int64_t o = 0; o < out_size; ++o) {
    bool empty = false;
    int64_t padded = 1;
    for (int d = 0; d < nd; ++d) {
      const DimWindows& w = dims[d];
      kd[d] = w.kmin[od[d]];
      if (kd[d] >= w.kmax[od[d]]) empty = true;
      padded *= w.padded[od[d]];
    }
    win.Reset(padded);
    int64_t count = 0;
    if (!empty) {
      while (true) {
        int64_t offset = 0;
        for (int d = 0; d < nd; ++d) {
          coord[d] = dims[d].start[od[d]] + kd[d] * g.dilations[d];
          offset += coord[d] * in_strides[d];
        }
        win.Add(offset, coord);
        ++count;
        int d = nd - 1;
        for (; d >= 0; --d) {
          if (++kd[d] < dims[d].kmax[od[d]]) break;
          kd[d] = dims[d].kmin[od[d]];
        }
        if (d < 0) break;
      }
    }
    win.Finish(o, count);
    for (int d = nd - 1; d >= 0; --d) {
      if (++od[d] < g.out[d]) break;
      od[d] = 0;
    }
  }
}

absl::StatusOr<WindowGeometry> PoolGeometry(KernelContext& ctx, const Tensor& x) {
  if (x.rank() < 3 || x.rank() > kMaxPoolDims + 2) {
    return absl::InvalidArgumentError(absl::StrCat("X must have rank 3 to ", kMaxPoolDims + 2,
                                                   " (N, C, spatial...), got ",
                                                   ShapeToString(x.shape())));
  }
  std::vector<int64_t> kernel = ctx.node().GetInts("kernel_shape");
  if (kernel.empty()) return absl::InvalidArgumentError("attribute 'kernel_shape' is required");
  WindowOptions options;
  options.ceil_mode = ctx.node().GetInt("ceil_mode", 0) != 0;
  return ComputeWindowGeometry(ctx.node(), Shape(x.shape().begin() + 2, x.shape().end()), kernel,
                               options);
}

Shape PoolOutputShape(const Tensor& x, const WindowGeometry& g) {
  Shape out = {x.dim(0), x.dim(1)};
  out.insert(out.end(), g.out.begin(), g.out.end());
  return out;
}

absl::Status InferPool(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.empty() || outputs.empty()) return absl::OkStatus();
  const TypeInfo& x = ctx.input_types[0];
  for (size_t i = 0; i < outputs.size(); ++i) {
    outputs[i] = TypeInfo::Tensor(i == 0 ? x.dtype : DType::kInt64);
  }
  auto xs = KnownShape(x);
  std::vector<int64_t> kernel = ctx.node.GetInts("kernel_shape");
  if (!xs || xs->size() < 3 || kernel.empty()) return absl::OkStatus();
  WindowOptions options;
  options.ceil_mode = ctx.node.GetInt("ceil_mode", 0) != 0;
  auto g = ComputeWindowGeometry(ctx.node, Shape(xs->begin() + 2, xs->end()), kernel, options);
  if (!g.ok()) return g.status();
  Shape out = {(*xs)[0], (*xs)[1]};
  out.insert(out.end(), g->out.begin(), g->out.end());
  for (size_t i = 0; i < outputs.size(); ++i) {
    outputs[i] = TypeInfo::Tensor(i == 0 ? x.dtype : DType::kInt64, ToDims(out));
  }
  return absl::OkStatus();
}

// Runs fn(plane_index) over the N*C planes in parallel.
template <typename F>
void ForEachPlane(KernelContext& ctx, int64_t planes, int64_t work_per_plane, F&& fn) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(work_per_plane, 1));
  ctx.ParallelFor(0, planes, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) fn(p);
  });
}

// ---------------------------------------------------------------------------
// AveragePool, LpPool
// ---------------------------------------------------------------------------

template <typename T>
struct AverageWindow {
  using C = ComputeT<T>;
  const T* in;
  T* out;
  bool count_include_pad;
  double sum = 0;
  int64_t padded = 0;
  void Reset(int64_t padded_count) {
    sum = 0;
    padded = padded_count;
  }
  void Add(int64_t offset, const int64_t*) { sum += static_cast<C>(in[offset]); }
  void Finish(int64_t o, int64_t count) {
    const int64_t div = count_include_pad ? padded : count;
    out[o] = static_cast<T>(static_cast<C>(div > 0 ? sum / static_cast<double>(div) : 0.0));
  }
};

template <typename T>
struct LpWindow {
  using C = ComputeT<T>;
  const T* in;
  T* out;
  double p;
  double sum = 0;
  void Reset(int64_t) { sum = 0; }
  void Add(int64_t offset, const int64_t*) {
    const double v = std::fabs(static_cast<double>(static_cast<C>(in[offset])));
    sum += p == 2.0 ? v * v : p == 1.0 ? v : std::pow(v, p);
  }
  void Finish(int64_t o, int64_t) {
    out[o] = static_cast<T>(static_cast<C>(p == 2.0 ? std::sqrt(sum) : p == 1.0 ? sum : std::pow(sum, 1.0 / p)));
  }
};

absl::Status ComputeAveragePool(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  auto g = PoolGeometry(ctx, x);
  if (!g.ok()) return ctx.Error(g.status().message());
  Tensor* y = ctx.Output(0, x.dtype(), PoolOutputShape(x, *g));
  const bool include_pad = ctx.node().GetInt("count_include_pad", 0) != 0;
  const auto dims = PrecomputeWindows(*g);
  const Shape in_strides = Strides(g->in);
  const int64_t in_size = g->InSize(), out_size = g->OutSize();
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    ForEachPlane(ctx, x.dim(0) * x.dim(1), out_size * g->KernelSize(), [&](int64_t p) {
      AverageWindow<T> w{x.data<T>() + p * in_size, y->mutable_data<T>() + p * out_size, include_pad};
      PoolPlane(*g, dims, in_strides, w);
    });
    return absl::OkStatus();
  });
}

absl::Status ComputeLpPool(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  auto g = PoolGeometry(ctx, x);
  if (!g.ok()) return ctx.Error(g.status().message());
  const double p = ctx.node().GetFloat("p", 2.0f);
  if (!(p > 0)) return ctx.Error("p must be positive, got ", p);
  Tensor* y = ctx.Output(0, x.dtype(), PoolOutputShape(x, *g));
  const auto dims = PrecomputeWindows(*g);
  const Shape in_strides = Strides(g->in);
  const int64_t in_size = g->InSize(), out_size = g->OutSize();
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    ForEachPlane(ctx, x.dim(0) * x.dim(1), out_size * g->KernelSize(), [&](int64_t pl) {
      LpWindow<T> w{x.data<T>() + pl * in_size, y->mutable_data<T>() + pl * out_size, p};
      PoolPlane(*g, dims, in_strides, w);
    });
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// MaxPool
// ---------------------------------------------------------------------------

template <typename T>
struct MaxWindow {
  using C = ComputeT<T>;
  const T* in;
  T* out;
  int64_t* indices;       // null when Indices is not requested
  int64_t plane_offset;   // index of this plane's first element in X
  const Shape* col_strides;  // storage_order = 1: column-major spatial strides
  C best;
  int64_t best_index = -1;
  void Reset(int64_t) {
    best = std::numeric_limits<C>::lowest();
    if constexpr (std::numeric_limits<C>::has_infinity) best = -std::numeric_limits<C>::infinity();
    best_index = -1;
  }
  void Add(int64_t offset, const int64_t* coord) {
    const C v = static_cast<C>(in[offset]);
    if (best_index < 0 || v > best) {
      best = v;
      if (col_strides == nullptr) {
        best_index = offset;
      } else {
        best_index = 0;
        for (size_t d = 0; d < col_strides->size(); ++d) best_index += coord[d] * (*col_strides)[d];
      }
    }
  }
  void Finish(int64_t o, int64_t) {
    out[o] = static_cast<T>(best);
    if (indices) indices[o] = plane_offset + std::max<int64_t>(best_index, 0);
  }
};

// MaxPool over one 1-D or 2-D plane with unit dilation and no Indices: the
// window bounds come straight from `dims`, and the inner loop is a plain
// compare over a row (PoolPlane's general walk costs several times more per
// element). Same results: the first element of the window, then each later
// one that compares greater (a NaN first stays; an empty window gives -inf).
template <typename T>
void MaxPlaneDense(const WindowGeometry& g, const std::vector<DimWindows>& dims, const T* in, T* out) {
  using C = ComputeT<T>;
  C empty = std::numeric_limits<C>::lowest();
  if constexpr (std::numeric_limits<C>::has_infinity) empty = -std::numeric_limits<C>::infinity();
  const bool two = g.nd == 2;
  const int64_t oh_n = two ? g.out[0] : 1, ow_n = g.out[g.nd - 1], w_in = g.in[g.nd - 1];
  const DimWindows& wd = dims[g.nd - 1];
  auto more = [](C best, C v) { return v > best ? v : best; };  // branch-free; a NaN best stays
  if (two && g.kernel[0] == 2 && g.kernel[1] == 2 && g.strides[0] == 2 && g.strides[1] == 2 &&
      g.pads_begin[0] == 0 && g.pads_begin[1] == 0 && 2 * oh_n <= g.in[0] && 2 * ow_n <= w_in) {
    // MaxPool2d(2), every window inside the input: the same comparisons in
    // the same order, without the window bookkeeping (vectorised for fp32).
    if constexpr (std::is_same_v<T, float>) {
      MaxPool2x2F32(in, w_in, out, oh_n, ow_n);
      return;
    }
    for (int64_t oh = 0; oh < oh_n; ++oh) {
      const T* r0 = in + 2 * oh * w_in;
      const T* r1 = r0 + w_in;
      T* orow = out + oh * ow_n;
      for (int64_t ow = 0; ow < ow_n; ++ow) {
        C best = static_cast<C>(r0[2 * ow]);
        best = more(best, static_cast<C>(r0[2 * ow + 1]));
        best = more(best, static_cast<C>(r1[2 * ow]));
        best = more(best, static_cast<C>(r1[2 * ow + 1]));
        orow[ow] = static_cast<T>(best);
      }
    }
    return;
  }
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    int64_t h0 = 0, h1 = 1;
    if (two) {
      h0 = dims[0].start[oh] + dims[0].kmin[oh];
      h1 = dims[0].start[oh] + dims[0].kmax[oh];
    }
    T* orow = out + oh * ow_n;
    for (int64_t ow = 0; ow < ow_n; ++ow) {
      const int64_t w0 = wd.start[ow] + wd.kmin[ow], w1 = wd.start[ow] + wd.kmax[ow];
      if (h0 >= h1 || w0 >= w1) {
        orow[ow] = static_cast<T>(empty);
        continue;
      }
      C best = static_cast<C>(in[h0 * w_in + w0]);
      for (int64_t h = h0; h < h1; ++h) {
        const T* row = in + h * w_in;
        for (int64_t w = (h == h0 ? w0 + 1 : w0); w < w1; ++w) {
          best = more(best, static_cast<C>(row[w]));
        }
      }
      orow[ow] = static_cast<T>(best);
    }
  }
}

absl::Status ComputeMaxPool(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  auto g = PoolGeometry(ctx, x);
  if (!g.ok()) return ctx.Error(g.status().message());
  const int64_t storage_order = ctx.node().GetInt("storage_order", 0);
  if (storage_order != 0 && storage_order != 1) return ctx.Error("storage_order must be 0 or 1");
  const Shape out_shape = PoolOutputShape(x, *g);
  Tensor* y = ctx.Output(0, x.dtype(), out_shape);
  int64_t* indices = nullptr;
  if (ctx.HasOutput(1)) indices = ctx.Output(1, DType::kInt64, out_shape)->mutable_data<int64_t>();
  Shape col_strides(g->nd, 1);
  for (int d = 1; d < g->nd; ++d) col_strides[d] = col_strides[d - 1] * g->in[d - 1];
  const auto dims = PrecomputeWindows(*g);
  const Shape in_strides = Strides(g->in);
  const int64_t in_size = g->InSize(), out_size = g->OutSize();
  auto run = [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const bool dense = indices == nullptr && g->nd <= 2 &&
                       std::all_of(g->dilations.begin(), g->dilations.end(), [](int64_t d) { return d == 1; });
    if (dense) {
      const T* px = x.data<T>();
      T* py = y->mutable_data<T>();
      ForEachPlane(ctx, x.dim(0) * x.dim(1), out_size * g->KernelSize(), [&](int64_t p) {
        MaxPlaneDense<T>(*g, dims, px + p * in_size, py + p * out_size);
      });
      return absl::OkStatus();
    }
    ForEachPlane(ctx, x.dim(0) * x.dim(1), out_size * g->KernelSize(), [&](int64_t p) {
      MaxWindow<T> w{x.data<T>() + p * in_size, y->mutable_data<T>() + p * out_size,
                     indices ? indices + p * out_size : nullptr, p * in_size,
                     storage_order == 1 ? &col_strides : nullptr};
      PoolPlane(*g, dims, in_strides, w);
    });
    return absl::OkStatus();
  };
  switch (x.dtype()) {
    case DType::kInt8: return run(TypeTag<int8_t>{});
    case DType::kUInt8: return run(TypeTag<uint8_t>{});
    default: return VisitFloat(x.dtype(), run);
  }
}

// ---------------------------------------------------------------------------
// Global pools
// ---------------------------------------------------------------------------

absl::Status InferGlobalPool(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.empty() || outputs.empty()) return absl::OkStatus();
  const TypeInfo& x = ctx.input_types[0];
  outputs[0] = TypeInfo::Tensor(x.dtype);
  if (!x.has_shape || x.shape.size() < 2) return absl::OkStatus();
  std::vector<Dim> out = {x.shape[0], x.shape[1]};
  out.resize(x.shape.size(), Dim{1, ""});
  outputs[0] = TypeInfo::Tensor(x.dtype, std::move(out));
  return absl::OkStatus();
}

enum class GlobalKind { kAverage, kMax, kLp };

template <GlobalKind kKind>
absl::Status ComputeGlobalPool(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.rank() < 2) return ctx.Error("X must have rank >= 2 (N, C, spatial...), got ", ShapeToString(x.shape()));
  Shape out_shape(x.rank(), 1);
  out_shape[0] = x.dim(0);
  out_shape[1] = x.dim(1);
  const double p = ctx.node().GetFloat("p", 2.0f);
  if (kKind == GlobalKind::kLp && !(p > 0)) return ctx.Error("p must be positive, got ", p);
  Tensor* y = ctx.Output(0, x.dtype(), out_shape);
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t size = planes == 0 ? 0 : x.size() / planes;
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    ForEachPlane(ctx, planes, size, [&](int64_t pl) {
      const T* in = px + pl * size;
      double r = 0;
      if constexpr (kKind == GlobalKind::kMax) {
        r = size > 0 ? -std::numeric_limits<double>::infinity() : 0.0;
        for (int64_t i = 0; i < size; ++i) r = std::max<double>(r, static_cast<C>(in[i]));
      } else if constexpr (kKind == GlobalKind::kAverage) {
        for (int64_t i = 0; i < size; ++i) r += static_cast<C>(in[i]);
        r = size > 0 ? r / static_cast<double>(size) : 0.0;
      } else {
        for (int64_t i = 0; i < size; ++i) {
          const double v = std::fabs(static_cast<double>(static_cast<C>(in[i])));
          r += p == 2.0 ? v * v : std::pow(v, p);
        }
        r = p == 2.0 ? std::sqrt(r) : std::pow(r, 1.0 / p);
      }
      py[pl] = static_cast<T>(static_cast<C>(r));
    });
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// MaxUnpool
// ---------------------------------------------------------------------------

absl::Status ComputeMaxUnpool(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 2); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  const Tensor& ind = ctx.Input(1);
  if (x.rank() < 3) return ctx.Error("X must have rank >= 3 (N, C, spatial...), got ", ShapeToString(x.shape()));
  if (ind.shape() != x.shape()) {
    return ctx.Error("I has shape ", ShapeToString(ind.shape()), ", X has ", ShapeToString(x.shape()));
  }
  auto idx = ReadInt64s(ind);
  if (!idx.ok()) return ctx.Error("I: ", idx.status().message());
  const int nd = x.rank() - 2;
  std::vector<int64_t> kernel = ctx.node().GetInts("kernel_shape");
  if (static_cast<int>(kernel.size()) != nd) {
    return ctx.Error("attribute 'kernel_shape' must have ", nd, " values");
  }
  std::vector<int64_t> strides = ctx.node().GetInts("strides", std::vector<int64_t>(nd, 1));
  std::vector<int64_t> pads = ctx.node().GetInts("pads", std::vector<int64_t>(2 * nd, 0));
  if (static_cast<int>(strides.size()) != nd || static_cast<int>(pads.size()) != 2 * nd) {
    return ctx.Error("attributes 'strides'/'pads' have the wrong number of values");
  }
  // The shape the indices refer to: the input MaxPool saw.
  Shape full = {x.dim(0), x.dim(1)};
  for (int d = 0; d < nd; ++d) {
    const int64_t v = (x.dim(d + 2) - 1) * strides[d] - pads[d] - pads[d + nd] + kernel[d];
    if (kernel[d] < 1 || strides[d] < 1 || v < 0) return ctx.Error("kernel_shape/strides/pads out of range");
    full.push_back(v);
  }
  Shape out_shape = full;
  if (ctx.HasInput(2)) {
    auto os = ReadInt64s(ctx.Input(2));
    if (!os.ok()) return ctx.Error("output_shape: ", os.status().message());
    if (static_cast<int>(os->size()) != x.rank()) {
      return ctx.Error("output_shape has ", os->size(), " values for X of rank ", x.rank());
    }
    out_shape.assign(os->begin(), os->end());
    if (out_shape[0] != x.dim(0) || out_shape[1] != x.dim(1)) {
      return ctx.Error("output_shape ", ShapeToString(out_shape), " changes N or C of X");
    }
    for (int64_t v : out_shape)
      if (v < 0) return ctx.Error("output_shape has a negative value");
  }
  Tensor* y = ctx.Output(0, x.dtype(), out_shape);
  const int64_t full_size = NumElements(full);
  const Shape full_strides = Strides(full), out_strides = Strides(out_shape);
  const bool same = full == out_shape;
  return VisitNumeric(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T* py = y->mutable_data<T>();
    std::fill(py, py + y->size(), T(0));
    const T* px = x.data<T>();
    for (int64_t i = 0; i < x.size(); ++i) {
      int64_t k = (*idx)[i];
      if (k < 0 || k >= full_size) {
        return ctx.Error("index ", k, " in I is out of range [0, ", full_size, ")");
      }
      if (!same) {
        // Same coordinates in the (larger or smaller) output; dropped if outside.
        int64_t o = 0;
        bool inside = true;
        for (size_t d = 0; d < full.size(); ++d) {
          const int64_t c = k / full_strides[d];
          k %= full_strides[d];
          if (c >= out_shape[d]) inside = false;
          o += c * out_strides[d];
        }
        if (!inside) continue;
        k = o;
      }
      py[k] = px[i];
    }
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// MaxRoiPool
// ---------------------------------------------------------------------------

absl::Status ComputeMaxRoiPool(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 2); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  const Tensor& rois = ctx.Input(1);
  if (x.rank() != 4) return ctx.Error("X must have rank 4 (N, C, H, W), got ", ShapeToString(x.shape()));
  if (rois.rank() != 2 || rois.dim(1) != 5) {
    return ctx.Error("rois must have shape [num_rois, 5], got ", ShapeToString(rois.shape()));
  }
  if (rois.dtype() != x.dtype()) return ctx.Error("rois and X have different types");
  std::vector<int64_t> pooled = ctx.node().GetInts("pooled_shape");
  if (pooled.size() != 2 || pooled[0] < 1 || pooled[1] < 1) {
    return ctx.Error("attribute 'pooled_shape' must hold two positive values");
  }
  const double scale = ctx.node().GetFloat("spatial_scale", 1.0f);
  auto r = ReadDoubles(rois);
  if (!r.ok()) return ctx.Error(r.status().message());
  const int64_t num_rois = rois.dim(0), channels = x.dim(1), height = x.dim(2), width = x.dim(3);
  const int64_t ph = pooled[0], pw = pooled[1];
  for (int64_t i = 0; i < num_rois; ++i) {
    const double b = (*r)[i * 5];
    if (!(b >= 0 && b < static_cast<double>(x.dim(0)))) {
      return ctx.Error("roi ", i, " has batch index ", b, " outside [0, ", x.dim(0), ")");
    }
    for (int k = 1; k < 5; ++k) {
      const double v = (*r)[i * 5 + k] * scale;
      if (!(std::fabs(v) < 1e15)) return ctx.Error("roi ", i, " has a non-finite or huge coordinate");
    }
  }
  Tensor* y = ctx.Output(0, x.dtype(), {num_rois, channels, ph, pw});
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    ForEachPlane(ctx, num_rois * channels, ph * pw * 4, [&](int64_t rc) {
      const int64_t i = rc / channels, c = rc % channels;
      const double* roi = r->data() + i * 5;
      const int64_t batch = static_cast<int64_t>(roi[0]);
      const int64_t x1 = std::llround(roi[1] * scale), y1 = std::llround(roi[2] * scale);
      const int64_t x2 = std::llround(roi[3] * scale), y2 = std::llround(roi[4] * scale);
      const double bin_h = static_cast<double>(std::max<int64_t>(y2 - y1 + 1, 1)) / ph;
      const double bin_w = static_cast<double>(std::max<int64_t>(x2 - x1 + 1, 1)) / pw;
      const T* plane = px + (batch * channels + c) * height * width;
      T* out = py + rc * ph * pw;
      for (int64_t oh = 0; oh < ph; ++oh) {
        const int64_t h0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(oh * bin_h)) + y1, 0, height);
        const int64_t h1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil((oh + 1) * bin_h)) + y1, 0, height);
        for (int64_t ow = 0; ow < pw; ++ow) {
          const int64_t w0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(ow * bin_w)) + x1, 0, width);
          const int64_t w1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil((ow + 1) * bin_w)) + x1, 0, width);
          C best = 0;
          bool any = false;
          for (int64_t hh = h0; hh < h1; ++hh)
            for (int64_t ww = w0; ww < w1; ++ww) {
              const C v = static_cast<C>(plane[hh * width + ww]);
              if (!any || v > best) best = v, any = true;
            }
          out[oh * pw + ow] = static_cast<T>(any ? best : C(0));
        }
      }
    });
    return absl::OkStatus();
  });
}

constexpr DTypeSet kMaxPoolTypes = kFloatTypes | Bit(DType::kInt8) | Bit(DType::kUInt8);

const OpTableRegistration kPoolOps({
    {.name = "AveragePool", .since = 1, .types = kFloatTypes, .infer = InferPool,
     .compute = ComputeAveragePool},
    {.name = "MaxPool", .since = 1, .types = kMaxPoolTypes, .infer = InferPool,
     .compute = ComputeMaxPool},
    {.name = "LpPool", .since = 1, .types = kFloatTypes, .infer = InferPool, .compute = ComputeLpPool},
    {.name = "GlobalAveragePool", .since = 1, .types = kFloatTypes, .infer = InferGlobalPool,
     .compute = ComputeGlobalPool<GlobalKind::kAverage>},
    {.name = "GlobalMaxPool", .since = 1, .types = kFloatTypes, .infer = InferGlobalPool,
     .compute = ComputeGlobalPool<GlobalKind::kMax>},
    {.name = "GlobalLpPool", .since = 1, .types = kFloatTypes, .infer = InferGlobalPool,
     .compute = ComputeGlobalPool<GlobalKind::kLp>},
    {.name = "MaxUnpool", .since = 9, .types = kNumericTypes, .compute = ComputeMaxUnpool},
    {.name = "MaxRoiPool", .since = 1, .types = kFloatTypes, .compute = ComputeMaxRoiPool},
});

}  // namespace
}  // namespace hepml::ops
