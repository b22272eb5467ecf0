// Quantization operators: QuantizeLinear and DequantizeLinear (per-tensor,
// per-axis and, from opset 21, blocked), DynamicQuantizeLinear, QLinearMatMul,
// MatMulInteger, QLinearConv and ConvInteger.
//
// Numerics (what int8 trigger models are validated against):
// - Quantization computes x / scale in float, rounds half to even, adds the
//   zero point and saturates to the output type's range.
// - Integer products are exact and accumulate in 32 bits; the spec allows
//   the accumulator (and only it) to wrap, which is done in unsigned
//   arithmetic so that it is defined behaviour.
// - Requantization (QLinearMatMul, QLinearConv) multiplies the int32
//   accumulator, as float, by the float multiplier in_scale * w_scale /
//   out_scale, rounds half to even, adds the output zero point, saturates.
//
// - float8 outputs (opset 19) convert x / scale + zero point with Cast's
//   float8 rules (round to nearest even; `saturate`); float8 inputs
//   dequantize exactly. int4/uint4 (opset 21) quantize like int8 with the
//   4-bit range; in memory they are one value per byte.
// float4 (opset 23) is not a hepml dtype.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

constexpr DTypeSet kInt8Types = Bit(DType::kInt8) | Bit(DType::kUInt8);
constexpr DTypeSet kScaleTypes = Bit(DType::kFloat32) | Bit(DType::kFloat16) | Bit(DType::kBFloat16);

// ---- scalar helpers --------------------------------------------------------

// round-half-to-even(v) + zero_point, saturated to Q's range. NaN maps to the
// zero point.
template <typename Q>
inline Q QuantizeValue(float v, float zero_point) {
  float r = std::nearbyint(v);
  if (std::isnan(r)) r = 0.0f;
  r += zero_point;
  constexpr float lo = static_cast<float>(std::numeric_limits<Q>::lowest());
  constexpr float hi = static_cast<float>(std::numeric_limits<Q>::max());
  if (r <= lo) return std::numeric_limits<Q>::lowest();
  if (r >= hi) return std::numeric_limits<Q>::max();
  return static_cast<Q>(r);
}

// A float-typed tensor (float32/float16/bfloat16, or float64) as floats.
absl::StatusOr<std::vector<float>> ReadFloats(const Tensor& t, const char* what) {
  if (!IsFloatingPoint(t.dtype())) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a float tensor, got ", DTypeName(t.dtype())));
  }
  auto d = ReadDoubles(t);
  if (!d.ok()) return d.status();
  return std::vector<float>(d->begin(), d->end());
}

// An integer tensor's values as int32 (zero points: 8/16-bit values fit).
absl::StatusOr<std::vector<int32_t>> ReadInt32s(const Tensor& t) {
  auto v = ReadInt64s(t);
  if (!v.ok()) return v.status();
  return std::vector<int32_t>(v->begin(), v->end());
}

// Zero points as doubles (exact for every quantized type: integers of at most
// 32 bits, int4/uint4, float8).
absl::StatusOr<std::vector<double>> ReadZeroPoints(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.size()));
  auto read = [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.size(); ++i) out[i] = static_cast<double>(static_cast<ComputeT<T>>(p[i]));
    return absl::OkStatus();
  };
  absl::Status st;
  if (t.dtype() == DType::kInt4) st = read(TypeTag<int8_t>{});
  else if (t.dtype() == DType::kUInt4) st = read(TypeTag<uint8_t>{});
  else if (IsFloat8(t.dtype())) st = VisitFloat8(t.dtype(), read, "zero point");
  else st = VisitInteger(t.dtype(), read, "zero point");
  if (!st.ok()) return st;
  return out;
}

// The range of a 4-bit quantized type.
template <bool kSigned>
struct Int4Range {
  static constexpr float kLo = kSigned ? -8.0f : 0.0f;
  static constexpr float kHi = kSigned ? 7.0f : 15.0f;
};

// round-half-to-even(v) + zero_point saturated to the int4 / uint4 range,
// unpacked. NaN maps to the zero point.
template <bool kSigned>
inline std::conditional_t<kSigned, int8_t, uint8_t> QuantizeInt4Value(float v, float zero_point) {
  float r = std::nearbyint(v);
  if (std::isnan(r)) r = 0.0f;
  r = std::clamp(r + zero_point, Int4Range<kSigned>::kLo, Int4Range<kSigned>::kHi);
  return static_cast<std::conditional_t<kSigned, int8_t, uint8_t>>(r);
}

// ---- quantization granularity ----------------------------------------------

// x viewed as [outer, axis_len, inner]; the parameter (scale / zero point) of
// element (o, a, i) is at o * so + (a / block) * sa + i * si.
struct Granularity {
  int64_t outer = 1, axis_len = 1, inner = 1;
  int64_t block = 1;
  int64_t so = 0, sa = 0, si = 0;
};

// Works out per-tensor, per-axis or blocked (block_size > 0, opset >= 21)
// granularity from the scale's shape, and checks the zero point against it.
absl::StatusOr<Granularity> ResolveGranularity(const KernelContext& ctx, const Shape& x_shape,
                                               const Tensor& scale, const Tensor* zero_point) {
  const Node& node = ctx.node();
  if (zero_point != nullptr && zero_point->shape() != scale.shape() &&
      !(zero_point->size() == 1 && scale.size() == 1)) {
    return ctx.Error("zero point shape ", ShapeToString(zero_point->shape()),
                     " differs from scale shape ", ShapeToString(scale.shape()));
  }
  const int64_t rank = static_cast<int64_t>(x_shape.size());
  const int64_t block_size = ctx.opset() >= 21 ? node.GetInt("block_size", 0) : 0;
  if (block_size < 0) return ctx.Error("block_size must be >= 0, got ", block_size);
  Granularity g;
  if (block_size == 0 && scale.size() == 1) {
    g.inner = NumElements(x_shape);
    return g;
  }
  auto axis = NormalizeAxis(node.GetInt("axis", 1), rank);
  // A 1-D input has only one axis to quantize along, whatever `axis` says
  // (the default 1 is out of range for it).
  if (!axis.ok() && rank == 1) axis = int64_t{0};
  if (!axis.ok() || rank == 0) {
    return ctx.Error("axis ", node.GetInt("axis", 1), " is out of range for input rank ", rank);
  }
  for (int64_t d = 0; d < *axis; ++d) g.outer *= x_shape[d];
  g.axis_len = x_shape[*axis];
  for (int64_t d = *axis + 1; d < rank; ++d) g.inner *= x_shape[d];
  if (block_size == 0) {
    if (ctx.opset() < 13) {
      return ctx.Error("scale must be a scalar before opset 13, got shape ",
                       ShapeToString(scale.shape()));
    }
    if (scale.rank() != 1 || scale.dim(0) != g.axis_len) {
      return ctx.Error("per-axis scale must be 1-D of length ", g.axis_len, " (axis ", *axis,
                       " of input shape ", ShapeToString(x_shape), "), got shape ",
                       ShapeToString(scale.shape()));
    }
    g.sa = 1;
    return g;
  }
  // Blocked: scale has x's shape except ceil(D / block_size) along the axis.
  if (scale.rank() != rank) {
    return ctx.Error("blocked scale must have the input's rank ", rank, ", got shape ",
                     ShapeToString(scale.shape()));
  }
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t want = d == *axis ? (x_shape[d] + block_size - 1) / block_size : x_shape[d];
    if (scale.dim(static_cast<int>(d)) != want) {
      return ctx.Error("blocked scale shape ", ShapeToString(scale.shape()),
                       " does not match input shape ", ShapeToString(x_shape), " with block_size ",
                       block_size, " on axis ", *axis);
    }
  }
  const int64_t blocks = scale.dim(static_cast<int>(*axis));
  g.block = block_size;
  g.so = blocks * g.inner;
  g.sa = g.inner;
  g.si = 1;
  return g;
}

