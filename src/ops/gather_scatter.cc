// Gather and scatter operators: Gather, GatherElements, GatherND, Scatter,
// ScatterElements, ScatterND.
//
// These are the message-passing primitives of graph neural networks
// (ParticleNet, interaction networks): Gather on axis 0 copies whole rows
// (memcpy of the inner block), ScatterElements/ScatterND with reduction "add"
// accumulate rows with contiguous inner loops.
//
// Indices: int32 or int64; negative values count from the end of their axis.
// An index outside [-n, n-1] is an error that names the index value, its
// position in `indices` and the allowed range; nothing is read or written out
// of bounds.
//
// Duplicate indices with reduction "none" (undefined order in ONNX): updates
// are applied in row-major order of `indices`, so the last write wins. The
// parallel loops only split work across disjoint output locations, so this
// holds for every thread count.
#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// ---- helpers -----------------------------------------------------------------

// Calls f with TypeTag<int32_t> or TypeTag<int64_t> for an indices tensor.
template <typename F>
absl::Status VisitIndexType(const KernelContext& ctx, const Tensor& indices, F&& f) {
  if (indices.dtype() == DType::kInt32) return f(TypeTag<int32_t>{});
  if (indices.dtype() == DType::kInt64) return f(TypeTag<int64_t>{});
  return ctx.Error("indices must be int32 or int64, got ", DTypeName(indices.dtype()));
}

// "[1,2]": the coordinates of flat element `pos` in `shape`.
std::string Coordinates(int64_t pos, absl::Span<const int64_t> shape) {
  std::vector<int64_t> coord(shape.size(), 0);
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] > 0) {
      coord[d] = pos % shape[d];
      pos /= shape[d];
    }
  }
  return absl::StrCat("[", absl::StrJoin(coord, ","), "]");
}

absl::Status IndexOutOfRange(const KernelContext& ctx, int64_t value, int64_t pos,
                             const Tensor& indices, int64_t dim_size, absl::string_view what) {
  return ctx.Error("index ", value, " at position ", Coordinates(pos, indices.shape()),
                   " of 'indices' is out of range [", -dim_size, ", ", dim_size - 1, "] for ", what,
                   " of size ", dim_size);
}

// Checks that every index lies in [-n, n-1].
template <typename I>
absl::Status CheckIndices(const KernelContext& ctx, const Tensor& indices, int64_t n,
                          absl::string_view what) {
  const I* p = indices.data<I>();
  const int64_t count = indices.size();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t v = static_cast<int64_t>(p[i]);
    if (v < -n || v >= n) return IndexOutOfRange(ctx, v, i, indices, n, what);
  }
  return absl::OkStatus();
}

inline int64_t Wrap(int64_t v, int64_t n) { return v < 0 ? v + n : v; }

// Linear offsets, in a tensor of shape `outer` (row-major), of every element of
// the sub-box `inner` (same rank, inner[d] <= outer[d]) anchored at the
// origin. Empty when the shapes are equal (the mapping is the identity).
std::vector<int64_t> SubBoxOffsets(absl::Span<const int64_t> inner, absl::Span<const int64_t> outer) {
  if (std::equal(inner.begin(), inner.end(), outer.begin(), outer.end())) return {};
  const int64_t n = NumElements(inner);
  std::vector<int64_t> offsets(static_cast<size_t>(n));
  if (n == 0) return offsets;
  Shape strides = Strides(outer);
  const size_t rank = inner.size();
  std::vector<int64_t> coord(rank, 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    offsets[i] = off;
    for (size_t d = rank; d-- > 0;) {
      ++coord[d];
      off += strides[d];
      if (coord[d] < inner[d]) break;
      off -= strides[d] * coord[d];
      coord[d] = 0;
    }
  }
  return offsets;
}

// Grain (in units of `block` elements) that gives each task about 32k elements.
inline int64_t GrainFor(int64_t block) { return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(block, 1)); }

