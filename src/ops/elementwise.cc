// Elementwise operators: unary math, binary arithmetic with broadcasting,
// comparisons and logic, variadic Sum/Max/Min/Mean, Where, Clip, Cast.
#include <cmath>

#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// out[i] = op(a[ia], b[ib]) with numpy broadcasting. Fast paths for equal
// shapes and a scalar operand; the general case walks broadcast indices.
template <typename TIn, typename TOut, typename Op>
absl::Status BinaryBroadcast(KernelContext& ctx, DType out_dtype, Op op) {
  const Tensor& a = ctx.Input(0);
  const Tensor& b = ctx.Input(1);
  auto shape = BroadcastShapes(a.shape(), b.shape());
  if (!shape.ok()) return ctx.Error(shape.status().message());
  Tensor* out = ctx.Output(0, out_dtype, *shape);
  const TIn* pa = a.data<TIn>();
  const TIn* pb = b.data<TIn>();
  TOut* po = out->mutable_data<TOut>();
  const int64_t n = out->size();
  if (a.shape() == b.shape()) {
    ctx.ParallelFor(0, n, 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) po[i] = op(pa[i], pb[i]);
    });
  } else if (b.size() == 1 && a.size() == n) {
    const TIn s = pb[0];
    for (int64_t i = 0; i < n; ++i) po[i] = op(pa[i], s);
  } else if (a.size() == 1 && b.size() == n) {
    const TIn s = pa[0];
    for (int64_t i = 0; i < n; ++i) po[i] = op(s, pb[i]);
  } else {
    Shape in_shapes[2] = {a.shape(), b.shape()};
    BroadcastIterator it(*shape, absl::MakeConstSpan(in_shapes, 2));
    it.ForEach([&](int64_t o, const int64_t* idx) { po[o] = op(pa[idx[0]], pb[idx[1]]); });
  }
  return absl::OkStatus();
}

// Arithmetic in ComputeT<T> (float for the 16-bit floats), stored back as T.
template <template <typename> class OpT>
absl::Status ArithmeticBinary(KernelContext& ctx) {
  const Tensor& a = ctx.Input(0);
  if (ctx.Input(1).dtype() != a.dtype()) {
    return ctx.Error("inputs have different types: ", DTypeName(a.dtype()), " and ",
                     DTypeName(ctx.Input(1).dtype()));
  }
  return VisitNumeric(a.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    return BinaryBroadcast<T, T>(ctx, a.dtype(), [](T x, T y) {
      return static_cast<T>(OpT<C>()(static_cast<C>(x), static_cast<C>(y)));
    });
  });
}

template <typename C>
struct AddOp {
  C operator()(C x, C y) const { return x + y; }
};
template <typename C>
struct SubOp {
  C operator()(C x, C y) const { return x - y; }
};
template <typename C>
struct MulOp {
  C operator()(C x, C y) const { return x * y; }
};
template <typename C>
struct DivOp {
  C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>) {
      return y == 0 ? C(0) : x / y;  // integer division by zero: 0, not a trap
    } else {
      return x / y;
    }
  }
};

absl::Status ComputeAdd(KernelContext& ctx) { return ArithmeticBinary<AddOp>(ctx); }
absl::Status ComputeSub(KernelContext& ctx) { return ArithmeticBinary<SubOp>(ctx); }
absl::Status ComputeMul(KernelContext& ctx) { return ArithmeticBinary<MulOp>(ctx); }
absl::Status ComputeDiv(KernelContext& ctx) { return ArithmeticBinary<DivOp>(ctx); }

constexpr DTypeSet kArithmeticTypes = kNumericTypes;

const OpTableRegistration kElementwiseOps({
    {.name = "Add", .since = 7, .types = kArithmeticTypes, .infer = InferBroadcast, .compute = ComputeAdd},
    {.name = "Sub", .since = 7, .types = kArithmeticTypes, .infer = InferBroadcast, .compute = ComputeSub},
    {.name = "Mul", .since = 7, .types = kArithmeticTypes, .infer = InferBroadcast, .compute = ComputeMul},
    {.name = "Div", .since = 7, .types = kArithmeticTypes, .infer = InferBroadcast, .compute = ComputeDiv},
});

}  // namespace
}  // namespace hepml::ops