// Calls fn(x_index, param_index) for every element, split over threads.
template <typename F>
void ForEachQuantElement(const KernelContext& ctx, const Granularity& g, F&& fn) {
  const int64_t rows = g.outer * g.axis_len;
  if (rows == 1) {
    ctx.ParallelFor(0, g.inner, 1 << 15, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) fn(i, i * g.si);
    });
    return;
  }
  const int64_t grain = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(g.inner, 1));
  ctx.ParallelFor(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t o = r / g.axis_len, a = r % g.axis_len;
      const int64_t pbase = o * g.so + (a / g.block) * g.sa;
      const int64_t xbase = r * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) fn(xbase + i, pbase + i * g.si);
    }
  });
}

// ---- QuantizeLinear ---------------------------------------------------------

// The output type: the zero point's, else `output_dtype` (opset 21), else uint8.
absl::StatusOr<DType> QuantizeOutputType(const KernelContext& ctx) {
  const int64_t attr = ctx.opset() >= 21 ? ctx.node().GetInt("output_dtype", 0) : 0;
  DType out = DType::kUInt8;
  if (ctx.HasInput(2)) {
    out = ctx.Input(2).dtype();
    if (attr != 0 && attr != static_cast<int64_t>(out)) {
      return ctx.Error("output_dtype ", attr, " does not match the zero point type ", DTypeName(out));
    }
  } else if (attr != 0) {
    if (attr < 0 || attr > std::numeric_limits<int32_t>::max() || !IsKnownDType(static_cast<int32_t>(attr))) {
      return ctx.Error("output_dtype ", attr, " is not a data type hepml supports");
    }
    out = static_cast<DType>(attr);
  }
  const int opset = ctx.opset();
  if (out == DType::kInt8 || out == DType::kUInt8 || (opset >= 19 && IsFloat8(out)) ||
      (opset >= 21 && (out == DType::kInt16 || out == DType::kUInt16 || Is4BitInt(out)))) {
    return out;
  }
  return ctx.Error("cannot quantize to ", DTypeName(out), " at opset ", opset,
                   opset >= 21   ? " (int8, uint8, int16, uint16, int4, uint4 and float8 are supported)"
                   : opset >= 19 ? " (int8, uint8 and float8 are supported)"
                                 : " (int8 and uint8 are supported)");
}

absl::Status ComputeQuantizeLinear(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  const Tensor& scale_t = ctx.Input(1);
  if (ctx.opset() < 19 && scale_t.dtype() != DType::kFloat32) {
    return ctx.Error("y_scale must be float32 before opset 19, got ", DTypeName(scale_t.dtype()));
  }
  if (!(Bit(scale_t.dtype()) & kScaleTypes)) {
    return ctx.Error("y_scale must be float32, float16 or bfloat16, got ", DTypeName(scale_t.dtype()));
  }
  auto scale = ReadFloats(scale_t, "y_scale");
  if (!scale.ok()) return ctx.Error(scale.status().message());
  auto out_type = QuantizeOutputType(ctx);
  if (!out_type.ok()) return out_type.status();
  const Tensor* zp_t = ctx.HasInput(2) ? &ctx.Input(2) : nullptr;
  auto g = ResolveGranularity(ctx, x.shape(), scale_t, zp_t);
  if (!g.ok()) return g.status();
  // Zero points as floats: exact for the quantized types (at most 16 bits).
  std::vector<float> zp(scale->size(), 0.0f);
  if (zp_t != nullptr) {
    auto v = ReadZeroPoints(*zp_t);
    if (!v.ok()) return ctx.Error(v.status().message());
    zp.assign(v->begin(), v->end());
  }
  const bool saturate = ctx.node().GetInt("saturate", 1) != 0;  // float8 outputs only
  Tensor* y = ctx.Output(0, *out_type, x.shape());
  const float* ps = scale->data();
  const float* pz = zp.data();
  // Runs quantize(x_i / scale, zero_point) -> Q over every element.
  auto run = [&](auto qtag, auto quantize) -> absl::Status {
    using Q = typename decltype(qtag)::type;
    Q* py = y->mutable_data<Q>();
    if (x.dtype() == DType::kInt32) {
      const int32_t* px = x.data<int32_t>();
      ForEachQuantElement(ctx, *g, [&](int64_t i, int64_t p) {
        py[i] = quantize(static_cast<float>(px[i]) / ps[p], pz[p]);
      });
      return absl::OkStatus();
    }
    return VisitFloat(x.dtype(), [&](auto xtag) -> absl::Status {
      using T = typename decltype(xtag)::type;
      const T* px = x.data<T>();
      ForEachQuantElement(ctx, *g, [&](int64_t i, int64_t p) {
        py[i] = quantize(static_cast<float>(px[i]) / ps[p], pz[p]);
      });
      return absl::OkStatus();
    });
  };
  if (IsFloat8(*out_type)) {
    // Cast's float8 conversion of x / scale + zero point (no integer rounding).
    return VisitFloat8(*out_type, [&](auto qtag) -> absl::Status {
      using Q = typename decltype(qtag)::type;
      return run(qtag, [saturate](float v, float z) { return Q(static_cast<double>(v + z), saturate); });
    });
  }
  if (*out_type == DType::kInt4) {
    return run(TypeTag<int8_t>{}, [](float v, float z) { return QuantizeInt4Value<true>(v, z); });
  }
  if (*out_type == DType::kUInt4) {
    return run(TypeTag<uint8_t>{}, [](float v, float z) { return QuantizeInt4Value<false>(v, z); });
  }
  return VisitInteger(*out_type, [&](auto qtag) -> absl::Status {
    using Q = typename decltype(qtag)::type;
    return run(qtag, [](float v, float z) { return QuantizeValue<Q>(v, z); });
  });
}