// Shared shape checks for GatherElements / ScatterElements: indices (and
// updates) have data's rank and fit inside data on every axis but `axis`.
absl::Status CheckElementsShapes(const KernelContext& ctx, const Tensor& data, const Tensor& indices,
                                 int64_t axis) {
  if (indices.rank() != data.rank()) {
    return ctx.Error("indices rank ", indices.rank(), " must equal data rank ", data.rank(),
                     " (data ", ShapeToString(data.shape()), ", indices ",
                     ShapeToString(indices.shape()), ")");
  }
  for (int d = 0; d < data.rank(); ++d) {
    if (d != axis && indices.dim(d) > data.dim(d)) {
      return ctx.Error("indices shape ", ShapeToString(indices.shape()), " exceeds data shape ",
                       ShapeToString(data.shape()), " on axis ", d);
    }
  }
  return absl::OkStatus();
}

// ---- Gather --------------------------------------------------------------------

absl::Status ComputeGather(KernelContext& ctx) {
  const Tensor& data = ctx.Input(0);
  const Tensor& indices = ctx.Input(1);
  if (data.rank() < 1) return ctx.Error("data must have rank >= 1, got a scalar");
  auto axis_or = NormalizeAxis(ctx.node().GetInt("axis", 0), data.rank());
  if (!axis_or.ok()) return ctx.Error(axis_or.status().message());
  const int64_t axis = *axis_or;

  Shape out_shape(data.shape().begin(), data.shape().begin() + axis);
  out_shape.insert(out_shape.end(), indices.shape().begin(), indices.shape().end());
  out_shape.insert(out_shape.end(), data.shape().begin() + axis + 1, data.shape().end());

  const int64_t outer = NumElements(absl::MakeConstSpan(data.shape()).subspan(0, axis));
  const int64_t n = data.dim(static_cast<int>(axis));
  const int64_t inner = NumElements(absl::MakeConstSpan(data.shape()).subspan(axis + 1));
  const int64_t m = indices.size();

  return VisitIndexType(ctx, indices, [&](auto itag) -> absl::Status {
    using I = typename decltype(itag)::type;
    absl::Status st = CheckIndices<I>(ctx, indices, n, absl::StrCat("axis ", axis));
    if (!st.ok()) return st;
    Tensor* out = ctx.Output(0, data.dtype(), out_shape);
    if (out->size() == 0) return absl::OkStatus();
    const I* idx = indices.data<I>();
    return VisitByElementSize(data.dtype(), [&](auto tag) -> absl::Status {
      using T = typename decltype(tag)::type;
      const T* src = data.data<T>();
      T* dst = out->mutable_data<T>();
      // One task unit = one (outer, index) pair = one block of `inner` elements.
      ctx.ParallelFor(0, outer * m, GrainFor(inner), [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
          const int64_t o = r / m;
          const int64_t k = Wrap(static_cast<int64_t>(idx[r - o * m]), n);
          const T* s = src + (o * n + k) * inner;
          T* d = dst + r * inner;
          if (inner == 1) {
            *d = *s;
          } else {
            CopyElements(d, s, inner);
          }
        }
      });
      return absl::OkStatus();
    }, "Gather");
  });
}

absl::Status InferGather(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.size() < 2) return absl::OkStatus();
  const TypeInfo& data = ctx.input_types[0];
  const TypeInfo& indices = ctx.input_types[1];
  outputs[0] = TypeInfo::Tensor(data.dtype);
  if (!data.has_shape || !indices.has_shape || data.shape.empty()) return absl::OkStatus();
  const int64_t rank = static_cast<int64_t>(data.shape.size());
  auto axis = NormalizeAxis(ctx.node.GetInt("axis", 0), rank);
  if (!axis.ok()) return axis.status();
  std::vector<Dim> dims(data.shape.begin(), data.shape.begin() + *axis);
  dims.insert(dims.end(), indices.shape.begin(), indices.shape.end());
  dims.insert(dims.end(), data.shape.begin() + *axis + 1, data.shape.end());
  outputs[0] = TypeInfo::Tensor(data.dtype, std::move(dims));
  return absl::OkStatus();
}

// ---- GatherElements ------------------------------------------------------------

