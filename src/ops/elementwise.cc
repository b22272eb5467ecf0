// Elementwise operators: unary math, binary arithmetic with broadcasting,
// comparisons and logic, bitwise ops, variadic Sum/Max/Min/Mean, Where, Clip,
// Cast and CastLike.
//
// Every kernel runs through one of two loops: UnaryLoop (contiguous, split
// across threads) or BroadcastLayout::ForRange, which merges the broadcast
// dimensions of the output so that the innermost run of elements reads each
// input either contiguously or as a repeated scalar. That one mechanism gives
// the fast paths (equal shapes, scalar operand, broadcast along the last
// dimensions) without a case per pattern.
//
// Numerics follow numpy / the ONNX reference implementation: integer
// arithmetic wraps (never undefined behaviour), integer division and modulo
// by zero give 0, Round is half-to-even, Max/Min propagate NaN.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "ops/vec_math.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// Elements per parallel task: small enough to spread a large tensor over the
// session's threads, large enough that scheduling costs nothing.
constexpr int64_t kGrain = 1 << 15;

// ---------------------------------------------------------------------------
// Broadcast iteration.

// The output of a broadcast op, seen as rows of `inner` elements; each input
// reads a row either contiguously (stride 1) or as one repeated element
// (stride 0). Dimensions are merged where every input allows it, so equal
// shapes become one row and [N,C] (+) [C] becomes N rows of C.
template <size_t K>
class BroadcastLayout {
 public:
  BroadcastLayout(const Shape& out, const std::array<const Shape*, K>& ins) {
    std::array<Shape, K> strides;
    for (size_t k = 0; k < K; ++k) strides[k] = BroadcastStrides(*ins[k], out);
    absl::InlinedVector<Dim, 8> dims;
    for (size_t d = 0; d < out.size(); ++d) {
      if (out[d] == 1) continue;
      Dim cur;
      cur.size = out[d];
      for (size_t k = 0; k < K; ++k) cur.stride[k] = strides[k][d];
      if (!dims.empty()) {
        Dim& prev = dims.back();
        bool mergeable = true;
        for (size_t k = 0; k < K; ++k) mergeable &= prev.stride[k] == cur.stride[k] * cur.size;
        if (mergeable) {
          prev.size *= cur.size;
          prev.stride = cur.stride;
          continue;
        }
      }
      dims.push_back(cur);
    }
    if (dims.empty()) {
      inner_ = 1;
      contiguous_.fill(true);
      return;
    }
    inner_ = dims.back().size;
    for (size_t k = 0; k < K; ++k) contiguous_[k] = dims.back().stride[k] != 0;
    dims.pop_back();
    outer_.assign(dims.begin(), dims.end());
  }

  int64_t inner() const { return inner_; }
  // True if input k advances by one element along a row (else it repeats).
  bool contiguous(size_t k) const { return contiguous_[k]; }

  // Calls seg(out_offset, in_offsets, len) for every run of output elements
  // in [lo, hi) that lies within one row.
  template <typename Seg>
  void ForRange(int64_t lo, int64_t hi, Seg&& seg) const {
    if (lo >= hi || inner_ <= 0) return;
    int64_t row = lo / inner_;
    int64_t col = lo % inner_;
    absl::InlinedVector<int64_t, 8> coord(outer_.size(), 0);
    std::array<int64_t, K> base{};
    for (size_t d = outer_.size(); d-- > 0;) {
      coord[d] = row % outer_[d].size;
      row /= outer_[d].size;
      for (size_t k = 0; k < K; ++k) base[k] += coord[d] * outer_[d].stride[k];
    }
    int64_t pos = lo;
    while (pos < hi) {
      int64_t len = std::min(inner_ - col, hi - pos);
      std::array<int64_t, K> off = base;
      for (size_t k = 0; k < K; ++k)
        if (contiguous_[k]) off[k] += col;
      seg(pos, off, len);
      pos += len;
      col = 0;
      for (size_t d = outer_.size(); d-- > 0;) {
        for (size_t k = 0; k < K; ++k) base[k] += outer_[d].stride[k];
        if (++coord[d] < outer_[d].size) break;
        for (size_t k = 0; k < K; ++k) base[k] -= outer_[d].stride[k] * outer_[d].size;
        coord[d] = 0;
      }
    }
  }

 private:
  struct Dim {
    int64_t size = 1;
    std::array<int64_t, K> stride{};
  };
  int64_t inner_ = 1;
  std::array<bool, K> contiguous_{};
  absl::InlinedVector<Dim, 8> outer_;
};

// out = op(a, b) elementwise with numpy broadcasting. REQUIRES: out has the
// broadcast shape of a and b.
template <typename TA, typename TB, typename TO, typename Op>
void BinaryLoop(const KernelContext& ctx, const Tensor& a, const Tensor& b, Tensor* out, Op op) {
  const TA* pa = a.data<TA>();
  const TB* pb = b.data<TB>();
  TO* po = out->mutable_data<TO>();
  const int64_t n = out->size();
  if (n == 0) return;
  BroadcastLayout<2> layout(out->shape(), {&a.shape(), &b.shape()});
  const bool ca = layout.contiguous(0), cb = layout.contiguous(1);
  ctx.ParallelFor(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    layout.ForRange(lo, hi, [&](int64_t pos, const std::array<int64_t, 2>& off, int64_t len) {
      TO* o = po + pos;
      const TA* x = pa + off[0];
      const TB* y = pb + off[1];
      if (ca && cb) {
        for (int64_t i = 0; i < len; ++i) o[i] = op(x[i], y[i]);
      } else if (ca) {
        const TB s = y[0];
        for (int64_t i = 0; i < len; ++i) o[i] = op(x[i], s);
      } else if (cb) {
        const TA s = x[0];
        for (int64_t i = 0; i < len; ++i) o[i] = op(s, y[i]);
      } else {
        const TO v = op(x[0], y[0]);
        for (int64_t i = 0; i < len; ++i) o[i] = v;
      }
    });
  });
}

// out[i] = op(x[i]). REQUIRES: out has x's number of elements.
template <typename TI, typename TO, typename Op>
void UnaryLoop(const KernelContext& ctx, const Tensor& x, Tensor* out, Op op) {
  const TI* px = x.data<TI>();
  TO* po = out->mutable_data<TO>();
  ctx.ParallelFor(0, x.size(), kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) po[i] = op(px[i]);
  });
}

// ---------------------------------------------------------------------------
// Value conversions without undefined behaviour (used by Cast and by kernels
// that compute integers through floating point).

template <typename T>
inline constexpr bool kIsHalf = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;
template <typename T>
inline constexpr bool kIsFloat8 = std::is_same_v<T, Float8E4M3FN> || std::is_same_v<T, Float8E4M3FNUZ> ||
                                  std::is_same_v<T, Float8E5M2> || std::is_same_v<T, Float8E5M2FNUZ>;
// The floating-point types stored narrower than float (computed in float).
template <typename T>
inline constexpr bool kIsSmallFloat = kIsHalf<T> || kIsFloat8<T>;
template <typename T>
inline constexpr bool kIsFloat = std::is_floating_point_v<T> || kIsSmallFloat<T>;