absl::Status InferQuantizeLinear(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  DType out = DType::kUInt8;
  if (ctx.input_types.size() > 2 && ctx.input_types[2].kind == TypeInfo::Kind::kTensor) {
    out = ctx.input_types[2].dtype;
  } else if (ctx.opset >= 21 && ctx.node.GetInt("output_dtype", 0) != 0 &&
             IsKnownDType(static_cast<int32_t>(ctx.node.GetInt("output_dtype", 0)))) {
    out = static_cast<DType>(ctx.node.GetInt("output_dtype", 0));
  }
  TypeInfo t = ctx.input_types.empty() ? TypeInfo() : ctx.input_types[0];
  if (t.kind != TypeInfo::Kind::kTensor) t = TypeInfo::Tensor(out);
  t.dtype = out;
  outputs[0] = t;
  return absl::OkStatus();
}

// ---- DequantizeLinear -------------------------------------------------------

absl::Status ComputeDequantizeLinear(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  const Tensor& scale_t = ctx.Input(1);
  if (ctx.opset() < 19 && scale_t.dtype() != DType::kFloat32) {
    return ctx.Error("x_scale must be float32 before opset 19, got ", DTypeName(scale_t.dtype()));
  }
  if (!(Bit(scale_t.dtype()) & kScaleTypes)) {
    return ctx.Error("x_scale must be float32, float16 or bfloat16, got ", DTypeName(scale_t.dtype()));
  }
  auto scale = ReadFloats(scale_t, "x_scale");
  if (!scale.ok()) return ctx.Error(scale.status().message());
  const Tensor* zp_t = ctx.HasInput(2) ? &ctx.Input(2) : nullptr;
  if (zp_t != nullptr && zp_t->dtype() != x.dtype()) {
    return ctx.Error("x_zero_point type ", DTypeName(zp_t->dtype()), " differs from x type ",
                     DTypeName(x.dtype()));
  }
  auto g = ResolveGranularity(ctx, x.shape(), scale_t, zp_t);
  if (!g.ok()) return g.status();
  std::vector<double> zp(scale->size(), 0.0);
  if (zp_t != nullptr) {
    auto v = ReadZeroPoints(*zp_t);
    if (!v.ok()) return ctx.Error(v.status().message());
    zp = std::move(*v);
  }
  const DType out_type = ctx.opset() >= 19 ? scale_t.dtype() : DType::kFloat32;
  Tensor* y = ctx.Output(0, out_type, x.shape());
  return VisitFloat(out_type, [&](auto otag) -> absl::Status {
    using O = typename decltype(otag)::type;
    O* py = y->mutable_data<O>();
    const float* ps = scale->data();
    const double* pz = zp.data();
    // (x - zero point) * scale; integers (at most 32 bits, int4 unpacked)
    // subtract exactly in int64, float8 in float (both exact).
    auto run = [&](auto xtag) -> absl::Status {
      using X = typename decltype(xtag)::type;
      if constexpr (sizeof(X) > 4) {
        return ctx.Error("unsupported input type ", DTypeName(x.dtype()));
      } else {
        const X* px = x.data<X>();
        ForEachQuantElement(ctx, *g, [&](int64_t i, int64_t p) {
          if constexpr (std::is_integral_v<X>) {
            const int64_t centered = static_cast<int64_t>(px[i]) - static_cast<int64_t>(pz[p]);
            py[i] = static_cast<O>(static_cast<float>(centered) * ps[p]);
          } else {
            py[i] = static_cast<O>((static_cast<float>(px[i]) - static_cast<float>(pz[p])) * ps[p]);
          }
        });
        return absl::OkStatus();
      }
    };
    if (x.dtype() == DType::kInt4) return run(TypeTag<int8_t>{});
    if (x.dtype() == DType::kUInt4) return run(TypeTag<uint8_t>{});
    if (IsFloat8(x.dtype())) return VisitFloat8(x.dtype(), run);
    return VisitInteger(x.dtype(), run);
  });
}

absl::Status InferDequantizeLinear(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  DType out = DType::kFloat32;
  if (ctx.opset >= 19 && ctx.input_types.size() > 1 &&
      ctx.input_types[1].kind == TypeInfo::Kind::kTensor) {
    out = ctx.input_types[1].dtype;
  }
  TypeInfo t = ctx.input_types.empty() ? TypeInfo() : ctx.input_types[0];
  if (t.kind != TypeInfo::Kind::kTensor) t = TypeInfo::Tensor(out);
  t.dtype = out;
  outputs[0] = t;
  return absl::OkStatus();
}

// ---- DynamicQuantizeLinear ----------------------------------------------------

absl::Status ComputeDynamicQuantizeLinear(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  const float* px = x.data<float>();
  const int64_t n = x.size();
  // The range always includes 0 so that 0 is exactly representable.
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    if (px[i] < lo) lo = px[i];
    if (px[i] > hi) hi = px[i];
  }
  // A constant-zero input would give scale 0 and 0/0; use scale 1 then (as
  // ONNX Runtime does): every value quantizes to 0 with zero point 0.
  const float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
  float zp_f = 0.0f - lo / scale;
  zp_f = std::clamp(zp_f, 0.0f, 255.0f);
  const float zp = std::nearbyint(zp_f);
  Tensor* y = ctx.Output(0, DType::kUInt8, x.shape());
  uint8_t* py = y->mutable_data<uint8_t>();
  ctx.ParallelFor(0, n, 1 << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) py[i] = QuantizeValue<uint8_t>(px[i] / scale, zp);
  });
  if (ctx.HasOutput(1)) ctx.Output(1, DType::kFloat32, {})->mutable_data<float>()[0] = scale;
  if (ctx.HasOutput(2)) {
    ctx.Output(2, DType::kUInt8, {})->mutable_data<uint8_t>()[0] = static_cast<uint8_t>(zp);
  }
  return absl::OkStatus();
}