// The element loops of GatherElements and ScatterElements see indices (and
// updates/output) as [outer, a, inner] around `axis` and data as
// [outer', n, inner'], with sub-box maps where indices is smaller than data.
struct ElementsLayout {
  int64_t outer = 1, a = 1, inner = 1;  // indices: before, at and after axis
  int64_t n = 1, data_inner = 1;        // data: at and after axis
  std::vector<int64_t> outer_map;       // indices-outer -> data-outer (empty: identity)
  std::vector<int64_t> inner_map;       // indices-inner -> data-inner (empty: identity)

  ElementsLayout(const Shape& data, const Shape& indices, int64_t axis) {
    auto ds = absl::MakeConstSpan(data);
    auto is = absl::MakeConstSpan(indices);
    outer = NumElements(is.subspan(0, axis));
    a = is[axis];
    inner = NumElements(is.subspan(axis + 1));
    n = ds[axis];
    data_inner = NumElements(ds.subspan(axis + 1));
    outer_map = SubBoxOffsets(is.subspan(0, axis), ds.subspan(0, axis));
    inner_map = SubBoxOffsets(is.subspan(axis + 1), ds.subspan(axis + 1));
  }
  // Offset in data of element (o, k, j): o and j in indices space, k the index.
  int64_t DataBase(int64_t o) const {
    return (outer_map.empty() ? o : outer_map[o]) * n * data_inner;
  }
};

absl::Status ComputeGatherElements(KernelContext& ctx) {
  const Tensor& data = ctx.Input(0);
  const Tensor& indices = ctx.Input(1);
  if (data.rank() < 1) return ctx.Error("data must have rank >= 1, got a scalar");
  auto axis_or = NormalizeAxis(ctx.node().GetInt("axis", 0), data.rank());
  if (!axis_or.ok()) return ctx.Error(axis_or.status().message());
  const int64_t axis = *axis_or;
  absl::Status st = CheckElementsShapes(ctx, data, indices, axis);
  if (!st.ok()) return st;
  const ElementsLayout L(data.shape(), indices.shape(), axis);

  return VisitIndexType(ctx, indices, [&](auto itag) -> absl::Status {
    using I = typename decltype(itag)::type;
    absl::Status st = CheckIndices<I>(ctx, indices, L.n, absl::StrCat("axis ", axis));
    if (!st.ok()) return st;
    Tensor* out = ctx.Output(0, data.dtype(), indices.shape());
    if (out->size() == 0) return absl::OkStatus();
    const I* idx = indices.data<I>();
    return VisitByElementSize(data.dtype(), [&](auto tag) -> absl::Status {
      using T = typename decltype(tag)::type;
      const T* src = data.data<T>();
      T* dst = out->mutable_data<T>();
      // One task unit = one row (o, a) of `inner` elements.
      ctx.ParallelFor(0, L.outer * L.a, GrainFor(L.inner), [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
          const int64_t base = L.DataBase(r / L.a);
          const I* ir = idx + r * L.inner;
          T* orow = dst + r * L.inner;
          if (L.inner_map.empty()) {
            for (int64_t j = 0; j < L.inner; ++j) {
              orow[j] = src[base + Wrap(ir[j], L.n) * L.data_inner + j];
            }
          } else {
            for (int64_t j = 0; j < L.inner; ++j) {
              orow[j] = src[base + Wrap(ir[j], L.n) * L.data_inner + L.inner_map[j]];
            }
          }
        }
      });
      return absl::OkStatus();
    }, "GatherElements");
  });
}

absl::Status InferGatherElements(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.size() < 2) return absl::OkStatus();
  const TypeInfo& indices = ctx.input_types[1];
  outputs[0] = indices.has_shape ? TypeInfo::Tensor(ctx.input_types[0].dtype, indices.shape)
                                 : TypeInfo::Tensor(ctx.input_types[0].dtype);
  return absl::OkStatus();
}

// ---- GatherND ------------------------------------------------------------------