// A finite or non-finite double to an integer type the way numpy does on
// x86-64: truncation toward zero; int32-or-narrower targets go through a
// 32-bit conversion, uint32 and int64 through a 64-bit one; values out of that
// range (and NaN) give the "integer indefinite" (INT_MIN) pattern, truncated.
template <typename To>
To DoubleToInt(double v) {
  constexpr double kTwo31 = 2147483648.0, kTwo63 = 9223372036854775808.0, kTwo64 = 18446744073709551616.0;
  if constexpr (std::is_same_v<To, uint64_t>) {
    if (v >= 0 && v < kTwo64) return static_cast<uint64_t>(v);
    if (v > -kTwo63 && v < 0) return static_cast<uint64_t>(static_cast<int64_t>(v));
    return uint64_t{1} << 63;
  } else if constexpr (sizeof(To) == 8 || std::is_same_v<To, uint32_t>) {
    int64_t i = (v >= -kTwo63 && v < kTwo63) ? static_cast<int64_t>(v) : std::numeric_limits<int64_t>::min();
    return static_cast<To>(i);
  } else {
    int32_t i = (v >= -kTwo31 && v < kTwo31) ? static_cast<int32_t>(v) : std::numeric_limits<int32_t>::min();
    return static_cast<To>(i);
  }
}

// Converts one value between any two non-string element types (int4/uint4
// excepted, see ToInt4Value). `saturate` applies to float8 targets (ONNX
// Cast's attribute): out-of-range values become the largest finite value
// instead of NaN / infinity.
template <typename To, typename From>
To ConvertValue(From x, bool saturate = true) {
  if constexpr (std::is_same_v<To, From>) {
    return x;
  } else if constexpr (std::is_same_v<To, bool>) {
    if constexpr (kIsSmallFloat<From>) return static_cast<float>(x) != 0.0f;
    else return x != From(0);
  } else if constexpr (std::is_same_v<From, bool>) {
    if constexpr (kIsHalf<To>) return To(x ? 1.0f : 0.0f);
    else if constexpr (kIsFloat8<To>) return To(x ? 1.0 : 0.0);
    else return static_cast<To>(x ? 1 : 0);
  } else if constexpr (kIsFloat8<To>) {
    return To(static_cast<double>(static_cast<ComputeT<From>>(x)), saturate);
  } else if constexpr (kIsHalf<To>) {
    return To(static_cast<float>(static_cast<ComputeT<From>>(x)));
  } else if constexpr (std::is_integral_v<To> && kIsFloat<From>) {
    return DoubleToInt<To>(static_cast<double>(static_cast<ComputeT<From>>(x)));
  } else {
    return static_cast<To>(static_cast<ComputeT<From>>(x));
  }
}

// Converts one value to int4 (kSigned) or uint4, unpacked (int8_t in [-8, 7],
// uint8_t in [0, 15]). Integers keep their low 4 bits (ONNX Cast: out of range
// fixed point discards the higher bits and reinterprets, two's complement);
// floating-point values first round to the nearest integer, ties to even
// (onnx docs/technical/int4.md), NaN to 0, and then do the same.
template <bool kSigned, typename From>
std::conditional_t<kSigned, int8_t, uint8_t> ToInt4Value(From x) {
  int64_t v;
  if constexpr (std::is_same_v<From, bool>) {
    v = x ? 1 : 0;
  } else if constexpr (kIsFloat<From>) {
    v = DoubleToInt<int64_t>(std::nearbyint(static_cast<double>(static_cast<ComputeT<From>>(x))));
  } else {
    v = static_cast<int64_t>(x);
  }
  const auto nibble = static_cast<uint8_t>(static_cast<uint64_t>(v) & 0x0f);
  if constexpr (kSigned) {
    return static_cast<int8_t>((nibble & 0x08) ? (nibble | 0xf0) : nibble);
  } else {
    return nibble;
  }
}

// ---------------------------------------------------------------------------
// Binary operands, with the broadcast rule of the operator's version.

// Before opset 7, binary operators broadcast only with attribute broadcast=1,
// and then B's dimensions line up with A's starting at `axis` (default: the
// trailing dimensions). Returns B viewed with A's rank so that numpy
// broadcasting gives the old result.
absl::StatusOr<Tensor> LegacyBroadcastView(const KernelContext& ctx, const Tensor& a, const Tensor& b) {
  if (ctx.opset() >= 7 || ctx.node().GetInt("broadcast", 0) == 0) return b;
  const int64_t ra = a.rank(), rb = b.rank();
  if (rb > ra) return ctx.Error("broadcast: B has rank ", rb, " > rank ", ra, " of A");
  if (b.size() == 1) return b;
  int64_t axis = ctx.node().GetInt("axis", ra - rb);
  if (axis < 0) axis += ra;
  if (axis < 0 || axis + rb > ra) {
    return ctx.Error("broadcast axis ", ctx.node().GetInt("axis", 0), " does not fit B ",
                     ShapeToString(b.shape()), " into A ", ShapeToString(a.shape()));
  }
  Shape shape(ra, 1);
  for (int64_t d = 0; d < rb; ++d) {
    if (b.dim(d) != a.dim(axis + d) && b.dim(d) != 1) {
      return ctx.Error("broadcast: B ", ShapeToString(b.shape()), " does not match A ",
                       ShapeToString(a.shape()), " at axis ", axis);
    }
    shape[axis + d] = b.dim(d);
  }
  return b.Reshaped(shape);
}

struct BinaryOperands {
  Tensor a, b;
  Shape out_shape;
};

// Inputs 0 and 1 with their broadcast shape; with same_type, an error unless
// both have the same dtype.
absl::StatusOr<BinaryOperands> GetBinaryOperands(const KernelContext& ctx, bool same_type = true) {
  if (ctx.num_inputs() < 2 || !ctx.HasInput(0) || !ctx.HasInput(1)) return ctx.Error("expects two inputs");
  BinaryOperands ops;
  ops.a = ctx.Input(0);
  auto b = LegacyBroadcastView(ctx, ops.a, ctx.Input(1));
  if (!b.ok()) return b.status();
  ops.b = *std::move(b);
  if (same_type && ops.a.dtype() != ops.b.dtype()) {
    return ctx.Error("inputs have different types: ", DTypeName(ops.a.dtype()), " and ",
                     DTypeName(ops.b.dtype()));
  }
  auto shape = BroadcastShapes(ops.a.shape(), ops.b.shape());
  if (!shape.ok()) return ctx.Error(shape.status().message());
  ops.out_shape = *std::move(shape);
  return ops;
}

// Legacy-aware shape function: before opset 7 with broadcast=1 the output has
// A's shape; otherwise numpy broadcasting.
absl::Status InferBinaryAs(const InferContext& ctx, std::vector<TypeInfo>& outputs, bool boolean) {
  if (ctx.opset < 7 && ctx.node.GetInt("broadcast", 0) != 0) {
    if (!outputs.empty() && !ctx.input_types.empty()) {
      outputs[0] = ctx.input_types[0];
      if (boolean) outputs[0].dtype = DType::kBool;
    }
    return absl::OkStatus();
  }
  return boolean ? InferBroadcastBool(ctx, outputs) : InferBroadcast(ctx, outputs);
}
absl::Status InferBinary(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  return InferBinaryAs(ctx, outputs, false);
}
absl::Status InferBinaryBool(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  return InferBinaryAs(ctx, outputs, true);
}

// Output 0: input 0's shape, dtype bool.
absl::Status InferSameShapeBool(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.empty() || outputs.empty()) return absl::OkStatus();
  outputs[0] = ctx.input_types[0];
  if (outputs[0].kind == TypeInfo::Kind::kUnknown) outputs[0].kind = TypeInfo::Kind::kTensor;
  outputs[0].dtype = DType::kBool;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Arithmetic: Add, Sub, Mul, Div, Mod, Pow.

// Integer add/sub/mul wrap around like numpy instead of overflowing.
template <typename T>
T WrapAdd(T x, T y) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(x) + static_cast<U>(y)));
}
template <typename T>
T WrapSub(T x, T y) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(x) - static_cast<U>(y)));
}
template <typename T>
T WrapMul(T x, T y) {
  using U = std::make_unsigned_t<T>;
  // Promote narrow unsigned types to unsigned int: uint16*uint16 would
  // otherwise promote to (signed) int and overflow.
  using W = std::conditional_t<(sizeof(U) < sizeof(unsigned)), unsigned, U>;
  return static_cast<T>(static_cast<U>(static_cast<W>(static_cast<U>(x)) * static_cast<W>(static_cast<U>(y))));
}

