// Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare,
// ArgMax/ArgMin and CumSum.
//
// Reduce* semantics shared by every version:
// - axes come from the "axes" attribute before opset 13 (ReduceSum) / 18
//   (the others) and from the optional second input afterwards; absent or
//   empty axes reduce every axis, unless noop_with_empty_axes is set, in
//   which case nothing is reduced (each output element is the reduction of
//   the one input element, e.g. ReduceSumSquare gives x*x, as in the ONNX
//   reference implementation);
// - a reduction over zero elements gives the operation's identity: sum 0,
//   prod 1, max -inf (lowest value for integers), min +inf (highest),
//   mean NaN, log-sum and log-sum-exp -inf.
// Sums accumulate in double (floating point) or 64-bit integers.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// ---------------------------------------------------------------------------
// Conversions between element types and accumulators.

template <typename T>
inline constexpr bool kIsHalf = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;

// Accumulator of sums and products of T: double for floating point; for
// integers uint64_t, whose wrapping arithmetic gives the two's complement
// result of signed types too (no signed overflow).
template <typename T>
using SumAccT = std::conditional_t<std::is_floating_point_v<ComputeT<T>>, double, uint64_t>;

template <typename T>
SumAccT<T> ToAcc(T x) {
  using C = ComputeT<T>;
  if constexpr (std::is_floating_point_v<C>) {
    return static_cast<double>(static_cast<C>(x));
  } else if constexpr (std::is_signed_v<C>) {
    return static_cast<uint64_t>(static_cast<int64_t>(x));
  } else {
    return static_cast<uint64_t>(x);
  }
}

template <typename T>
SumAccT<T> AbsAcc(T x) {
  using C = ComputeT<T>;
  if constexpr (std::is_floating_point_v<C>) {
    return std::fabs(static_cast<double>(static_cast<C>(x)));
  } else if constexpr (std::is_signed_v<C>) {
    const int64_t s = static_cast<int64_t>(x);
    return s < 0 ? uint64_t{0} - static_cast<uint64_t>(s) : static_cast<uint64_t>(s);
  } else {
    return static_cast<uint64_t>(x);
  }
}

// An accumulator read back with T's signedness (int64_t for signed integers).
template <typename T>
auto Signed(SumAccT<T> a) {
  if constexpr (std::is_integral_v<ComputeT<T>> && std::is_signed_v<ComputeT<T>>) {
    return static_cast<int64_t>(a);
  } else {
    return a;
  }
}