absl::Status ComputeGatherND(KernelContext& ctx) {
  const Tensor& data = ctx.Input(0);
  const Tensor& indices = ctx.Input(1);
  const int64_t b = ctx.opset() >= 12 ? ctx.node().GetInt("batch_dims", 0) : 0;
  const int64_t r = data.rank(), q = indices.rank();
  if (r < 1) return ctx.Error("data must have rank >= 1, got a scalar");
  if (q < 1) return ctx.Error("indices must have rank >= 1, got a scalar");
  if (b < 0 || b >= std::min(r, q)) {
    return ctx.Error("batch_dims ", b, " must be in [0, ", std::min(r, q) - 1,
                     "] for data rank ", r, " and indices rank ", q);
  }
  const int64_t k = indices.dim(static_cast<int>(q - 1));
  if (k < 1 || k > r - b) {
    return ctx.Error("indices.shape[-1] = ", k, " must be in [1, ", r - b, "] (data ",
                     ShapeToString(data.shape()), ", batch_dims ", b, ")");
  }
  for (int64_t d = 0; d < b; ++d) {
    if (indices.dim(static_cast<int>(d)) != data.dim(static_cast<int>(d))) {
      return ctx.Error("batch dimension ", d, " differs: data ", ShapeToString(data.shape()),
                       ", indices ", ShapeToString(indices.shape()));
    }
  }
  auto ds = absl::MakeConstSpan(data.shape());
  auto is = absl::MakeConstSpan(indices.shape());
  Shape out_shape(is.begin(), is.end() - 1);
  out_shape.insert(out_shape.end(), ds.begin() + b + k, ds.end());

  const int64_t batches = NumElements(ds.subspan(0, b));
  const int64_t tuples_per_batch = NumElements(is.subspan(b, q - 1 - b));
  const int64_t slice = NumElements(ds.subspan(b + k));
  const int64_t batch_size = NumElements(ds.subspan(b));
  // Element strides of the k indexed dimensions within one batch.
  std::vector<int64_t> stride(k);
  for (int64_t c = k; c-- > 0;) stride[c] = c + 1 == k ? slice : stride[c + 1] * ds[b + c + 1];

  return VisitIndexType(ctx, indices, [&](auto itag) -> absl::Status {
    using I = typename decltype(itag)::type;
    const I* idx = indices.data<I>();
    const int64_t total = batches * tuples_per_batch;
    // Validate and turn each tuple into a data offset.
    std::vector<int64_t> offsets(static_cast<size_t>(total));
    for (int64_t t = 0; t < total; ++t) {
      const int64_t bi = t / std::max<int64_t>(tuples_per_batch, 1);
      int64_t off = bi * batch_size;
      for (int64_t c = 0; c < k; ++c) {
        const int64_t v = static_cast<int64_t>(idx[t * k + c]);
        const int64_t dim = ds[b + c];
        if (v < -dim || v >= dim) {
          return IndexOutOfRange(ctx, v, t * k + c, indices, dim,
                                 absl::StrCat("data axis ", b + c));
        }
        off += Wrap(v, dim) * stride[c];
      }
      offsets[t] = off;
    }
    Tensor* out = ctx.Output(0, data.dtype(), out_shape);
    if (out->size() == 0) return absl::OkStatus();
    return VisitByElementSize(data.dtype(), [&](auto tag) -> absl::Status {
      using T = typename decltype(tag)::type;
      const T* src = data.data<T>();
      T* dst = out->mutable_data<T>();
      ctx.ParallelFor(0, total, GrainFor(slice), [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) CopyElements(dst + t * slice, src + offsets[t], slice);
      });
      return absl::OkStatus();
    }, "GatherND");
  });
}

absl::Status InferGatherND(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.size() < 2) return absl::OkStatus();
  const TypeInfo& data = ctx.input_types[0];
  const TypeInfo& indices = ctx.input_types[1];
  outputs[0] = TypeInfo::Tensor(data.dtype);
  if (!data.has_shape || !indices.has_shape || indices.shape.empty()) return absl::OkStatus();
  const Dim& last = indices.shape.back();
  if (!last.known()) return absl::OkStatus();
  const int64_t b = ctx.opset >= 12 ? ctx.node.GetInt("batch_dims", 0) : 0;
  const int64_t r = static_cast<int64_t>(data.shape.size());
  if (b < 0 || last.value < 1 || b + last.value > r) return absl::OkStatus();  // compute reports it
  std::vector<Dim> dims(indices.shape.begin(), indices.shape.end() - 1);
  dims.insert(dims.end(), data.shape.begin() + b + last.value, data.shape.end());
  outputs[0] = TypeInfo::Tensor(data.dtype, std::move(dims));
  return absl::OkStatus();
}