struct AddOp {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>) return WrapAdd(x, y);
    else return x + y;
  }
};
struct SubOp {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>) return WrapSub(x, y);
    else return x - y;
  }
};
struct MulOp {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>) return WrapMul(x, y);
    else return x * y;
  }
};
struct DivOp {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>) {
      if (y == 0) return C(0);  // integer division by zero: 0, not a trap
      if constexpr (std::is_signed_v<C>) {
        if (y == C(-1)) return WrapSub(C(0), x);  // INT_MIN / -1 wraps
      }
      return static_cast<C>(x / y);
    } else {
      return x / y;
    }
  }
};

// Mod with fmod=0: the result takes the divisor's sign (Python / numpy.mod);
// fmod=1: the dividend's sign (C fmod).
template <bool kFmod>
struct ModOp {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>) {
      if (y == 0) return C(0);
      if constexpr (std::is_signed_v<C>) {
        if (y == C(-1)) return C(0);
        C r = static_cast<C>(x % y);
        if (!kFmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<C>(r + y);
        return r;
      } else {
        return static_cast<C>(x % y);
      }
    } else {
      C r = std::fmod(x, y);
      if (!kFmod) {
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        else if (r == 0) r = std::copysign(C(0), y);
      }
      return r;
    }
  }
};

// The vectorised fp32 form of an arithmetic operator (vec_math.h), if any.
template <typename Op>
constexpr std::optional<BinaryF32Op> VecOp() {
  if constexpr (std::is_same_v<Op, AddOp>) return BinaryF32Op::kAdd;
  else if constexpr (std::is_same_v<Op, SubOp>) return BinaryF32Op::kSub;
  else if constexpr (std::is_same_v<Op, MulOp>) return BinaryF32Op::kMul;
  else if constexpr (std::is_same_v<Op, DivOp>) return BinaryF32Op::kDiv;
  else return std::nullopt;
}

// BinaryLoop for fp32 + - * /, each run of a row through BinaryF32.
void BinaryLoopF32(const KernelContext& ctx, const Tensor& a, const Tensor& b, Tensor* out, BinaryF32Op op) {
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out->mutable_data<float>();
  const int64_t n = out->size();
  if (n == 0) return;
  BroadcastLayout<2> layout(out->shape(), {&a.shape(), &b.shape()});
  const int64_t sa = layout.contiguous(0) ? 1 : 0, sb = layout.contiguous(1) ? 1 : 0;
  ctx.ParallelFor(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    layout.ForRange(lo, hi, [&](int64_t pos, const std::array<int64_t, 2>& off, int64_t len) {
      BinaryF32(op, pa + off[0], sa, pb + off[1], sb, po + pos, len);
    });
  });
}

// Same-type binary arithmetic, computed in ComputeT<T> and stored back as T.
template <typename Op>
absl::Status ArithmeticBinary(KernelContext& ctx, Op op) {
  auto ops = GetBinaryOperands(ctx);
  if (!ops.ok()) return ops.status();
  const DType dtype = ops->a.dtype();
  return VisitNumeric(
      dtype,
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        Tensor* out = ctx.Output(0, dtype, ops->out_shape);
        if constexpr (std::is_same_v<T, float> && VecOp<Op>() != std::nullopt) {
          BinaryLoopF32(ctx, ops->a, ops->b, out, *VecOp<Op>());
        } else if constexpr (std::is_same_v<T, C>) {
          BinaryLoop<T, T, T>(ctx, ops->a, ops->b, out, op);
        } else {
          BinaryLoop<T, T, T>(ctx, ops->a, ops->b, out,
                              [op](T x, T y) { return T(op(static_cast<C>(x), static_cast<C>(y))); });
        }
        return absl::OkStatus();
      },
      ctx.node().op_type);
}

absl::Status ComputeAdd(KernelContext& ctx) { return ArithmeticBinary(ctx, AddOp{}); }
absl::Status ComputeSub(KernelContext& ctx) { return ArithmeticBinary(ctx, SubOp{}); }
absl::Status ComputeMul(KernelContext& ctx) { return ArithmeticBinary(ctx, MulOp{}); }
absl::Status ComputeDiv(KernelContext& ctx) { return ArithmeticBinary(ctx, DivOp{}); }

absl::Status ComputeMod(KernelContext& ctx) {
  const int64_t fmod = ctx.node().GetInt("fmod", 0);
  if (fmod != 0 && fmod != 1) return ctx.Error("attribute fmod must be 0 or 1, got ", fmod);
  // fmod=0 on floats is numpy.mod (the reference implementation's choice).
  return fmod ? ArithmeticBinary(ctx, ModOp<true>{}) : ArithmeticBinary(ctx, ModOp<false>{});
}

// x**n for integers by squaring, wrapping on overflow. A negative n gives the
// truncated reciprocal: 1 for x == 1, +-1 for x == -1, else 0.
template <typename T>
T IntPow(T x, int64_t n) {
  if (n < 0) {
    if (x == T(1)) return T(1);
    if constexpr (std::is_signed_v<T>) {
      if (x == T(-1)) return (n & 1) ? T(-1) : T(1);
    }
    return T(0);
  }
  T result = T(1);
  T base = x;
  while (n > 0) {
    if (n & 1) result = WrapMul(result, base);
    n >>= 1;
    if (n > 0) base = WrapMul(base, base);
  }
  return result;
}

// Pow: the output has the base's type; the exponent may be any numeric type
// (from opset 12).
absl::Status ComputePow(KernelContext& ctx) {
  auto ops = GetBinaryOperands(ctx, /*same_type=*/ctx.opset() < 12);
  if (!ops.ok()) return ops.status();
  const DType base_type = ops->a.dtype();
  // x ** 2 (squared distances): x * x is the correctly rounded square, which
  // is what powf returns for an exponent of 2, at a fraction of its cost.
  if (base_type == DType::kFloat32 && ops->b.size() == 1 && ops->out_shape == ops->a.shape() &&
      (IsFloatingPoint(ops->b.dtype()) || ops->b.dtype() == DType::kInt32 || ops->b.dtype() == DType::kInt64)) {
    auto e = ReadScalarDouble(ops->b);
    if (e.ok() && *e == 2.0) {
      Tensor* out = ctx.Output(0, base_type, ops->out_shape);
      const float* x = ops->a.data<float>();
      float* y = out->mutable_data<float>();
      ctx.ParallelFor(0, out->size(), 1 << 14, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) y[i] = x[i] * x[i];
      });
      return absl::OkStatus();
    }
  }
  return VisitNumeric(
      base_type,
      [&](auto base_tag) -> absl::Status {
        using TA = typename decltype(base_tag)::type;
        return VisitNumeric(
            ops->b.dtype(),
            [&](auto exp_tag) -> absl::Status {
              using TB = typename decltype(exp_tag)::type;
              Tensor* out = ctx.Output(0, base_type, ops->out_shape);
              if constexpr (std::is_integral_v<TA> && std::is_integral_v<TB>) {
                BinaryLoop<TA, TB, TA>(ctx, ops->a, ops->b, out, [](TA x, TB y) {
                  int64_t n;
                  if constexpr (std::is_same_v<TB, uint64_t>) {
                    n = y > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                            ? std::numeric_limits<int64_t>::max()
                            : static_cast<int64_t>(y);
                  } else {
                    n = static_cast<int64_t>(y);
                  }
                  return IntPow<TA>(x, n);
                });
              } else if constexpr (std::is_integral_v<TA>) {
                // Integer base, float exponent: numpy computes in double.
                BinaryLoop<TA, TB, TA>(ctx, ops->a, ops->b, out, [](TA x, TB y) {
                  double r = std::pow(static_cast<double>(x), static_cast<double>(static_cast<ComputeT<TB>>(y)));
                  return DoubleToInt<TA>(r);
                });
              } else {
                using C = ComputeT<TA>;
                BinaryLoop<TA, TB, TA>(ctx, ops->a, ops->b, out, [](TA x, TB y) {
                  C e = static_cast<C>(static_cast<ComputeT<TB>>(y));
                  return static_cast<TA>(static_cast<C>(std::pow(static_cast<C>(x), e)));
                });
              }
              return absl::OkStatus();
            },
            "Pow exponent");
      },
      "Pow base");
}