// Converts an accumulator value to T; out-of-range and non-finite values
// saturate for integer types instead of being undefined behaviour.
template <typename T, typename A>
T FromAcc(A a) {
  if constexpr (kIsHalf<T>) {
    return T(static_cast<float>(a));
  } else if constexpr (std::is_integral_v<T> && std::is_floating_point_v<A>) {
    if (std::isnan(a)) return T(0);
    if (a <= static_cast<A>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (a >= static_cast<A>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(a);
  } else {
    return static_cast<T>(a);
  }
}

// ---------------------------------------------------------------------------
// Reduction geometry.

enum class ReduceKind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

// The input shape with runs of adjacent reduced / kept dimensions merged and
// size-1 dimensions dropped: an input element at collapsed coordinate c
// contributes to output element sum(c[d] * out_strides[d]).
struct ReduceGeometry {
  Shape out_shape;
  int64_t out_size = 0;
  int64_t count = 0;  // input elements per output element
  Shape dims;
  std::vector<bool> reduced;
  Shape out_strides;
};

ReduceGeometry MakeGeometry(const Shape& in_shape, const std::vector<bool>& reduce, bool keepdims) {
  ReduceGeometry g;
  g.count = 1;
  for (size_t d = 0; d < in_shape.size(); ++d) {
    if (reduce[d]) {
      g.count *= in_shape[d];
      if (keepdims) g.out_shape.push_back(1);
    } else {
      g.out_shape.push_back(in_shape[d]);
    }
  }
  g.out_size = NumElements(g.out_shape);
  for (size_t d = 0; d < in_shape.size(); ++d) {
    if (in_shape[d] == 1) continue;
    if (!g.dims.empty() && g.reduced.back() == reduce[d]) {
      g.dims.back() *= in_shape[d];
    } else {
      g.dims.push_back(in_shape[d]);
      g.reduced.push_back(reduce[d]);
    }
  }
  if (g.dims.empty()) {
    g.dims.push_back(1);
    g.reduced.push_back(false);
  }
  g.out_strides.assign(g.dims.size(), 0);
  int64_t stride = 1;
  for (size_t d = g.dims.size(); d-- > 0;) {
    if (!g.reduced[d]) {
      g.out_strides[d] = stride;
      stride *= g.dims[d];
    }
  }
  return g;
}

// Calls step(acc[o], x, o) for every input element x, with o its output
// index. REQUIRES: the input is not empty.
template <typename T, typename A, typename Step>
void Accumulate(const KernelContext& ctx, const ReduceGeometry& g, const T* in, A* acc, Step step) {
  const size_t m = g.dims.size();
  const int64_t inner = g.dims[m - 1];
  const bool inner_reduced = g.reduced[m - 1];
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < m; ++d) rows *= g.dims[d];

  auto row = [&](int64_t r, int64_t out_base) {
    const T* x = in + r * inner;
    if (inner_reduced) {
      A& a = acc[out_base];
      for (int64_t j = 0; j < inner; ++j) step(a, x[j], out_base);
    } else {
      A* a = acc + out_base;
      for (int64_t j = 0; j < inner; ++j) step(a[j], x[j], out_base + j);
    }
  };

  // Only the innermost run is reduced: rows write distinct outputs.
  bool rows_independent = inner_reduced;
  for (size_t d = 0; d + 1 < m; ++d) rows_independent = rows_independent && !g.reduced[d];
  if (rows_independent) {
    ctx.ParallelFor(0, rows, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(inner, 1)),
                    [&](int64_t lo, int64_t hi) {
                      for (int64_t r = lo; r < hi; ++r) row(r, r);
                    });
    return;
  }
  Shape coord(m, 0);
  int64_t out_base = 0;
  for (int64_t r = 0; r < rows; ++r) {
    row(r, out_base);
    for (size_t d = m - 1; d-- > 0;) {
      ++coord[d];
      out_base += g.out_strides[d];
      if (coord[d] < g.dims[d]) break;
      out_base -= g.out_strides[d] * coord[d];
      coord[d] = 0;
    }
  }
}