// ---- Scatter reductions ----------------------------------------------------------

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

// Parses the `reduction` attribute allowed at this opset: none only before 16,
// add/mul from 16, max/min from 18.
absl::StatusOr<Reduction> ParseReduction(const KernelContext& ctx) {
  const std::string r = ctx.node().GetString("reduction", "none");
  const int opset = ctx.opset();
  if (r == "none") return Reduction::kNone;
  if (opset >= 16 && r == "add") return Reduction::kAdd;
  if (opset >= 16 && r == "mul") return Reduction::kMul;
  if (opset >= 18 && r == "max") return Reduction::kMax;
  if (opset >= 18 && r == "min") return Reduction::kMin;
  const char* allowed = opset >= 18 ? "none, add, mul, max, min"
                        : opset >= 16 ? "none, add, mul"
                                      : "none";
  return ctx.Error("reduction '", r, "' is not supported at opset ", opset, " (allowed: ", allowed,
                   ")");
}

// dst = dst (op) src for one element type. bool: add = or, mul = and,
// max = or, min = and. 16-bit floats compute in float.
template <typename T, Reduction R>
inline void Combine(T& dst, const T& src) {
  if constexpr (R == Reduction::kNone) {
    dst = src;
  } else if constexpr (std::is_same_v<T, bool>) {
    if constexpr (R == Reduction::kAdd || R == Reduction::kMax) dst = dst || src;
    else dst = dst && src;
  } else {
    using C = ComputeT<T>;
    const C x = static_cast<C>(dst), y = static_cast<C>(src);
    if constexpr (R == Reduction::kAdd) dst = static_cast<T>(x + y);
    else if constexpr (R == Reduction::kMul) dst = static_cast<T>(x * y);
    else if constexpr (R == Reduction::kMax) dst = static_cast<T>(x < y ? y : x);
    else dst = static_cast<T>(y < x ? y : x);
  }
}

// Calls f(TypeTag<T>, std::integral_constant<Reduction, R>) for the data type
// and reduction: element-size storage for "none", the real type otherwise.
template <typename F>
absl::Status VisitScatter(const KernelContext& ctx, DType dtype, Reduction red, F&& f) {
  using RC = Reduction;
  if (red == RC::kNone) {
    return VisitByElementSize(dtype, [&](auto tag) {
      return f(tag, std::integral_constant<RC, RC::kNone>{});
    }, "scatter");
  }
  if (dtype == DType::kString || dtype == DType::kComplex64 || dtype == DType::kComplex128) {
    return ctx.Error("reduction is not supported for ", DTypeName(dtype), " data");
  }
  return VisitNumericOrBool(dtype, [&](auto tag) -> absl::Status {
    switch (red) {
      case RC::kAdd: return f(tag, std::integral_constant<RC, RC::kAdd>{});
      case RC::kMul: return f(tag, std::integral_constant<RC, RC::kMul>{});
      case RC::kMax: return f(tag, std::integral_constant<RC, RC::kMax>{});
      default: return f(tag, std::integral_constant<RC, RC::kMin>{});
    }
  }, "scatter");
}

// ---- Scatter / ScatterElements ---------------------------------------------------