// ---------------------------------------------------------------------------
// Bitwise, logical and comparison operators.

template <typename Op>
absl::Status IntegerBinary(KernelContext& ctx, Op op) {
  auto ops = GetBinaryOperands(ctx);
  if (!ops.ok()) return ops.status();
  const DType dtype = ops->a.dtype();
  return VisitInteger(
      dtype,
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        Tensor* out = ctx.Output(0, dtype, ops->out_shape);
        BinaryLoop<T, T, T>(ctx, ops->a, ops->b, out, [op](T x, T y) { return static_cast<T>(op(x, y)); });
        return absl::OkStatus();
      },
      ctx.node().op_type);
}

absl::Status ComputeBitwiseAnd(KernelContext& ctx) {
  return IntegerBinary(ctx, [](auto x, auto y) { return x & y; });
}
absl::Status ComputeBitwiseOr(KernelContext& ctx) {
  return IntegerBinary(ctx, [](auto x, auto y) { return x | y; });
}
absl::Status ComputeBitwiseXor(KernelContext& ctx) {
  return IntegerBinary(ctx, [](auto x, auto y) { return x ^ y; });
}

absl::Status ComputeBitShift(KernelContext& ctx) {
  const std::string direction = ctx.node().GetString("direction");
  if (direction != "LEFT" && direction != "RIGHT") {
    return ctx.Error("attribute direction must be \"LEFT\" or \"RIGHT\", got \"", direction, "\"");
  }
  const bool left = direction == "LEFT";
  if (IsSignedInteger(ctx.Input(0).dtype())) {
    return ctx.Error("BitShift takes unsigned integers, got ", DTypeName(ctx.Input(0).dtype()));
  }
  return IntegerBinary(ctx, [left](auto x, auto y) {
    using T = decltype(x);
    constexpr auto kBits = static_cast<T>(sizeof(T) * 8);
    if (y >= kBits) return T(0);  // shifting by the width or more is undefined in C++
    return static_cast<T>(left ? static_cast<T>(x << y) : static_cast<T>(x >> y));
  });
}

absl::Status ComputeBitwiseNot(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  return VisitInteger(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        Tensor* out = ctx.Output(0, x.dtype(), x.shape());
        UnaryLoop<T, T>(ctx, x, out, [](T v) { return static_cast<T>(~v); });
        return absl::OkStatus();
      },
      "BitwiseNot");
}

template <typename Op>
absl::Status LogicalBinary(KernelContext& ctx, Op op) {
  auto ops = GetBinaryOperands(ctx);
  if (!ops.ok()) return ops.status();
  if (ops->a.dtype() != DType::kBool) {
    return ctx.Error("takes bool inputs, got ", DTypeName(ops->a.dtype()));
  }
  Tensor* out = ctx.Output(0, DType::kBool, ops->out_shape);
  BinaryLoop<bool, bool, bool>(ctx, ops->a, ops->b, out, op);
  return absl::OkStatus();
}

absl::Status ComputeAnd(KernelContext& ctx) {
  return LogicalBinary(ctx, [](bool x, bool y) { return x && y; });
}
absl::Status ComputeOr(KernelContext& ctx) {
  return LogicalBinary(ctx, [](bool x, bool y) { return x || y; });
}
absl::Status ComputeXor(KernelContext& ctx) {
  return LogicalBinary(ctx, [](bool x, bool y) { return x != y; });
}

absl::Status ComputeNot(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  if (x.dtype() != DType::kBool) return ctx.Error("takes bool input, got ", DTypeName(x.dtype()));
  Tensor* out = ctx.Output(0, DType::kBool, x.shape());
  UnaryLoop<bool, bool>(ctx, x, out, [](bool v) { return !v; });
  return absl::OkStatus();
}

// Comparisons give bool; 16-bit floats compare as float. Equal also takes
// bool and (opset 19) string.
template <typename Cmp>
absl::Status Comparison(KernelContext& ctx, Cmp cmp, bool allow_bool_string) {
  auto ops = GetBinaryOperands(ctx);
  if (!ops.ok()) return ops.status();
  const DType dtype = ops->a.dtype();
  if (dtype == DType::kString && allow_bool_string) {
    Tensor* out = ctx.Output(0, DType::kBool, ops->out_shape);
    BinaryLoop<std::string, std::string, bool>(
        ctx, ops->a, ops->b, out, [cmp](const std::string& x, const std::string& y) { return cmp(x, y); });
    return absl::OkStatus();
  }
  if (dtype == DType::kBool && !allow_bool_string) {
    return ctx.Error("does not take bool inputs");
  }
  return VisitNumericOrBool(
      dtype,
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        Tensor* out = ctx.Output(0, DType::kBool, ops->out_shape);
        BinaryLoop<T, T, bool>(ctx, ops->a, ops->b, out,
                               [cmp](T x, T y) { return cmp(static_cast<C>(x), static_cast<C>(y)); });
        return absl::OkStatus();
      },
      ctx.node().op_type);
}

absl::Status ComputeEqual(KernelContext& ctx) {
  return Comparison(ctx, [](const auto& x, const auto& y) { return x == y; }, true);
}
absl::Status ComputeLess(KernelContext& ctx) {
  return Comparison(ctx, [](const auto& x, const auto& y) { return x < y; }, false);
}
absl::Status ComputeLessOrEqual(KernelContext& ctx) {
  return Comparison(ctx, [](const auto& x, const auto& y) { return x <= y; }, false);
}
absl::Status ComputeGreater(KernelContext& ctx) {
  return Comparison(ctx, [](const auto& x, const auto& y) { return x > y; }, false);
}
absl::Status ComputeGreaterOrEqual(KernelContext& ctx) {
  return Comparison(ctx, [](const auto& x, const auto& y) { return x >= y; }, false);
}

// ---------------------------------------------------------------------------
// Unary math.

// out = op(x) for the floating-point types, computed in ComputeT<T>; op is a
// generic callable.
template <typename Op>
absl::Status FloatUnary(KernelContext& ctx, Op op) {
  const Tensor& x = ctx.Input(0);
  return VisitFloat(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        Tensor* out = ctx.Output(0, x.dtype(), x.shape());
        UnaryLoop<T, T>(ctx, x, out, [op](T v) { return static_cast<T>(static_cast<C>(op(static_cast<C>(v)))); });
        return absl::OkStatus();
      },
      ctx.node().op_type);
}

absl::Status ComputeAbs(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  return VisitNumeric(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        Tensor* out = ctx.Output(0, x.dtype(), x.shape());
        UnaryLoop<T, T>(ctx, x, out, [](T v) -> T {
          if constexpr (std::is_unsigned_v<T>) return v;
          else if constexpr (std::is_integral_v<T>) return v < 0 ? WrapSub(T(0), v) : v;
          else return static_cast<T>(std::fabs(static_cast<C>(v)));
        });
        return absl::OkStatus();
      },
      "Abs");
}