template <ReduceKind kKind, typename T>
absl::Status ReduceTyped(KernelContext& ctx, const Tensor& in, const ReduceGeometry& g) {
  Tensor* out = ctx.Output(0, in.dtype(), g.out_shape);
  if (g.out_size == 0) return absl::OkStatus();
  T* po = out->mutable_data<T>();
  const T* pi = in.data<T>();
  const bool empty = in.size() == 0;
  using C = ComputeT<T>;

  if constexpr (kKind == ReduceKind::kMax || kKind == ReduceKind::kMin) {
    constexpr bool kMax = kKind == ReduceKind::kMax;
    C init;
    if constexpr (std::numeric_limits<C>::has_infinity) {
      init = kMax ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::infinity();
    } else {
      init = kMax ? std::numeric_limits<C>::lowest() : std::numeric_limits<C>::max();
    }
    // bool is held as uint8_t (std::vector<bool> has no data()).
    using M = std::conditional_t<std::is_same_v<C, bool>, uint8_t, C>;
    std::vector<M> acc(g.out_size, static_cast<M>(init));
    if (!empty) {
      Accumulate(ctx, g, pi, acc.data(), [](M& a, T x, int64_t) {
        const M v = static_cast<M>(static_cast<C>(x));
        if constexpr (std::is_floating_point_v<M>) {
          if (std::isnan(v)) {
            a = v;  // NaN propagates, as in numpy
            return;
          }
          if (std::isnan(a)) return;
        }
        if (kMax ? (v > a) : (v < a)) a = v;
      });
    }
    for (int64_t o = 0; o < g.out_size; ++o) po[o] = FromAcc<T>(static_cast<C>(acc[o]));
    return absl::OkStatus();
  } else if constexpr (kKind == ReduceKind::kLogSumExp) {
    // log(sum(exp(x - m))) + m with m the (finite) maximum, for range.
    std::vector<double> shift(g.out_size, -std::numeric_limits<double>::infinity());
    std::vector<double> acc(g.out_size, 0.0);
    if (!empty) {
      Accumulate(ctx, g, pi, shift.data(), [](double& a, T x, int64_t) {
        const double v = static_cast<double>(static_cast<C>(x));
        if (v > a || std::isnan(v)) a = v;
      });
      for (double& s : shift)
        if (!std::isfinite(s)) s = 0;
      Accumulate(ctx, g, pi, acc.data(), [&shift](double& a, T x, int64_t o) {
        a += std::exp(static_cast<double>(static_cast<C>(x)) - shift[o]);
      });
    } else {
      std::fill(shift.begin(), shift.end(), 0.0);
    }
    for (int64_t o = 0; o < g.out_size; ++o) po[o] = FromAcc<T>(std::log(acc[o]) + shift[o]);
    return absl::OkStatus();
  } else {
    using A = SumAccT<T>;
    const A init = kKind == ReduceKind::kProd ? A(1) : A(0);
    std::vector<A> acc(g.out_size, init);
    if (!empty) {
      Accumulate(ctx, g, pi, acc.data(), [](A& a, T x, int64_t) {
        const A v = ToAcc(x);
        if constexpr (kKind == ReduceKind::kProd) {
          a *= v;
        } else if constexpr (kKind == ReduceKind::kL1) {
          a += AbsAcc(x);
        } else if constexpr (kKind == ReduceKind::kL2 || kKind == ReduceKind::kSumSquare) {
          a += v * v;
        } else {
          a += v;
        }
      });
    }
    for (int64_t o = 0; o < g.out_size; ++o) {
      const auto a = Signed<T>(acc[o]);
      using S = decltype(a);
      if constexpr (kKind == ReduceKind::kMean) {
        if constexpr (std::is_floating_point_v<S>) {
          po[o] = FromAcc<T>(a / static_cast<double>(g.count));  // 0/0 = NaN when empty
        } else {
          po[o] = FromAcc<T>(g.count == 0 ? S(0) : static_cast<S>(a / static_cast<S>(g.count)));
        }
      } else if constexpr (kKind == ReduceKind::kL2) {
        po[o] = FromAcc<T>(std::sqrt(static_cast<double>(a)));
      } else if constexpr (kKind == ReduceKind::kLogSum) {
        po[o] = FromAcc<T>(std::log(static_cast<double>(a)));
      } else {
        po[o] = FromAcc<T>(a);
      }
    }
    return absl::OkStatus();
  }
}

// The opset from which the axes are an input rather than an attribute.
constexpr int AxesInputSince(ReduceKind kind) { return kind == ReduceKind::kSum ? 13 : 18; }