absl::Status ComputeScatterElements(KernelContext& ctx) {
  const Tensor& data = ctx.Input(0);
  const Tensor& indices = ctx.Input(1);
  const Tensor& updates = ctx.Input(2);
  if (data.rank() < 1) return ctx.Error("data must have rank >= 1, got a scalar");
  if (updates.dtype() != data.dtype()) {
    return ctx.Error("updates type ", DTypeName(updates.dtype()), " differs from data type ",
                     DTypeName(data.dtype()));
  }
  if (updates.shape() != indices.shape()) {
    return ctx.Error("updates shape ", ShapeToString(updates.shape()),
                     " must equal indices shape ", ShapeToString(indices.shape()));
  }
  auto axis_or = NormalizeAxis(ctx.node().GetInt("axis", 0), data.rank());
  if (!axis_or.ok()) return ctx.Error(axis_or.status().message());
  const int64_t axis = *axis_or;
  absl::Status st = CheckElementsShapes(ctx, data, indices, axis);
  if (!st.ok()) return st;
  Reduction red = Reduction::kNone;
  if (ctx.node().op_type != "Scatter") {
    auto r = ParseReduction(ctx);
    if (!r.ok()) return r.status();
    red = *r;
  }
  const ElementsLayout L(data.shape(), indices.shape(), axis);

  return VisitIndexType(ctx, indices, [&](auto itag) -> absl::Status {
    using I = typename decltype(itag)::type;
    absl::Status st = CheckIndices<I>(ctx, indices, L.n, absl::StrCat("axis ", axis));
    if (!st.ok()) return st;
    Tensor* out = ctx.Output(0, data.dtype(), data.shape());
    const I* idx = indices.data<I>();
    return VisitScatter(ctx, data.dtype(), red, [&](auto tag, auto rtag) -> absl::Status {
      using T = typename decltype(tag)::type;
      constexpr Reduction R = decltype(rtag)::value;
      T* dst = out->mutable_data<T>();
      CopyElements(dst, data.data<T>(), data.size());
      const T* upd = updates.data<T>();
      // Elements with different (o, j) never share a destination, so tasks
      // split o or j; the axis loop (a) stays in order inside each task.
      auto run = [&](int64_t o_lo, int64_t o_hi, int64_t j_lo, int64_t j_hi) {
        for (int64_t o = o_lo; o < o_hi; ++o) {
          const int64_t base = L.DataBase(o);
          for (int64_t a = 0; a < L.a; ++a) {
            const int64_t row = (o * L.a + a) * L.inner;
            const I* ir = idx + row;
            const T* ur = upd + row;
            if (L.inner_map.empty()) {  // contiguous rows (the GNN case)
              for (int64_t j = j_lo; j < j_hi; ++j) {
                Combine<T, R>(dst[base + Wrap(ir[j], L.n) * L.data_inner + j], ur[j]);
              }
            } else {
              for (int64_t j = j_lo; j < j_hi; ++j) {
                Combine<T, R>(dst[base + Wrap(ir[j], L.n) * L.data_inner + L.inner_map[j]], ur[j]);
              }
            }
          }
        }
      };
      if (L.outer >= L.inner) {
        ctx.ParallelFor(0, L.outer, GrainFor(L.a * L.inner),
                        [&](int64_t lo, int64_t hi) { run(lo, hi, 0, L.inner); });
      } else {
        // Columns go to tasks in whole cache lines: tasks with neighbouring
        // columns would write the same lines of every destination row, row
        // after row (a GNN's edge aggregation at two threads took 3.3x the
        // time of one when the columns were split anywhere).
        constexpr int64_t kLine = std::max<int64_t>(1, 64 / static_cast<int64_t>(sizeof(T)));
        const int64_t lines = (L.inner + kLine - 1) / kLine;
        ctx.ParallelFor(0, lines, GrainFor(L.outer * L.a * kLine), [&](int64_t lo, int64_t hi) {
          run(0, L.outer, lo * kLine, std::min(L.inner, hi * kLine));
        });
      }
      return absl::OkStatus();
    });
  });
}

// ---- ScatterND -------------------------------------------------------------------