absl::Status InferDynamicQuantizeLinear(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  TypeInfo t = ctx.input_types.empty() ? TypeInfo() : ctx.input_types[0];
  if (t.kind != TypeInfo::Kind::kTensor) t = TypeInfo::Tensor(DType::kUInt8);
  t.dtype = DType::kUInt8;
  outputs[0] = t;
  if (outputs.size() > 1) outputs[1] = TypeInfo::Tensor(DType::kFloat32, {});
  if (outputs.size() > 2) outputs[2] = TypeInfo::Tensor(DType::kUInt8, {});
  return absl::OkStatus();
}

// ---- integer matrix multiplication -------------------------------------------

// numpy.matmul shapes of a and b: batch broadcasting, 1-D operands promoted.
struct MatMulShape {
  int64_t M = 1, K = 1, N = 1;
  Shape a_batch, b_batch, batch;  // batch dims of a, b and the output
  Shape out;
};

absl::StatusOr<MatMulShape> ResolveMatMul(const KernelContext& ctx, const Shape& a, const Shape& b) {
  if (a.empty() || b.empty()) return ctx.Error("matmul operands must have rank >= 1");
  MatMulShape s;
  Shape a2 = a, b2 = b;
  if (a.size() == 1) a2.insert(a2.begin(), 1);
  if (b.size() == 1) b2.push_back(1);
  s.M = a2[a2.size() - 2];
  s.K = a2.back();
  if (b2[b2.size() - 2] != s.K) {
    return ctx.Error("matmul inner dimensions differ: a ", ShapeToString(a), ", b ",
                     ShapeToString(b));
  }
  s.N = b2.back();
  s.a_batch.assign(a2.begin(), a2.end() - 2);
  s.b_batch.assign(b2.begin(), b2.end() - 2);
  auto batch = BroadcastShapes(s.a_batch, s.b_batch);
  if (!batch.ok()) return ctx.Error("matmul batch dimensions: ", batch.status().message());
  s.batch = *batch;
  s.out = s.batch;
  if (a.size() != 1) s.out.push_back(s.M);
  if (b.size() != 1) s.out.push_back(s.N);
  return s;
}

// Expands a per-tensor / per-row (for a) or per-column (for b) parameter to
// one value per (matrix, row) or (matrix, column) of its operand. `batch` is
// the operand's batch shape, `len` its M (rows) or N (columns).
template <typename V>
absl::StatusOr<std::vector<V>> ExpandMatMulParam(const KernelContext& ctx, const std::vector<V>& p,
                                                 const Shape& p_shape, const Shape& batch,
                                                 int64_t len, bool per_row, const char* what) {
  Shape target = batch;
  if (per_row) {
    target.push_back(len);
    target.push_back(1);
  } else {
    target.push_back(1);
    target.push_back(len);
  }
  const size_t rank = target.size();
  Shape ps(rank, 1);
  if (p.size() == 1) {
    // per tensor
  } else if (p_shape.size() == 1) {
    ps[per_row ? rank - 2 : rank - 1] = p_shape[0];
  } else if (p_shape.size() >= 2 && p_shape.size() <= rank) {
    std::copy(p_shape.begin(), p_shape.end(), ps.begin() + (rank - p_shape.size()));
  } else {
    return ctx.Error(what, " has shape ", ShapeToString(p_shape), "; expected a scalar, a 1-D ",
                     per_row ? "per-row" : "per-column", " tensor of length ", len,
                     ", or a broadcastable tensor of shape ", ShapeToString(target));
  }
  for (size_t d = 0; d < rank; ++d) {
    if (ps[d] != 1 && ps[d] != target[d]) {
      return ctx.Error(what, " shape ", ShapeToString(p_shape), " does not fit ",
                       per_row ? "per-row" : "per-column", " quantization of shape ",
                       ShapeToString(target));
    }
  }
  Shape out_shape = target;
  out_shape[per_row ? rank - 1 : rank - 2] = 1;  // drop the reduced dim
  std::vector<V> out(static_cast<size_t>(NumElements(out_shape)));
  Shape in_shapes[1] = {ps};
  BroadcastIterator it(out_shape, absl::MakeConstSpan(in_shapes, 1));
  it.ForEach([&](int64_t o, const int64_t* idx) { out[o] = p[idx[0]]; });
  return out;
}

// int32 C[b] = (A[b] - azp) x (B[b] - bzp) over the broadcast batch. azp has
// one value per (a matrix, row), bzp one per (b matrix, column).
template <typename TA, typename TB>
void IntMatMul(const KernelContext& ctx, const MatMulShape& s, const TA* a, const int32_t* azp,
               const TB* b, const int32_t* bzp, int32_t* c) {
  const int64_t M = s.M, K = s.K, N = s.N;
  // Centered copies of every b matrix (shared by all batches using it).
  const int64_t b_mats = NumElements(s.b_batch);
  std::vector<int32_t> bc(static_cast<size_t>(b_mats * K * N));
  for (int64_t m = 0; m < b_mats; ++m) {
    for (int64_t k = 0; k < K; ++k) {
      const TB* brow = b + (m * K + k) * N;
      int32_t* dst = bc.data() + (m * K + k) * N;
      const int32_t* zp = bzp + m * N;
      for (int64_t j = 0; j < N; ++j) dst[j] = static_cast<int32_t>(brow[j]) - zp[j];
    }
  }
  // Which a and b matrix each output matrix reads.
  const int64_t out_mats = NumElements(s.batch);
  std::vector<int64_t> a_of(out_mats), b_of(out_mats);
  Shape in_shapes[2] = {s.a_batch, s.b_batch};
  BroadcastIterator it(s.batch, absl::MakeConstSpan(in_shapes, 2));
  it.ForEach([&](int64_t o, const int64_t* idx) {
    a_of[o] = idx[0];
    b_of[o] = idx[1];
  });
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(K * N, 1));
  ctx.ParallelFor(0, out_mats * M, grain, [&](int64_t lo, int64_t hi) {
    std::vector<uint32_t> acc(static_cast<size_t>(N));
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t mat = r / M, i = r % M;
      const TA* arow = a + (a_of[mat] * M + i) * K;
      const int32_t zp = azp[a_of[mat] * M + i];
      const int32_t* bm = bc.data() + b_of[mat] * K * N;
      std::fill(acc.begin(), acc.end(), 0u);
      for (int64_t k = 0; k < K; ++k) {
        const int32_t av = static_cast<int32_t>(arow[k]) - zp;
        if (av == 0) continue;
        const uint32_t au = static_cast<uint32_t>(av);
        const int32_t* brow = bm + k * N;
        for (int64_t j = 0; j < N; ++j) acc[j] += au * static_cast<uint32_t>(brow[j]);
      }
      int32_t* crow = c + r * N;
      for (int64_t j = 0; j < N; ++j) crow[j] = static_cast<int32_t>(acc[j]);
    }
  });
}