template <ReduceKind kKind>
absl::Status ComputeReduce(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  const Node& node = ctx.node();
  const int64_t rank = in.rank();
  const bool keepdims = node.GetInt("keepdims", 1) != 0;

  std::vector<int64_t> axes;
  bool noop_with_empty_axes = false;
  if (ctx.opset() >= AxesInputSince(kKind)) {
    noop_with_empty_axes = node.GetInt("noop_with_empty_axes", 0) != 0;
    if (ctx.HasInput(1)) {
      const Tensor& axes_t = ctx.Input(1);
      if (axes_t.rank() > 1) return ctx.Error("axes must be a 1-D tensor, got shape ", ShapeToString(axes_t.shape()));
      auto v = ReadInt64s(axes_t);
      if (!v.ok()) return ctx.Error("axes: ", v.status().message());
      axes = std::move(*v);
    }
  } else {
    axes = node.GetInts("axes");
  }

  std::vector<bool> reduce(rank, axes.empty() && !noop_with_empty_axes);
  if (!axes.empty()) {
    auto norm = NormalizeAxes(axes, rank);
    if (!norm.ok()) return ctx.Error(norm.status().message());
    for (int64_t a : *norm) reduce[a] = true;
  } else if (noop_with_empty_axes) {
    // Reducing nothing leaves Sum/Mean/Max/Min/Prod values unchanged.
    if constexpr (kKind == ReduceKind::kSum || kKind == ReduceKind::kMean || kKind == ReduceKind::kMax ||
                  kKind == ReduceKind::kMin || kKind == ReduceKind::kProd) {
      ctx.SetOutput(0, in);
      return absl::OkStatus();
    }
  }
  const ReduceGeometry g = MakeGeometry(in.shape(), reduce, keepdims);

  auto visit = [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    return ReduceTyped<kKind, T>(ctx, in, g);
  };
  if constexpr (kKind == ReduceKind::kMax || kKind == ReduceKind::kMin) {
    return VisitNumericOrBool(in.dtype(), visit, node.op_type);
  } else {
    if (in.dtype() == DType::kBool) return ctx.Error("bool input is not supported");
    return VisitNumeric(in.dtype(), visit, node.op_type);
  }
}

// Output type of a reduction: input 0's dtype; the shape where the axes are
// known (attribute, or a constant input).
template <ReduceKind kKind>
absl::Status InferReduce(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.empty() || outputs.empty()) return absl::OkStatus();
  const TypeInfo& in = ctx.input_types[0];
  outputs[0] = TypeInfo::Tensor(in.dtype);
  if (in.kind != TypeInfo::Kind::kTensor || !in.has_shape) return absl::OkStatus();
  const int64_t rank = static_cast<int64_t>(in.shape.size());
  std::vector<int64_t> axes;
  bool noop = false;
  if (ctx.opset >= AxesInputSince(kKind)) {
    noop = ctx.node.GetInt("noop_with_empty_axes", 0) != 0;
    if (ctx.node.HasInput(1)) {
      if (ctx.constant_inputs.size() < 2 || ctx.constant_inputs[1] == nullptr) return absl::OkStatus();
      auto v = ReadInt64s(*ctx.constant_inputs[1]);
      if (!v.ok()) return v.status();
      axes = std::move(*v);
    }
  } else {
    axes = ctx.node.GetInts("axes");
  }
  std::vector<bool> reduce(rank, axes.empty() && !noop);
  auto norm = NormalizeAxes(axes, rank);
  if (!norm.ok()) return norm.status();
  for (int64_t a : *norm) reduce[a] = true;
  const bool keepdims = ctx.node.GetInt("keepdims", 1) != 0;
  std::vector<Dim> dims;
  for (int64_t d = 0; d < rank; ++d) {
    if (!reduce[d]) dims.push_back(in.shape[d]);
    else if (keepdims) dims.push_back(Dim{1, ""});
  }
  outputs[0] = TypeInfo::Tensor(in.dtype, std::move(dims));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// ArgMax / ArgMin.