absl::Status ComputeScatterND(KernelContext& ctx) {
  const Tensor& data = ctx.Input(0);
  const Tensor& indices = ctx.Input(1);
  const Tensor& updates = ctx.Input(2);
  const int64_t r = data.rank(), q = indices.rank();
  if (r < 1) return ctx.Error("data must have rank >= 1, got a scalar");
  if (q < 1) return ctx.Error("indices must have rank >= 1, got a scalar");
  if (updates.dtype() != data.dtype()) {
    return ctx.Error("updates type ", DTypeName(updates.dtype()), " differs from data type ",
                     DTypeName(data.dtype()));
  }
  const int64_t k = indices.dim(static_cast<int>(q - 1));
  if (k < 1 || k > r) {
    return ctx.Error("indices.shape[-1] = ", k, " must be in [1, ", r, "] for data ",
                     ShapeToString(data.shape()));
  }
  auto ds = absl::MakeConstSpan(data.shape());
  auto is = absl::MakeConstSpan(indices.shape());
  Shape expected(is.begin(), is.end() - 1);
  expected.insert(expected.end(), ds.begin() + k, ds.end());
  if (updates.shape() != expected) {
    return ctx.Error("updates shape ", ShapeToString(updates.shape()), " must be ",
                     ShapeToString(expected), " (indices.shape[:-1] + data.shape[", k, ":])");
  }
  auto red = ParseReduction(ctx);
  if (!red.ok()) return red.status();

  const int64_t tuples = NumElements(is.subspan(0, q - 1));
  const int64_t slice = NumElements(ds.subspan(k));
  std::vector<int64_t> stride(k);
  for (int64_t c = k; c-- > 0;) stride[c] = c + 1 == k ? slice : stride[c + 1] * ds[c + 1];

  return VisitIndexType(ctx, indices, [&](auto itag) -> absl::Status {
    using I = typename decltype(itag)::type;
    const I* idx = indices.data<I>();
    std::vector<int64_t> offsets(static_cast<size_t>(tuples));
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t off = 0;
      for (int64_t c = 0; c < k; ++c) {
        const int64_t v = static_cast<int64_t>(idx[t * k + c]);
        if (v < -ds[c] || v >= ds[c]) {
          return IndexOutOfRange(ctx, v, t * k + c, indices, ds[c], absl::StrCat("data axis ", c));
        }
        off += Wrap(v, ds[c]) * stride[c];
      }
      offsets[t] = off;
    }
    Tensor* out = ctx.Output(0, data.dtype(), data.shape());
    return VisitScatter(ctx, data.dtype(), *red, [&](auto tag, auto rtag) -> absl::Status {
      using T = typename decltype(tag)::type;
      constexpr Reduction R = decltype(rtag)::value;
      T* dst = out->mutable_data<T>();
      CopyElements(dst, data.data<T>(), data.size());
      const T* upd = updates.data<T>();
      if (slice == 1) {
        for (int64_t t = 0; t < tuples; ++t) Combine<T, R>(dst[offsets[t]], upd[t]);
        return absl::OkStatus();
      }
      // Tasks split the slice's columns; tuples stay in order inside each.
      ctx.ParallelFor(0, slice, std::max<int64_t>(GrainFor(tuples), 256), [&](int64_t lo, int64_t hi) {
        for (int64_t t = 0; t < tuples; ++t) {
          T* d = dst + offsets[t];
          const T* s = upd + t * slice;
          if constexpr (R == Reduction::kNone) {
            CopyElements(d + lo, s + lo, hi - lo);
          } else {
            for (int64_t j = lo; j < hi; ++j) Combine<T, R>(d[j], s[j]);
          }
        }
      });
      return absl::OkStatus();
    });
  });
}

const OpTableRegistration kGatherScatterOps({
    // Gather-1/11/13 differ only in types and in documenting negative indices,
    // which every version here accepts.
    {.name = "Gather", .since = 1, .infer = InferGather, .compute = ComputeGather},
    {.name = "GatherElements", .since = 11, .infer = InferGatherElements,
     .compute = ComputeGatherElements},
    // GatherND-11 has no batch_dims (ignored below opset 12).
    {.name = "GatherND", .since = 11, .infer = InferGatherND, .compute = ComputeGatherND},
    // Scatter-9/11: deprecated at 11 in favour of ScatterElements (same
    // semantics, no reduction); accepted at every later opset.
    {.name = "Scatter", .since = 9, .infer = InferSameAsInput,
     .compute = ComputeScatterElements},
    // ScatterElements-11/13/16/18 and ScatterND-11/13/16/18: the reduction
    // attribute is checked against the opset in ParseReduction.
    {.name = "ScatterElements", .since = 11, .infer = InferSameAsInput,
     .compute = ComputeScatterElements},
    {.name = "ScatterND", .since = 11, .infer = InferSameAsInput, .compute = ComputeScatterND},
});

}  // namespace
}  // namespace hepml::ops