// Reads a zero point (absent: 0) and checks its type against its operand's.
absl::StatusOr<std::vector<int32_t>> ReadZeroPoint(const KernelContext& ctx, size_t input,
                                                   DType operand, Shape* shape, const char* what) {
  if (!ctx.HasInput(input)) {
    *shape = {};
    return std::vector<int32_t>{0};
  }
  const Tensor& t = ctx.Input(input);
  if (t.dtype() != operand) {
    return ctx.Error(what, " type ", DTypeName(t.dtype()), " differs from its input's type ",
                     DTypeName(operand));
  }
  if (t.size() == 0) return ctx.Error(what, " is empty");
  *shape = t.shape();
  auto v = ReadInt32s(t);
  if (!v.ok()) return ctx.Error(v.status().message());
  return *v;
}

absl::StatusOr<std::vector<float>> ReadScale(const KernelContext& ctx, size_t input, Shape* shape,
                                             const char* what) {
  const Tensor& t = ctx.Input(input);
  const bool ok = ctx.opset() >= 21 ? (Bit(t.dtype()) & kScaleTypes) != 0 : t.dtype() == DType::kFloat32;
  if (!ok) return ctx.Error(what, " has unsupported type ", DTypeName(t.dtype()));
  if (t.size() == 0) return ctx.Error(what, " is empty");
  *shape = t.shape();
  auto v = ReadFloats(t, what);
  if (!v.ok()) return ctx.Error(v.status().message());
  return *v;
}

// Runs the integer matmul of inputs a_in and b_in with zero points azp_in and
// bzp_in (inputs of the node); returns the int32 result and the shape.
struct IntMatMulResult {
  MatMulShape shape;
  std::vector<int32_t> acc;
};

absl::StatusOr<IntMatMulResult> RunIntMatMul(const KernelContext& ctx, size_t a_in, size_t azp_in,
                                             size_t b_in, size_t bzp_in) {
  const Tensor& a = ctx.Input(a_in);
  const Tensor& b = ctx.Input(b_in);
  if (!(Bit(b.dtype()) & kInt8Types)) {
    return ctx.Error("b must be int8 or uint8, got ", DTypeName(b.dtype()));
  }
  auto s = ResolveMatMul(ctx, a.shape(), b.shape());
  if (!s.ok()) return s.status();
  Shape azp_shape, bzp_shape;
  auto azp = ReadZeroPoint(ctx, azp_in, a.dtype(), &azp_shape, "a_zero_point");
  if (!azp.ok()) return azp.status();
  auto bzp = ReadZeroPoint(ctx, bzp_in, b.dtype(), &bzp_shape, "b_zero_point");
  if (!bzp.ok()) return bzp.status();
  auto azp_x = ExpandMatMulParam(ctx, *azp, azp_shape, s->a_batch, s->M, true, "a_zero_point");
  if (!azp_x.ok()) return azp_x.status();
  auto bzp_x = ExpandMatMulParam(ctx, *bzp, bzp_shape, s->b_batch, s->N, false, "b_zero_point");
  if (!bzp_x.ok()) return bzp_x.status();
  IntMatMulResult r;
  r.shape = *s;
  r.acc.resize(static_cast<size_t>(NumElements(s->out)));
  absl::Status st = VisitInteger(a.dtype(), [&](auto atag) -> absl::Status {
    using TA = typename decltype(atag)::type;
    return VisitInteger(b.dtype(), [&](auto btag) -> absl::Status {
      using TB = typename decltype(btag)::type;
      if constexpr (sizeof(TA) == 1 && sizeof(TB) == 1) {
        IntMatMul<TA, TB>(ctx, *s, a.data<TA>(), azp_x->data(), b.data<TB>(), bzp_x->data(),
                          r.acc.data());
        return absl::OkStatus();
      } else {
        return ctx.Error("operands must be int8 or uint8");
      }
    });
  });
  if (!st.ok()) return st;
  return r;
}

absl::Status ComputeMatMulInteger(KernelContext& ctx) {
  auto r = RunIntMatMul(ctx, 0, 2, 1, 3);
  if (!r.ok()) return r.status();
  Tensor* y = ctx.Output(0, DType::kInt32, r->shape.out);
  if (!r->acc.empty()) std::memcpy(y->mutable_data<int32_t>(), r->acc.data(), r->acc.size() * 4);
  return absl::OkStatus();
}