template <bool kMax>
absl::Status ComputeArg(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  const Node& node = ctx.node();
  const int64_t rank = in.rank();
  auto axis = NormalizeAxis(node.GetInt("axis", 0), rank);
  if (!axis.ok()) return ctx.Error(axis.status().message());
  const bool keepdims = node.GetInt("keepdims", 1) != 0;
  const bool select_last = ctx.opset() >= 12 && node.GetInt("select_last_index", 0) != 0;

  Shape out_shape;
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (d < *axis) outer *= in.dim(d);
    if (d > *axis) inner *= in.dim(d);
    if (d == *axis) {
      n = in.dim(d);
      if (keepdims) out_shape.push_back(1);
    } else {
      out_shape.push_back(in.dim(d));
    }
  }
  Tensor* out = ctx.Output(0, DType::kInt64, out_shape);
  if (out->size() == 0) return absl::OkStatus();
  if (n == 0) return ctx.Error("cannot take the index of an extreme over the empty axis ", *axis);
  int64_t* po = out->mutable_data<int64_t>();

  return VisitNumeric(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* pi = in.data<T>();
    ctx.ParallelFor(0, outer, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(n * inner, 1)),
                    [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) {
        for (int64_t j = 0; j < inner; ++j) {
          const T* x = pi + o * n * inner + j;
          C best = static_cast<C>(x[0]);
          int64_t best_k = 0;
          for (int64_t k = 1; k < n; ++k) {
            const C v = static_cast<C>(x[k * inner]);
            bool better = kMax ? (v > best) : (v < best);
            if constexpr (std::is_floating_point_v<C>) {
              if (std::isnan(best)) break;  // the first NaN wins, as in numpy
              if (std::isnan(v)) better = true;
            }
            if (better || (select_last && v == best)) {
              best = v;
              best_k = k;
            }
          }
          po[o * inner + j] = best_k;
        }
      }
    });
    return absl::OkStatus();
  }, node.op_type);
}

absl::Status InferArg(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.empty() || outputs.empty()) return absl::OkStatus();
  const TypeInfo& in = ctx.input_types[0];
  outputs[0] = TypeInfo::Tensor(DType::kInt64);
  if (in.kind != TypeInfo::Kind::kTensor || !in.has_shape) return absl::OkStatus();
  const int64_t rank = static_cast<int64_t>(in.shape.size());
  auto axis = NormalizeAxis(ctx.node.GetInt("axis", 0), rank);
  if (!axis.ok()) return axis.status();
  const bool keepdims = ctx.node.GetInt("keepdims", 1) != 0;
  std::vector<Dim> dims;
  for (int64_t d = 0; d < rank; ++d) {
    if (d != *axis) dims.push_back(in.shape[d]);
    else if (keepdims) dims.push_back(Dim{1, ""});
  }
  outputs[0] = TypeInfo::Tensor(DType::kInt64, std::move(dims));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// CumSum.

absl::Status ComputeCumSum(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  const Tensor& axis_t = ctx.Input(1);
  if (axis_t.rank() > 1) return ctx.Error("axis must be a scalar, got shape ", ShapeToString(axis_t.shape()));
  auto axis_v = ReadScalarInt(axis_t);
  if (!axis_v.ok()) return ctx.Error("axis: ", axis_v.status().message());
  if (in.rank() == 0) return ctx.Error("input must have rank >= 1");
  auto axis = NormalizeAxis(*axis_v, in.rank());
  if (!axis.ok()) return ctx.Error(axis.status().message());
  const bool exclusive = ctx.node().GetInt("exclusive", 0) != 0;
  const bool reverse = ctx.node().GetInt("reverse", 0) != 0;

  int64_t outer = 1, inner = 1;
  const int64_t n = in.dim(static_cast<int>(*axis));
  for (int64_t d = 0; d < in.rank(); ++d) {
    if (d < *axis) outer *= in.dim(static_cast<int>(d));
    if (d > *axis) inner *= in.dim(static_cast<int>(d));
  }
  Tensor* out = ctx.Output(0, in.dtype(), in.shape());
  if (out->size() == 0) return absl::OkStatus();

  return VisitNumeric(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using A = SumAccT<T>;
    const T* pi = in.data<T>();
    T* po = out->mutable_data<T>();
    ctx.ParallelFor(0, outer, std::max<int64_t>(1, (1 << 14) / (n * inner)), [&](int64_t lo, int64_t hi) {
      std::vector<A> acc(inner);
      for (int64_t o = lo; o < hi; ++o) {
        std::fill(acc.begin(), acc.end(), A(0));
        for (int64_t step = 0; step < n; ++step) {
          const int64_t k = reverse ? n - 1 - step : step;
          const T* x = pi + (o * n + k) * inner;
          T* y = po + (o * n + k) * inner;
          for (int64_t j = 0; j < inner; ++j) {
            const A v = ToAcc(x[j]);
            if (exclusive) {
              y[j] = FromAcc<T>(acc[j]);
              acc[j] += v;
            } else {
              acc[j] += v;
              y[j] = FromAcc<T>(acc[j]);
            }
          }
        }
      }
    });
    return absl::OkStatus();
  }, "CumSum");
}