absl::Status ComputeNeg(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  return VisitNumeric(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        Tensor* out = ctx.Output(0, x.dtype(), x.shape());
        UnaryLoop<T, T>(ctx, x, out, [](T v) -> T {
          if constexpr (std::is_integral_v<T>) return WrapSub(T(0), v);
          else return static_cast<T>(-static_cast<C>(v));
        });
        return absl::OkStatus();
      },
      "Neg");
}

// Sign and Erf take every numeric type; integers compute through double.
absl::Status ComputeSign(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  return VisitNumeric(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        Tensor* out = ctx.Output(0, x.dtype(), x.shape());
        UnaryLoop<T, T>(ctx, x, out, [](T v) -> T {
          const C c = static_cast<C>(v);
          if (c > C(0)) return static_cast<T>(C(1));
          if (c < C(0)) return static_cast<T>(C(-1));
          return v;  // 0, -0 or NaN
        });
        return absl::OkStatus();
      },
      "Sign");
}

absl::Status ComputeErf(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  if (x.dtype() == DType::kFloat32) {
    Tensor* out = ctx.Output(0, x.dtype(), x.shape());
    const float* px = x.data<float>();
    float* po = out->mutable_data<float>();
    ctx.ParallelFor(0, x.size(), int64_t{1} << 14, [&](int64_t lo, int64_t hi) { ErfF32(px + lo, po + lo, hi - lo); });
    return absl::OkStatus();
  }
  if (IsFloatingPoint(x.dtype())) return FloatUnary(ctx, [](auto v) { return std::erf(v); });
  return VisitInteger(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        Tensor* out = ctx.Output(0, x.dtype(), x.shape());
        UnaryLoop<T, T>(ctx, x, out, [](T v) { return DoubleToInt<T>(std::erf(static_cast<double>(v))); });
        return absl::OkStatus();
      },
      "Erf");
}

absl::Status ComputeReciprocal(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return decltype(v)(1) / v; });
}
absl::Status ComputeSqrt(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::sqrt(v); });
}
absl::Status ComputeExp(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::exp(v); });
}
absl::Status ComputeLog(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::log(v); });
}
absl::Status ComputeCeil(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::ceil(v); });
}
absl::Status ComputeFloor(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::floor(v); });
}
// Half to even, independent of the thread's rounding mode.
absl::Status ComputeRound(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) {
    using C = decltype(v);
    C r = std::round(v);  // half away from zero
    if (std::fabs(v - std::trunc(v)) == C(0.5)) r = C(2) * std::round(v / C(2));
    return r;
  });
}
absl::Status ComputeSin(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::sin(v); });
}
absl::Status ComputeCos(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::cos(v); });
}
absl::Status ComputeTan(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::tan(v); });
}
absl::Status ComputeAsin(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::asin(v); });
}
absl::Status ComputeAcos(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::acos(v); });
}
absl::Status ComputeAtan(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::atan(v); });
}
absl::Status ComputeSinh(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::sinh(v); });
}
absl::Status ComputeCosh(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::cosh(v); });
}
absl::Status ComputeAsinh(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::asinh(v); });
}
absl::Status ComputeAcosh(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::acosh(v); });
}
absl::Status ComputeAtanh(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto v) { return std::atanh(v); });
}

// IsNaN / IsInf: floating point to bool.
// Float8 inputs (opset 20) decode to float: NaN and infinity codes keep their
// meaning.
template <typename Pred>
absl::Status FloatPredicate(KernelContext& ctx, Pred pred) {
  const Tensor& x = ctx.Input(0);
  auto run = [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    Tensor* out = ctx.Output(0, DType::kBool, x.shape());
    UnaryLoop<T, bool>(ctx, x, out, [pred](T v) { return pred(static_cast<C>(v)); });
    return absl::OkStatus();
  };
  if (IsFloat8(x.dtype())) return VisitFloat8(x.dtype(), run, ctx.node().op_type);
  return VisitFloat(x.dtype(), run, ctx.node().op_type);
}

absl::Status ComputeIsNaN(KernelContext& ctx) {
  return FloatPredicate(ctx, [](auto v) { return std::isnan(v); });
}

absl::Status ComputeIsInf(KernelContext& ctx) {
  const bool neg = ctx.node().GetInt("detect_negative", 1) != 0;
  const bool pos = ctx.node().GetInt("detect_positive", 1) != 0;
  return FloatPredicate(ctx, [neg, pos](auto v) { return std::isinf(v) && (v > 0 ? pos : neg); });
}

// ---------------------------------------------------------------------------
// Variadic Sum, Mean, Max, Min.

struct MaxOp {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_floating_point_v<C>) {
      if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<C>::quiet_NaN();
    }
    return x < y ? y : x;
  }
};
struct MinOp {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_floating_point_v<C>) {
      if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<C>::quiet_NaN();
    }
    return y < x ? y : x;
  }
};

// Folds inputs 0..n-1 with op under numpy broadcasting: the output takes the
// broadcast shape of all inputs; input 0 and 1 are combined into it, then
// each further input is combined in place. With mean, divides by n.
template <typename Op>
absl::Status Variadic(KernelContext& ctx, Op op, bool mean) {
  const size_t n = ctx.num_inputs();
  if (n == 0) return ctx.Error("expects at least one input");
  std::vector<Shape> shapes;
  for (size_t i = 0; i < n; ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is missing");
    if (ctx.Input(i).dtype() != ctx.Input(0).dtype()) {
      return ctx.Error("inputs have different types: ", DTypeName(ctx.Input(0).dtype()), " and ",
                       DTypeName(ctx.Input(i).dtype()));
    }
    shapes.push_back(ctx.Input(i).shape());
  }
  auto shape = BroadcastShapes(shapes);
  if (!shape.ok()) return ctx.Error(shape.status().message());
  const DType dtype = ctx.Input(0).dtype();
  if (n == 1) {
    ctx.SetOutput(0, ctx.Input(0));  // every op of one input is the identity
    return absl::OkStatus();
  }
  return VisitNumeric(
      dtype,
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        auto f = [op](T x, T y) { return static_cast<T>(op(static_cast<C>(x), static_cast<C>(y))); };
        Tensor* out = ctx.Output(0, dtype, *shape);
        BinaryLoop<T, T, T>(ctx, ctx.Input(0), ctx.Input(1), out, f);
        for (size_t i = 2; i < n; ++i) BinaryLoop<T, T, T>(ctx, *out, ctx.Input(i), out, f);
        if (mean) {
          const C count = static_cast<C>(n);
          T* p = out->mutable_data<T>();
          ctx.ParallelFor(0, out->size(), kGrain, [&](int64_t lo, int64_t hi) {
            for (int64_t i = lo; i < hi; ++i) p[i] = static_cast<T>(static_cast<C>(p[i]) / count);
          });
        }
        return absl::OkStatus();
      },
      ctx.node().op_type);
}

absl::Status ComputeSum(KernelContext& ctx) { return Variadic(ctx, AddOp{}, false); }
absl::Status ComputeMean(KernelContext& ctx) { return Variadic(ctx, AddOp{}, true); }
absl::Status ComputeMax(KernelContext& ctx) { return Variadic(ctx, MaxOp{}, false); }
absl::Status ComputeMin(KernelContext& ctx) { return Variadic(ctx, MinOp{}, false); }

// ---------------------------------------------------------------------------
// Where(condition, X, Y).