absl::Status ComputeQLinearMatMul(KernelContext& ctx) {
  for (size_t i = 0; i < 8; ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is required");
  }
  const Tensor& yzp_t = ctx.Input(7);
  if (!(Bit(yzp_t.dtype()) & kInt8Types)) {
    return ctx.Error("y_zero_point must be int8 or uint8, got ", DTypeName(yzp_t.dtype()));
  }
  auto r = RunIntMatMul(ctx, 0, 2, 3, 5);
  if (!r.ok()) return r.status();
  const MatMulShape& s = r->shape;
  Shape as_shape, bs_shape, ys_shape;
  auto a_scale = ReadScale(ctx, 1, &as_shape, "a_scale");
  if (!a_scale.ok()) return a_scale.status();
  auto b_scale = ReadScale(ctx, 4, &bs_shape, "b_scale");
  if (!b_scale.ok()) return b_scale.status();
  auto y_scale = ReadScale(ctx, 6, &ys_shape, "y_scale");
  if (!y_scale.ok()) return y_scale.status();
  if (y_scale->size() != 1 || yzp_t.size() != 1) {
    return ctx.Error("y_scale and y_zero_point must be scalars");
  }
  auto as_x = ExpandMatMulParam(ctx, *a_scale, as_shape, s.a_batch, s.M, true, "a_scale");
  if (!as_x.ok()) return as_x.status();
  auto bs_x = ExpandMatMulParam(ctx, *b_scale, bs_shape, s.b_batch, s.N, false, "b_scale");
  if (!bs_x.ok()) return bs_x.status();
  auto yzp = ReadInt32s(yzp_t);
  if (!yzp.ok()) return ctx.Error(yzp.status().message());
  const float ys = (*y_scale)[0];
  const float yz = static_cast<float>((*yzp)[0]);

  // Which a and b matrix each output matrix reads (for the scales).
  const int64_t out_mats = NumElements(s.batch);
  std::vector<int64_t> a_of(out_mats), b_of(out_mats);
  Shape in_shapes[2] = {s.a_batch, s.b_batch};
  BroadcastIterator it(s.batch, absl::MakeConstSpan(in_shapes, 2));
  it.ForEach([&](int64_t o, const int64_t* idx) {
    a_of[o] = idx[0];
    b_of[o] = idx[1];
  });
  Tensor* y = ctx.Output(0, yzp_t.dtype(), s.out);
  return VisitInteger(yzp_t.dtype(), [&](auto qtag) -> absl::Status {
    using Q = typename decltype(qtag)::type;
    Q* py = y->mutable_data<Q>();
    const int32_t* acc = r->acc.data();
    for (int64_t mat = 0; mat < out_mats; ++mat) {
      for (int64_t i = 0; i < s.M; ++i) {
        const float sa = (*as_x)[a_of[mat] * s.M + i];
        const float* sb = bs_x->data() + b_of[mat] * s.N;
        const int64_t base = (mat * s.M + i) * s.N;
        for (int64_t j = 0; j < s.N; ++j) {
          const float mult = sa * sb[j] / ys;
          py[base + j] = QuantizeValue<Q>(static_cast<float>(acc[base + j]) * mult, yz);
        }
      }
    }
    return absl::OkStatus();
  });
}

// ---- integer convolution --------------------------------------------------------

struct ConvGeometry {
  int64_t N = 0, C = 0, M = 0, group = 1;
  Shape in, kernel, out, strides, dilations, pad_begin;
};

absl::StatusOr<ConvGeometry> ResolveConv(const KernelContext& ctx, const Shape& x, const Shape& w) {
  const Node& node = ctx.node();
  if (x.size() < 3) return ctx.Error("x must have rank >= 3 (N, C, spatial...), got ", ShapeToString(x));
  if (w.size() != x.size()) {
    return ctx.Error("w rank ", w.size(), " differs from x rank ", x.size());
  }
  const size_t nsp = x.size() - 2;
  ConvGeometry g;
  g.N = x[0];
  g.C = x[1];
  g.M = w[0];
  g.group = node.GetInt("group", 1);
  if (g.group <= 0) return ctx.Error("group must be positive, got ", g.group);
  if (w[1] * g.group != g.C) {
    return ctx.Error("w shape ", ShapeToString(w), " with group ", g.group, " does not match ",
                     g.C, " input channels");
  }
  if (g.M % g.group != 0) {
    return ctx.Error(g.M, " output channels are not divisible by group ", g.group);
  }
  g.in.assign(x.begin() + 2, x.end());
  g.kernel.assign(w.begin() + 2, w.end());
  auto kernel_attr = node.GetInts("kernel_shape");
  if (!kernel_attr.empty()) {
    if (kernel_attr.size() != nsp || !std::equal(kernel_attr.begin(), kernel_attr.end(), g.kernel.begin())) {
      return ctx.Error("kernel_shape attribute does not match w shape ", ShapeToString(w));
    }
  }
  auto strides = node.GetInts("strides", std::vector<int64_t>(nsp, 1));
  auto dilations = node.GetInts("dilations", std::vector<int64_t>(nsp, 1));
  auto pads = node.GetInts("pads", std::vector<int64_t>(2 * nsp, 0));
  if (strides.size() != nsp || dilations.size() != nsp || pads.size() != 2 * nsp) {
    return ctx.Error("strides, dilations and pads must have ", nsp, ", ", nsp, " and ", 2 * nsp,
                     " values");
  }
  const std::string auto_pad = node.GetString("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" &&
      auto_pad != "SAME_LOWER") {
    return ctx.Error("unknown auto_pad '", auto_pad, "'");
  }
  for (size_t d = 0; d < nsp; ++d) {
    if (strides[d] <= 0 || dilations[d] <= 0) return ctx.Error("strides and dilations must be positive");
    if (pads[d] < 0 || pads[d + nsp] < 0) return ctx.Error("pads must be non-negative");
    if (g.kernel[d] <= 0) return ctx.Error("kernel dimensions must be positive");
    const int64_t extent = dilations[d] * (g.kernel[d] - 1) + 1;
    int64_t begin = pads[d], end = pads[d + nsp], out;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out = (g.in[d] + strides[d] - 1) / strides[d];
      const int64_t total = std::max<int64_t>(0, (out - 1) * strides[d] + extent - g.in[d]);
      begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else {
      if (auto_pad == "VALID") begin = end = 0;
      const int64_t span = g.in[d] + begin + end - extent;
      if (span < 0) {
        return ctx.Error("kernel extent ", extent, " exceeds padded input size ",
                         g.in[d] + begin + end, " on spatial axis ", d);
      }
      out = span / strides[d] + 1;
    }
    g.out.push_back(out);
    g.strides.push_back(strides[d]);
    g.dilations.push_back(dilations[d]);
    g.pad_begin.push_back(begin);
  }
  return g;
}