// ---------------------------------------------------------------------------

constexpr DTypeSet kReduceTypes = kNumericTypes;
constexpr DTypeSet kCumSumTypes = kFloatTypes | Bit(DType::kInt32) | Bit(DType::kInt64) |
                                  Bit(DType::kUInt32) | Bit(DType::kUInt64);

#define HEPML_REDUCE_ROWS(NAME, KIND)                                                          \
  {.name = NAME, .since = 1, .until = AxesInputSince(ReduceKind::KIND) - 1,                    \
   .types = kReduceTypes, .infer = InferReduce<ReduceKind::KIND>,                              \
   .compute = ComputeReduce<ReduceKind::KIND>},                                                \
  {.name = NAME, .since = AxesInputSince(ReduceKind::KIND), .types = kReduceTypes,             \
   .infer = InferReduce<ReduceKind::KIND>, .compute = ComputeReduce<ReduceKind::KIND>}

const OpTableRegistration kReduceOps({
    HEPML_REDUCE_ROWS("ReduceSum", kSum),
    HEPML_REDUCE_ROWS("ReduceMean", kMean),
    HEPML_REDUCE_ROWS("ReduceProd", kProd),
    HEPML_REDUCE_ROWS("ReduceL1", kL1),
    HEPML_REDUCE_ROWS("ReduceL2", kL2),
    HEPML_REDUCE_ROWS("ReduceLogSum", kLogSum),
    HEPML_REDUCE_ROWS("ReduceLogSumExp", kLogSumExp),
    HEPML_REDUCE_ROWS("ReduceSumSquare", kSumSquare),
    // ReduceMax/ReduceMin: axes input from 18, bool from 20.
    {.name = "ReduceMax", .since = 1, .until = 17, .types = kReduceTypes,
     .infer = InferReduce<ReduceKind::kMax>, .compute = ComputeReduce<ReduceKind::kMax>},
    {.name = "ReduceMax", .since = 18, .until = 19, .types = kReduceTypes,
     .infer = InferReduce<ReduceKind::kMax>, .compute = ComputeReduce<ReduceKind::kMax>},
    {.name = "ReduceMax", .since = 20, .types = kReduceTypes | Bit(DType::kBool),
     .infer = InferReduce<ReduceKind::kMax>, .compute = ComputeReduce<ReduceKind::kMax>},
    {.name = "ReduceMin", .since = 1, .until = 17, .types = kReduceTypes,
     .infer = InferReduce<ReduceKind::kMin>, .compute = ComputeReduce<ReduceKind::kMin>},
    {.name = "ReduceMin", .since = 18, .until = 19, .types = kReduceTypes,
     .infer = InferReduce<ReduceKind::kMin>, .compute = ComputeReduce<ReduceKind::kMin>},
    {.name = "ReduceMin", .since = 20, .types = kReduceTypes | Bit(DType::kBool),
     .infer = InferReduce<ReduceKind::kMin>, .compute = ComputeReduce<ReduceKind::kMin>},
    // select_last_index from 12 (read only from 12 on).
    {.name = "ArgMax", .since = 1, .types = kNumericTypes, .infer = InferArg, .compute = ComputeArg<true>},
    {.name = "ArgMin", .since = 1, .types = kNumericTypes, .infer = InferArg, .compute = ComputeArg<false>},
    {.name = "CumSum", .since = 11, .types = kCumSumTypes, .infer = InferSameAsInput, .compute = ComputeCumSum},
});

#undef HEPML_REDUCE_ROWS

}  // namespace
}  // namespace hepml::ops