absl::Status ComputeWhere(KernelContext& ctx) {
  if (ctx.num_inputs() < 3 || !ctx.HasInput(0) || !ctx.HasInput(1) || !ctx.HasInput(2)) {
    return ctx.Error("expects three inputs (condition, X, Y)");
  }
  const Tensor& c = ctx.Input(0);
  const Tensor& x = ctx.Input(1);
  const Tensor& y = ctx.Input(2);
  if (c.dtype() != DType::kBool) return ctx.Error("condition must be bool, got ", DTypeName(c.dtype()));
  if (x.dtype() != y.dtype()) {
    return ctx.Error("X and Y have different types: ", DTypeName(x.dtype()), " and ", DTypeName(y.dtype()));
  }
  Shape shapes[3] = {c.shape(), x.shape(), y.shape()};
  auto shape = BroadcastShapes(absl::MakeConstSpan(shapes, 3));
  if (!shape.ok()) return ctx.Error(shape.status().message());
  return VisitAll(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        Tensor* out = ctx.Output(0, x.dtype(), *shape);
        const bool* pc = c.data<bool>();
        const T* px = x.data<T>();
        const T* py = y.data<T>();
        T* po = out->mutable_data<T>();
        BroadcastLayout<3> layout(*shape, {&shapes[0], &shapes[1], &shapes[2]});
        const int64_t sc = layout.contiguous(0), sx = layout.contiguous(1), sy = layout.contiguous(2);
        ctx.ParallelFor(0, out->size(), kGrain, [&](int64_t lo, int64_t hi) {
          layout.ForRange(lo, hi, [&](int64_t pos, const std::array<int64_t, 3>& off, int64_t len) {
            const bool* cc = pc + off[0];
            const T* xx = px + off[1];
            const T* yy = py + off[2];
            T* o = po + pos;
            for (int64_t i = 0; i < len; ++i) o[i] = cc[i * sc] ? xx[i * sx] : yy[i * sy];
          });
        });
        return absl::OkStatus();
      },
      "Where");
}

absl::Status InferWhere(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.size() < 3) return absl::OkStatus();
  // Broadcast shape of all three, with X's dtype: put X first.
  InferContext reordered{ctx.node, ctx.opset, {ctx.input_types[1], ctx.input_types[0], ctx.input_types[2]}, {}};
  return InferBroadcast(reordered, outputs);
}

// ---------------------------------------------------------------------------
// Clip: bounds are attributes (float) before opset 11, optional scalar inputs
// from it. With min > max every value becomes max (as numpy.clip).

template <typename T>
absl::Status ClipTyped(KernelContext& ctx, const Tensor& x, ComputeT<T> lo, ComputeT<T> hi) {
  using C = ComputeT<T>;
  Tensor* out = ctx.Output(0, x.dtype(), x.shape());
  UnaryLoop<T, T>(ctx, x, out, [lo, hi](T v) {
    C c = static_cast<C>(v);
    c = c < lo ? lo : c;
    c = c > hi ? hi : c;
    return static_cast<T>(c);
  });
  return absl::OkStatus();
}

absl::Status ComputeClipAttr(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  const float lo = ctx.node().GetFloat("min", std::numeric_limits<float>::lowest());
  const float hi = ctx.node().GetFloat("max", std::numeric_limits<float>::max());
  return VisitFloat(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        return ClipTyped<T>(ctx, x, static_cast<C>(lo), static_cast<C>(hi));
      },
      "Clip");
}

absl::Status ComputeClip(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  return VisitNumeric(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        C bounds[2] = {std::numeric_limits<C>::lowest(), std::numeric_limits<C>::max()};
        if constexpr (std::is_floating_point_v<C>) {
          bounds[0] = -std::numeric_limits<C>::infinity();
          bounds[1] = std::numeric_limits<C>::infinity();
        }
        for (size_t i = 1; i <= 2; ++i) {
          if (!ctx.HasInput(i)) continue;
          const Tensor& b = ctx.Input(i);
          if (b.dtype() != x.dtype()) {
            return ctx.Error(i == 1 ? "min" : "max", " has type ", DTypeName(b.dtype()), ", input has ",
                             DTypeName(x.dtype()));
          }
          if (b.size() != 1) {
            return ctx.Error(i == 1 ? "min" : "max", " must be a scalar, got shape ", ShapeToString(b.shape()));
          }
          bounds[i - 1] = static_cast<C>(b.data<T>()[0]);
        }
        return ClipTyped<T>(ctx, x, bounds[0], bounds[1]);
      },
      "Clip");
}

// ---------------------------------------------------------------------------
// Cast and CastLike.

absl::StatusOr<DType> CheckCastTarget(int64_t v) {
  if (v <= 0 || v > std::numeric_limits<int32_t>::max() || !IsKnownDType(static_cast<int32_t>(v))) {
    return absl::InvalidArgumentError(absl::StrCat("attribute 'to' is not a known data type: ", v));
  }
  DType d = static_cast<DType>(v);
  if (d == DType::kComplex64 || d == DType::kComplex128) {
    return absl::InvalidArgumentError("Cast to complex types is not defined by ONNX");
  }
  return d;
}

// The target dtype of Cast: an ONNX TensorProto.DataType number (opset >= 6)
// or, in opset 1, its name ("FLOAT").
absl::StatusOr<DType> CastTarget(const Node& node) {
  const Attribute* a = node.FindAttribute("to");
  if (a == nullptr) return absl::InvalidArgumentError("attribute 'to' is missing");
  int64_t v = -1;
  if (a->type == Attribute::Type::kInt) {
    v = a->i;
  } else if (a->type == Attribute::Type::kString) {
    static constexpr const char* kNames[] = {"UNDEFINED", "FLOAT",   "UINT8",     "INT8",   "UINT16",
                                             "INT16",     "INT32",   "INT64",     "STRING", "BOOL",
                                             "FLOAT16",   "DOUBLE",  "UINT32",    "UINT64", "COMPLEX64",
                                             "COMPLEX128", "BFLOAT16"};
    std::string name = absl::AsciiStrToUpper(a->s);
    for (int64_t i = 0; i < static_cast<int64_t>(std::size(kNames)); ++i)
      if (name == kNames[i]) v = i;
    if (v < 0) return absl::InvalidArgumentError(absl::StrCat("attribute 'to' names no data type: \"", a->s, "\""));
  } else {
    return absl::InvalidArgumentError("attribute 'to' must be an int");
  }
  return CheckCastTarget(v);
}


// Shortest decimal digits that read back to `v` in its own precision, as
// (digits without dot, decimal exponent of the first digit).
template <typename T>
void ShortestDigits(T v, std::string* digits, int* exponent) {
  char buf[64];
  const char* end;
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    auto r = std::to_chars(buf, buf + sizeof(buf) - 1, v, std::chars_format::scientific);
    *r.ptr = '\0';  // to_chars does not terminate; atoi below reads up to a '\0'
    end = r.ptr;
  } else {
    // 16-bit floats: the fewest significant digits that round-trip.
    const double d = static_cast<float>(v);
    int n = 0;
    for (int p = 0; p < 17; ++p) {
      n = std::snprintf(buf, sizeof(buf), "%.*e", p, d);
      if (T(static_cast<float>(std::strtod(buf, nullptr))).bits == v.bits) break;
    }
    end = buf + n;
  }
  // buf: [-]d[.ddd]e(+|-)xx
  const char* p = buf;
  if (*p == '-') ++p;
  digits->clear();
  for (; p < end && *p != 'e'; ++p)
    if (*p != '.') digits->push_back(*p);
  while (digits->size() > 1 && digits->back() == '0') digits->pop_back();
  *exponent = p < end ? std::atoi(p + 1) : 0;
}