// int32 y[n, m, out...] = sum (x - xzp) * (w[m] - wzp[m]) over the group's
// input channels and the kernel window; padding contributes 0.
template <typename TX, typename TW>
void IntConv(const KernelContext& ctx, const ConvGeometry& g, const TX* x, int32_t xzp,
             const TW* w, const int32_t* wzp, int32_t* y) {
  const size_t nsp = g.in.size();
  const int64_t in_size = NumElements(g.in), out_size = NumElements(g.out);
  const int64_t k_size = NumElements(g.kernel);
  const int64_t Cg = g.C / g.group, Mg = g.M / g.group;
  const int64_t rows = Cg * k_size;
  // Per spatial axis: input coordinate of (kernel k, output o), or -1 if padding.
  std::vector<std::vector<int64_t>> coord(nsp);
  for (size_t d = 0; d < nsp; ++d) {
    coord[d].resize(static_cast<size_t>(g.kernel[d] * g.out[d]));
    for (int64_t k = 0; k < g.kernel[d]; ++k) {
      for (int64_t o = 0; o < g.out[d]; ++o) {
        const int64_t c = o * g.strides[d] - g.pad_begin[d] + k * g.dilations[d];
        coord[d][k * g.out[d] + o] = (c >= 0 && c < g.in[d]) ? c : -1;
      }
    }
  }
  const Shape in_strides = Strides(g.in);
  // Centered weights, [M, Cg * k_size].
  std::vector<int32_t> wc(static_cast<size_t>(g.M * rows));
  for (int64_t m = 0; m < g.M; ++m) {
    for (int64_t r = 0; r < rows; ++r) {
      wc[m * rows + r] = static_cast<int32_t>(w[m * rows + r]) - wzp[m];
    }
  }
  std::vector<int16_t> col(static_cast<size_t>(rows * out_size));
  std::vector<int64_t> kc(nsp), oc(nsp);
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t gi = 0; gi < g.group; ++gi) {
      // im2col of the group's channels: col[c * k_size + k][p] = x - xzp or 0.
      for (int64_t c = 0; c < Cg; ++c) {
        const TX* xc = x + (n * g.C + gi * Cg + c) * in_size;
        std::fill(kc.begin(), kc.end(), 0);
        for (int64_t k = 0; k < k_size; ++k) {
          int16_t* dst = col.data() + (c * k_size + k) * out_size;
          std::fill(oc.begin(), oc.end(), 0);
          for (int64_t p = 0; p < out_size; ++p) {
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d < nsp; ++d) {
              const int64_t ic = coord[d][kc[d] * g.out[d] + oc[d]];
              if (ic < 0) {
                inside = false;
                break;
              }
              off += ic * in_strides[d];
            }
            dst[p] = inside ? static_cast<int16_t>(static_cast<int32_t>(xc[off]) - xzp) : 0;
            for (size_t d = nsp; d-- > 0;) {
              if (++oc[d] < g.out[d]) break;
              oc[d] = 0;
            }
          }
          for (size_t d = nsp; d-- > 0;) {
            if (++kc[d] < g.kernel[d]) break;
            kc[d] = 0;
          }
        }
      }
      // y[m, p] = sum_r wc[m, r] * col[r, p]
      ctx.ParallelFor(0, Mg, 1, [&](int64_t lo, int64_t hi) {
        std::vector<uint32_t> acc(static_cast<size_t>(out_size));
        for (int64_t mi = lo; mi < hi; ++mi) {
          const int64_t m = gi * Mg + mi;
          std::fill(acc.begin(), acc.end(), 0u);
          const int32_t* wrow = wc.data() + m * rows;
          for (int64_t r = 0; r < rows; ++r) {
            if (wrow[r] == 0) continue;
            const uint32_t wv = static_cast<uint32_t>(wrow[r]);
            const int16_t* crow = col.data() + r * out_size;
            for (int64_t p = 0; p < out_size; ++p) {
              acc[p] += wv * static_cast<uint32_t>(static_cast<int32_t>(crow[p]));
            }
          }
          int32_t* yrow = y + (n * g.M + m) * out_size;
          for (int64_t p = 0; p < out_size; ++p) yrow[p] = static_cast<int32_t>(acc[p]);
        }
      });
    }
  }
}

// Runs the integer convolution of the node's x (x_in) and w (w_in) with their
// zero points; returns the geometry and the int32 result.
struct IntConvResult {
  ConvGeometry geometry;
  Shape out_shape;
  std::vector<int32_t> acc;
};

absl::StatusOr<IntConvResult> RunIntConv(const KernelContext& ctx, size_t x_in, size_t xzp_in,
                                         size_t w_in, size_t wzp_in) {
  const Tensor& x = ctx.Input(x_in);
  const Tensor& w = ctx.Input(w_in);
  if (!(Bit(w.dtype()) & kInt8Types)) return ctx.Error("w must be int8 or uint8, got ", DTypeName(w.dtype()));
  auto g = ResolveConv(ctx, x.shape(), w.shape());
  if (!g.ok()) return g.status();
  Shape xzp_shape, wzp_shape;
  auto xzp = ReadZeroPoint(ctx, xzp_in, x.dtype(), &xzp_shape, "x_zero_point");
  if (!xzp.ok()) return xzp.status();
  if (xzp->size() != 1) return ctx.Error("x_zero_point must be a scalar (per-tensor)");
  auto wzp = ReadZeroPoint(ctx, wzp_in, w.dtype(), &wzp_shape, "w_zero_point");
  if (!wzp.ok()) return wzp.status();
  if (wzp->size() == 1) {
    wzp->assign(static_cast<size_t>(g->M), (*wzp)[0]);
  } else if (wzp_shape.size() != 1 || wzp_shape[0] != g->M) {
    return ctx.Error("w_zero_point must be a scalar or 1-D of length ", g->M, " (output channels), got shape ",
                     ShapeToString(wzp_shape));
  }
  IntConvResult r;
  r.geometry = *g;
  r.out_shape = {g->N, g->M};
  r.out_shape.insert(r.out_shape.end(), g->out.begin(), g->out.end());
  r.acc.resize(static_cast<size_t>(NumElements(r.out_shape)));
  if (r.acc.empty()) return r;
  absl::Status st = VisitInteger(x.dtype(), [&](auto xtag) -> absl::Status {
    using TX = typename decltype(xtag)::type;
    return VisitInteger(w.dtype(), [&](auto wtag) -> absl::Status {
      using TW = typename decltype(wtag)::type;
      if constexpr (sizeof(TX) == 1 && sizeof(TW) == 1) {
        IntConv<TX, TW>(ctx, *g, x.data<TX>(), (*xzp)[0], w.data<TW>(), wzp->data(), r.acc.data());
        return absl::OkStatus();
      } else {
        return ctx.Error("x and w must be int8 or uint8");
      }
    });
  });
  if (!st.ok()) return st;
  return r;
}

absl::Status ComputeConvInteger(KernelContext& ctx) {
  auto r = RunIntConv(ctx, 0, 2, 1, 3);
  if (!r.ok()) return r.status();
  Tensor* y = ctx.Output(0, DType::kInt32, r->out_shape);
  if (!r->acc.empty()) std::memcpy(y->mutable_data<int32_t>(), r->acc.data(), r->acc.size() * 4);
  return absl::OkStatus();
}