// numpy's str() of a float scalar: shortest round-trip digits, positional for
// 1e-4 <= |v| < 1e16 ("0.5", "100.0"), scientific otherwise ("1e-05",
// "1.5e+16"); "nan", "inf", "-inf".
template <typename T>
std::string FormatFloat(T v) {
  // float8 has no numpy type: its value is printed as a Python float would be.
  if constexpr (kIsFloat8<T>) return FormatFloat(static_cast<double>(static_cast<float>(v)));
  const double d = static_cast<double>(static_cast<ComputeT<T>>(v));
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  std::string sign = std::signbit(d) ? "-" : "";
  if (d == 0) return sign + "0.0";
  std::string digits;
  int e = 0;
  ShortestDigits(v, &digits, &e);
  const double a = std::fabs(d);
  if (a >= 1e-4 && a < 1e16) {
    std::string s;
    if (e >= 0) {
      std::string int_part = digits.substr(0, std::min<size_t>(digits.size(), e + 1));
      int_part.append(e + 1 > static_cast<int>(digits.size()) ? e + 1 - digits.size() : 0, '0');
      std::string frac = static_cast<int>(digits.size()) > e + 1 ? digits.substr(e + 1) : "0";
      s = int_part + "." + frac;
    } else {
      s = "0." + std::string(-e - 1, '0') + digits;
    }
    return sign + s;
  }
  std::string s = digits.substr(0, 1);
  if (digits.size() > 1) s += "." + digits.substr(1);
  const int ae = std::abs(e);
  return absl::StrCat(sign, s, "e", e < 0 ? "-" : "+", ae < 10 ? "0" : "", ae);
}

template <typename T>
std::string ToString(T v) {
  if constexpr (std::is_same_v<T, bool>) return v ? "True" : "False";
  else if constexpr (kIsFloat<T>) return FormatFloat(v);
  else return std::to_string(v);
}

// Parses a string the way numpy's astype does (surrounding blanks allowed,
// "inf"/"nan" in any case, scientific notation); false if it is no number.
bool ParseDouble(const std::string& s, double* out) {
  const char* begin = s.c_str();
  char* end = nullptr;
  *out = std::strtod(begin, &end);
  if (end == begin) return false;
  while (*end != '\0' && absl::ascii_isspace(static_cast<unsigned char>(*end))) ++end;
  return *end == '\0';
}

template <typename T>
bool FromString(const std::string& s, T* out, bool saturate = true) {
  if constexpr (std::is_same_v<T, bool>) {
    std::string l = absl::AsciiStrToLower(absl::StripAsciiWhitespace(s));
    if (l == "true") return *out = true, true;
    if (l == "false") return *out = false, true;
    double d;
    if (!ParseDouble(s, &d)) return false;
    *out = d != 0;
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    std::string t(absl::StripAsciiWhitespace(s));
    if (!t.empty() && t[0] == '+') t.erase(0, 1);
    T v{};
    auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    if (r.ec == std::errc() && r.ptr == t.data() + t.size() && !t.empty()) {
      *out = v;
      return true;
    }
    double d;  // "1e3", "2.5", or out of range: through double
    if (!ParseDouble(s, &d)) return false;
    *out = DoubleToInt<T>(d);
    return true;
  } else {
    double d;
    if (!ParseDouble(s, &d)) return false;
    *out = ConvertValue<T>(d, saturate);
    return true;
  }
}

// Visits the types Cast converts between element by element: numeric, bool
// and float8 (not string, complex or int4/uint4).
template <typename F>
absl::Status VisitCastable(DType d, F&& f) {
  if (IsFloat8(d)) return VisitFloat8(d, f, "Cast");
  return VisitNumericOrBool(d, f, "Cast");
}

// Visits the C++ type a value of `d` is read as: int4/uint4 as their unpacked
// int8_t/uint8_t storage (exact), the others as VisitCastable.
template <typename F>
absl::Status VisitCastSource(DType d, F&& f) {
  if (d == DType::kInt4) return f(TypeTag<int8_t>{});
  if (d == DType::kUInt4) return f(TypeTag<uint8_t>{});
  return VisitCastable(d, f);
}

// Cast's element conversion. `saturate` (opset >= 19) governs float8
// targets. int4/uint4 sources read exactly; int4/uint4 targets follow
// ToInt4Value.
absl::Status CastTensor(KernelContext& ctx, const Tensor& x, DType to, bool saturate) {
  if (x.dtype() == to) {
    ctx.SetOutput(0, x);
    return absl::OkStatus();
  }
  if (x.dtype() == DType::kComplex64 || x.dtype() == DType::kComplex128) {
    return ctx.Error("Cast from complex types is not defined by ONNX");
  }
  Tensor* out = ctx.Output(0, to, x.shape());
  if (to == DType::kString) {
    return VisitCastSource(x.dtype(), [&](auto tag) -> absl::Status {
      using From = typename decltype(tag)::type;
      UnaryLoop<From, std::string>(ctx, x, out, [](From v) { return ToString(v); });
      return absl::OkStatus();
    });
  }
  if (to == DType::kInt4 || to == DType::kUInt4) {
    const bool is_signed = to == DType::kInt4;
    auto from_string = [&](auto parse) -> absl::Status {
      const std::string* in = x.data<std::string>();
      for (int64_t i = 0; i < x.size(); ++i) {
        int64_t v = 0;
        if (!FromString(in[i], &v)) return ctx.Error("cannot parse \"", in[i], "\" as ", DTypeName(to));
        parse(i, v);
      }
      return absl::OkStatus();
    };
    if (x.dtype() == DType::kString) {
      if (is_signed) {
        int8_t* po = out->mutable_data<int8_t>();
        return from_string([po](int64_t i, int64_t v) { po[i] = ToInt4Value<true>(v); });
      }
      uint8_t* po = out->mutable_data<uint8_t>();
      return from_string([po](int64_t i, int64_t v) { po[i] = ToInt4Value<false>(v); });
    }
    return VisitCastSource(x.dtype(), [&](auto tag) -> absl::Status {
      using From = typename decltype(tag)::type;
      if (is_signed) {
        UnaryLoop<From, int8_t>(ctx, x, out, [](From v) { return ToInt4Value<true>(v); });
      } else {
        UnaryLoop<From, uint8_t>(ctx, x, out, [](From v) { return ToInt4Value<false>(v); });
      }
      return absl::OkStatus();
    });
  }
  if (x.dtype() == DType::kString) {
    return VisitCastable(to, [&](auto tag) -> absl::Status {
      using To = typename decltype(tag)::type;
      const std::string* in = x.data<std::string>();
      To* po = out->mutable_data<To>();
      for (int64_t i = 0; i < x.size(); ++i) {
        if (!FromString(in[i], &po[i], saturate)) {
          return ctx.Error("cannot parse \"", in[i], "\" as ", DTypeName(to));
        }
      }
      return absl::OkStatus();
    });
  }
  return VisitCastSource(x.dtype(), [&](auto from_tag) -> absl::Status {
    using From = typename decltype(from_tag)::type;
    return VisitCastable(to, [&](auto to_tag) -> absl::Status {
      using To = typename decltype(to_tag)::type;
      UnaryLoop<From, To>(ctx, x, out, [saturate](From v) { return ConvertValue<To>(v, saturate); });
      return absl::OkStatus();
    });
  });
}

// Cast's `saturate` attribute (opset >= 19; default 1).
bool CastSaturates(const KernelContext& ctx) {
  return ctx.opset() < 19 || ctx.node().GetInt("saturate", 1) != 0;
}

absl::Status ComputeCast(KernelContext& ctx) {
  auto to = CastTarget(ctx.node());
  if (!to.ok()) return ctx.Error(to.status().message());
  return CastTensor(ctx, ctx.Input(0), *to, CastSaturates(ctx));
}

absl::Status ComputeCastLike(KernelContext& ctx) {
  if (!ctx.HasInput(1)) return ctx.Error("expects input 1 (target_type)");
  return CastTensor(ctx, ctx.Input(0), ctx.Input(1).dtype(), CastSaturates(ctx));
}

absl::Status InferCast(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty()) return absl::OkStatus();
  auto to = CastTarget(ctx.node);
  if (!to.ok()) return to.status();
  outputs[0] = ctx.input_types.empty() ? TypeInfo::Tensor(*to) : ctx.input_types[0];
  outputs[0].kind = TypeInfo::Kind::kTensor;
  outputs[0].dtype = *to;
  return absl::OkStatus();
}

absl::Status InferCastLike(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.size() < 2) return absl::OkStatus();
  outputs[0] = ctx.input_types[0];
  outputs[0].kind = TypeInfo::Kind::kTensor;
  outputs[0].dtype = ctx.input_types[1].dtype;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The table.

constexpr DTypeSet kBool = Bit(DType::kBool);
constexpr DTypeSet kSignedNumeric = kFloatTypes | kSignedIntTypes;
constexpr DTypeSet kPowBase = kFloatTypes | Bit(DType::kInt32) | Bit(DType::kInt64);
constexpr DTypeSet kEqualTypes = kNumericTypes | kBool | Bit(DType::kString);
constexpr DTypeSet kCastTypes = kNumericTypes | kBool | Bit(DType::kString) | kFloat8Types | kInt4Types;

const OpTableRegistration kElementwiseOps({
    // Binary arithmetic: before opset 7, broadcasting follows the
    // broadcast/axis attributes (GetBinaryOperands).
    {.name = "Add", .since = 1, .types = kNumericTypes, .infer = InferBinary, .compute = ComputeAdd},
    {.name = "Sub", .since = 1, .types = kNumericTypes, .infer = InferBinary, .compute = ComputeSub},
    {.name = "Mul", .since = 1, .types = kNumericTypes, .infer = InferBinary, .compute = ComputeMul},
    {.name = "Div", .since = 1, .types = kNumericTypes, .infer = InferBinary, .compute = ComputeDiv},
    {.name = "Pow", .since = 1, .types = kPowBase, .infer = InferBinary, .compute = ComputePow},
    {.name = "Mod", .since = 10, .types = kNumericTypes, .infer = InferBroadcast, .compute = ComputeMod},
    // Bitwise (BitShift: unsigned only).
    {.name = "BitShift", .since = 11, .types = kUnsignedIntTypes, .infer = InferBroadcast, .compute = ComputeBitShift},
    {.name = "BitwiseAnd", .since = 18, .types = kIntTypes, .infer = InferBroadcast, .compute = ComputeBitwiseAnd},
    {.name = "BitwiseOr", .since = 18, .types = kIntTypes, .infer = InferBroadcast, .compute = ComputeBitwiseOr},
    {.name = "BitwiseXor", .since = 18, .types = kIntTypes, .infer = InferBroadcast, .compute = ComputeBitwiseXor},
    {.name = "BitwiseNot", .since = 18, .types = kIntTypes, .infer = InferSameAsInput, .compute = ComputeBitwiseNot},
    // Logic and comparisons.
    {.name = "And", .since = 1, .types = kBool, .infer = InferBinaryBool, .compute = ComputeAnd},
    {.name = "Or", .since = 1, .types = kBool, .infer = InferBinaryBool, .compute = ComputeOr},
    {.name = "Xor", .since = 1, .types = kBool, .infer = InferBinaryBool, .compute = ComputeXor},
    {.name = "Not", .since = 1, .types = kBool, .infer = InferSameAsInput, .compute = ComputeNot},
    {.name = "Equal", .since = 1, .until = 18, .types = kNumericTypes | kBool, .infer = InferBinaryBool,
     .compute = ComputeEqual},
    {.name = "Equal", .since = 19, .types = kEqualTypes, .infer = InferBinaryBool, .compute = ComputeEqual},
    {.name = "Less", .since = 1, .types = kNumericTypes, .infer = InferBinaryBool, .compute = ComputeLess},
    {.name = "LessOrEqual", .since = 12, .types = kNumericTypes, .infer = InferBroadcastBool,
     .compute = ComputeLessOrEqual},
    {.name = "Greater", .since = 1, .types = kNumericTypes, .infer = InferBinaryBool, .compute = ComputeGreater},
    {.name = "GreaterOrEqual", .since = 12, .types = kNumericTypes, .infer = InferBroadcastBool,
     .compute = ComputeGreaterOrEqual},
    // Unary math.
    {.name = "Abs", .since = 1, .types = kNumericTypes, .infer = InferSameAsInput, .compute = ComputeAbs},
    {.name = "Neg", .since = 1, .types = kSignedNumeric, .infer = InferSameAsInput, .compute = ComputeNeg},
    {.name = "Reciprocal", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeReciprocal},
    {.name = "Sqrt", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeSqrt},
    {.name = "Exp", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeExp},
    {.name = "Log", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeLog},
    {.name = "Ceil", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeCeil},
    {.name = "Floor", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeFloor},
    {.name = "Round", .since = 11, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeRound},
    {.name = "Sign", .since = 9, .types = kNumericTypes, .infer = InferSameAsInput, .compute = ComputeSign},
    {.name = "Erf", .since = 9, .types = kNumericTypes, .infer = InferSameAsInput, .compute = ComputeErf},
    {.name = "Sin", .since = 7, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeSin},
    {.name = "Cos", .since = 7, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeCos},
    {.name = "Tan", .since = 7, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeTan},
    {.name = "Asin", .since = 7, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeAsin},
    {.name = "Acos", .since = 7, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeAcos},
    {.name = "Atan", .since = 7, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeAtan},
    {.name = "Sinh", .since = 9, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeSinh},
    {.name = "Cosh", .since = 9, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeCosh},
    {.name = "Asinh", .since = 9, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeAsinh},
    {.name = "Acosh", .since = 9, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeAcosh},
    {.name = "Atanh", .since = 9, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeAtanh},
    {.name = "IsNaN", .since = 9, .until = 19, .types = kFloatTypes, .infer = InferSameShapeBool,
     .compute = ComputeIsNaN},
    {.name = "IsNaN", .since = 20, .types = kFloatTypes | kFloat8Types, .infer = InferSameShapeBool,
     .compute = ComputeIsNaN},
    {.name = "IsInf", .since = 10, .until = 19, .types = kFloatTypes, .infer = InferSameShapeBool,
     .compute = ComputeIsInf},
    {.name = "IsInf", .since = 20, .types = kFloatTypes | kFloat8Types, .infer = InferSameShapeBool,
     .compute = ComputeIsInf},
    // Variadic (broadcasting from opset 8; equal shapes before, a subset).
    {.name = "Sum", .since = 1, .types = kFloatTypes, .infer = InferBroadcast, .compute = ComputeSum},
    {.name = "Mean", .since = 1, .types = kFloatTypes, .infer = InferBroadcast, .compute = ComputeMean},
    {.name = "Max", .since = 1, .types = kNumericTypes, .infer = InferBroadcast, .compute = ComputeMax},
    {.name = "Min", .since = 1, .types = kNumericTypes, .infer = InferBroadcast, .compute = ComputeMin},
    {.name = "Where", .since = 9, .types = kBool, .infer = InferWhere, .compute = ComputeWhere},
    {.name = "Clip", .since = 1, .until = 10, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeClipAttr},
    {.name = "Clip", .since = 11, .types = kNumericTypes, .infer = InferSameAsInput, .compute = ComputeClip},
    {.name = "Cast", .since = 1, .types = kCastTypes, .infer = InferCast, .compute = ComputeCast},
    {.name = "CastLike", .since = 15, .types = kCastTypes, .infer = InferCastLike, .compute = ComputeCastLike},
});

}  // namespace
}  // namespace hepml::ops