absl::Status ComputeQLinearConv(KernelContext& ctx) {
  for (size_t i = 0; i < 8; ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is required");
  }
  const Tensor& yzp_t = ctx.Input(7);
  if (!(Bit(yzp_t.dtype()) & kInt8Types)) {
    return ctx.Error("y_zero_point must be int8 or uint8, got ", DTypeName(yzp_t.dtype()));
  }
  auto r = RunIntConv(ctx, 0, 2, 3, 5);
  if (!r.ok()) return r.status();
  const int64_t M = r->geometry.M;
  Shape xs_shape, ws_shape, ys_shape;
  auto x_scale = ReadScale(ctx, 1, &xs_shape, "x_scale");
  if (!x_scale.ok()) return x_scale.status();
  auto w_scale = ReadScale(ctx, 4, &ws_shape, "w_scale");
  if (!w_scale.ok()) return w_scale.status();
  auto y_scale = ReadScale(ctx, 6, &ys_shape, "y_scale");
  if (!y_scale.ok()) return y_scale.status();
  if (x_scale->size() != 1 || y_scale->size() != 1 || yzp_t.size() != 1) {
    return ctx.Error("x_scale, y_scale and y_zero_point must be scalars");
  }
  if (w_scale->size() != 1 && (ws_shape.size() != 1 || ws_shape[0] != M)) {
    return ctx.Error("w_scale must be a scalar or 1-D of length ", M, ", got shape ",
                     ShapeToString(ws_shape));
  }
  std::vector<int32_t> bias(static_cast<size_t>(M), 0);
  if (ctx.HasInput(8)) {
    const Tensor& b = ctx.Input(8);
    if (b.dtype() != DType::kInt32 || b.rank() != 1 || b.dim(0) != M) {
      return ctx.Error("B must be int32 of shape [", M, "], got ", DTypeName(b.dtype()),
                       ShapeToString(b.shape()));
    }
    std::memcpy(bias.data(), b.data<int32_t>(), static_cast<size_t>(M) * 4);
  }
  std::vector<float> mult(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) {
    mult[m] = (*x_scale)[0] * (*w_scale)[w_scale->size() == 1 ? 0 : m] / (*y_scale)[0];
  }
  auto yzp = ReadInt32s(yzp_t);
  if (!yzp.ok()) return ctx.Error(yzp.status().message());
  const float yz = static_cast<float>((*yzp)[0]);
  Tensor* y = ctx.Output(0, yzp_t.dtype(), r->out_shape);
  const int64_t spatial = NumElements(r->geometry.out);
  return VisitInteger(yzp_t.dtype(), [&](auto qtag) -> absl::Status {
    using Q = typename decltype(qtag)::type;
    Q* py = y->mutable_data<Q>();
    const int32_t* acc = r->acc.data();
    for (int64_t n = 0; n < r->geometry.N; ++n) {
      for (int64_t m = 0; m < M; ++m) {
        const int64_t base = (n * M + m) * spatial;
        for (int64_t p = 0; p < spatial; ++p) {
          // The bias adds in the int32 accumulator (wrapping like it).
          const int32_t v = static_cast<int32_t>(static_cast<uint32_t>(acc[base + p]) +
                                                 static_cast<uint32_t>(bias[m]));
          py[base + p] = QuantizeValue<Q>(static_cast<float>(v) * mult[m], yz);
        }
      }
    }
    return absl::OkStatus();
  });
}

// Output 0 is int32; shape unknown statically here.
absl::Status InferInt32Output(const InferContext&, std::vector<TypeInfo>& outputs) {
  outputs[0] = TypeInfo::Tensor(DType::kInt32);
  return absl::OkStatus();
}

// Output 0 has the type of input 7 (y_zero_point).
absl::Status InferLikeOutputZeroPoint(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.size() > 7 && ctx.input_types[7].kind == TypeInfo::Kind::kTensor) {
    outputs[0] = TypeInfo::Tensor(ctx.input_types[7].dtype);
  }
  return absl::OkStatus();
}

constexpr DTypeSet kQuantizeInputs = Bit(DType::kFloat32) | Bit(DType::kInt32);
constexpr DTypeSet kQuantizeInputs19 = kQuantizeInputs | Bit(DType::kFloat16) | Bit(DType::kBFloat16);
constexpr DTypeSet kDequantizeInputs = kInt8Types | Bit(DType::kInt32);
constexpr DTypeSet kDequantizeInputs19 = kDequantizeInputs | kFloat8Types;
constexpr DTypeSet kDequantizeInputs21 =
    kDequantizeInputs19 | Bit(DType::kInt16) | Bit(DType::kUInt16) | kInt4Types;

const OpTableRegistration kQuantizationOps({
    // 10: per-tensor; 13: per-axis; 19: float16/bfloat16 scales, float8;
    // 21: int16/uint16, int4/uint4, blocked, output_dtype.
    {.name = "QuantizeLinear", .since = 10, .until = 18, .types = kQuantizeInputs,
     .infer = InferQuantizeLinear, .compute = ComputeQuantizeLinear},
    {.name = "QuantizeLinear", .since = 19, .types = kQuantizeInputs19,
     .infer = InferQuantizeLinear, .compute = ComputeQuantizeLinear},
    {.name = "DequantizeLinear", .since = 10, .until = 18, .types = kDequantizeInputs,
     .infer = InferDequantizeLinear, .compute = ComputeDequantizeLinear},
    {.name = "DequantizeLinear", .since = 19, .until = 20, .types = kDequantizeInputs19,
     .infer = InferDequantizeLinear, .compute = ComputeDequantizeLinear},
    {.name = "DequantizeLinear", .since = 21, .types = kDequantizeInputs21,
     .infer = InferDequantizeLinear, .compute = ComputeDequantizeLinear},
    {.name = "DynamicQuantizeLinear", .since = 11, .types = Bit(DType::kFloat32),
     .infer = InferDynamicQuantizeLinear, .compute = ComputeDynamicQuantizeLinear},
    // 21 adds float16/bfloat16 scales (and float8 operands, not supported).
    {.name = "QLinearMatMul", .since = 10, .types = kInt8Types, .infer = InferLikeOutputZeroPoint,
     .compute = ComputeQLinearMatMul},
    {.name = "MatMulInteger", .since = 10, .types = kInt8Types, .infer = InferInt32Output,
     .compute = ComputeMatMulInteger},
    {.name = "QLinearConv", .since = 10, .types = kInt8Types, .infer = InferLikeOutputZeroPoint,
     .compute = ComputeQLinearConv},
    {.name = "ConvInteger", .since = 10, .types = kInt8Types, .infer = InferInt32Output,
     .compute = ComputeConvInteger},
});

}  // namespace
}  // namespace hepml::ops
