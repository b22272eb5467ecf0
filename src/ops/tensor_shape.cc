// Shape and data-movement operators: Identity, Constant, ConstantOfShape,
// Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat,
// Split, Slice, Expand, Tile, Pad, Range, EyeLike, Trilu, DepthToSpace,
// SpaceToDepth, ReverseSequence, CenterCropPad.
//
// These operators move elements without looking at them, so most kernels
// dispatch on the element's storage (1, 2, 4, 8 or 16 bytes, or std::string)
// rather than on its type. Reshape-like operators return views of their
// input; the others go through one gather kernel (GatherByIndexMap) that
// reads every output element from a per-dimension table of input offsets.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// ---------------------------------------------------------------------------
// Storage-level helpers.

struct Bytes16 {
  uint64_t lo, hi;
};

// Calls f(TypeTag<E>) with E a type of the same size as d's elements
// (std::string for strings).
template <typename F>
absl::Status VisitStorage(DType d, F&& f) {
  if (d == DType::kString) return f(TypeTag<std::string>{});
  switch (DTypeSize(d)) {
    case 1: return f(TypeTag<uint8_t>{});
    case 2: return f(TypeTag<uint16_t>{});
    case 4: return f(TypeTag<uint32_t>{});
    case 8: return f(TypeTag<uint64_t>{});
    case 16: return f(TypeTag<Bytes16>{});
    default: return UnsupportedDType(d, "data movement");
  }
}

// Element i of t as storage type E.
template <typename E>
E LoadElement(const Tensor& t, int64_t i) {
  if constexpr (std::is_same_v<E, std::string>) {
    return t.data<std::string>()[i];
  } else {
    E e;
    std::memcpy(&e, static_cast<const char*>(t.raw_data()) + i * sizeof(E), sizeof(E));
    return e;
  }
}

// Copies n elements of src from src_off to dst at dst_off (same dtype).
void CopyElements(const Tensor& src, int64_t src_off, Tensor* dst, int64_t dst_off, int64_t n) {
  if (n <= 0) return;
  if (src.dtype() == DType::kString) {
    std::copy_n(src.data<std::string>() + src_off, n, dst->mutable_data<std::string>() + dst_off);
  } else {
    const size_t elem = DTypeSize(src.dtype());
    std::memcpy(static_cast<char*>(dst->raw_mutable_data()) + dst_off * elem,
                static_cast<const char*>(src.raw_data()) + src_off * elem, n * elem);
  }
}

// A gather described per output dimension: output element at coordinate c
// reads input element sum_d offsets[d][c[d]], or takes the fill value when
// any offsets[d][c[d]] is kFill. Describes transposes, slices, broadcasts,
// tiles and pads alike.
constexpr int64_t kFill = -1;
struct IndexMap {
  Shape out_shape;
  std::vector<std::vector<int64_t>> offsets;  // offsets[d].size() == out_shape[d]
};

template <typename E>
void GatherTyped(const KernelContext& ctx, const E* in, E* out, const IndexMap& m, const E& fill) {
  const size_t rank = m.out_shape.size();
  if (rank == 0) {
    out[0] = in[0];
    return;
  }
  const int64_t total = NumElements(m.out_shape);
  if (total == 0) return;
  const int64_t inner = m.out_shape[rank - 1];
  const int64_t rows = total / inner;
  const std::vector<int64_t>& last = m.offsets[rank - 1];
  bool contiguous = last[0] != kFill;
  for (int64_t c = 1; c < inner && contiguous; ++c) contiguous = last[c] == last[0] + c;
  // Every element of a row is the same input element (Expand or a
  // broadcast along the last dim, e.g. a point's features repeated for each
  // of its k neighbours).
  bool repeated = inner > 1 && last[0] != kFill;
  for (int64_t c = 1; c < inner && repeated; ++c) repeated = last[c] == last[0];

  ctx.ParallelFor(0, rows, std::max<int64_t>(1, (1 << 14) / inner), [&](int64_t lo, int64_t hi) {
    Shape coord(rank, 0);
    for (int64_t r = lo, d = static_cast<int64_t>(rank) - 2; d >= 0; --d) {
      coord[d] = r % m.out_shape[d];
      r /= m.out_shape[d];
    }
    for (int64_t r = lo; r < hi; ++r) {
      int64_t base = 0;
      bool fill_row = false;
      for (size_t d = 0; d + 1 < rank; ++d) {
        const int64_t o = m.offsets[d][coord[d]];
        if (o == kFill) fill_row = true;
        base += o;
      }
      E* dst = out + r * inner;
      if (fill_row) {
        std::fill_n(dst, inner, fill);
      } else if (contiguous) {
        std::copy_n(in + base + last[0], inner, dst);
      } else if (repeated) {
        std::fill_n(dst, inner, in[base + last[0]]);
      } else {
        for (int64_t c = 0; c < inner; ++c) dst[c] = last[c] == kFill ? fill : in[base + last[c]];
      }
      for (size_t d = rank - 1; d-- > 0;) {
        if (++coord[d] < m.out_shape[d]) break;
        coord[d] = 0;
      }
    }
  });
}

// Allocates output 0 of `out_shape` (which may differ from m.out_shape when
// the gather is a reshape of it) and gathers into it. `fill` is a
// one-element tensor of in's dtype, or undefined for zeros.
absl::Status GatherByIndexMap(KernelContext& ctx, const Tensor& in, const IndexMap& m, Shape out_shape,
                              const Tensor& fill = Tensor()) {
  Tensor* out = ctx.Output(0, in.dtype(), std::move(out_shape));
  if (out->size() == 0) return absl::OkStatus();
  return VisitStorage(in.dtype(), [&](auto tag) -> absl::Status {
    using E = typename decltype(tag)::type;
    E fill_value{};
    if (fill.defined()) fill_value = LoadElement<E>(fill, 0);
    GatherTyped<E>(ctx, in.data<E>(), out->mutable_data<E>(), m, fill_value);
    return absl::OkStatus();
  });
}

// offsets[d][c] = c * stride for every dimension of `shape` (identity layout).
std::vector<int64_t> Iota(int64_t n, int64_t start, int64_t step, int64_t stride) {
  std::vector<int64_t> v(n);
  for (int64_t c = 0; c < n; ++c) v[c] = (start + c * step) * stride;
  return v;
}

// Number of elements of an output shape computed from input values; an
// error on negative dimensions or int64 overflow.
absl::StatusOr<int64_t> CheckedSize(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("negative output dimension ", d));
    if (__builtin_mul_overflow(n, d, &n)) {
      return absl::InvalidArgumentError(absl::StrCat("output shape ", ShapeToString(shape), " is too large"));
    }
  }
  return n;
}

// Reads an integer input as int64 values, naming it in errors.
absl::StatusOr<std::vector<int64_t>> ReadInts(const KernelContext& ctx, size_t i, const char* what) {
  const Tensor& t = ctx.Input(i);
  if (t.rank() > 1) {
    return ctx.Error(what, " must be a 1-D tensor, got shape ", ShapeToString(t.shape()));
  }
  auto v = ReadInt64s(t);
  if (!v.ok()) return ctx.Error(what, ": ", v.status().message());
  return v;
}

absl::StatusOr<int64_t> ReadScalar(const KernelContext& ctx, size_t i, const char* what) {
  auto v = ReadScalarInt(ctx.Input(i));
  if (!v.ok()) return ctx.Error(what, ": ", v.status().message());
  return v;
}

// ---------------------------------------------------------------------------
// Identity, Constant, ConstantOfShape, Shape, Size.

template <typename T>
Tensor ScalarTensor(const T& v) {
  Tensor t = Tensor::Empty(DTypeOf<T>::value, Shape());
  t.mutable_data<T>()[0] = v;
  return t;
}

absl::Status ComputeIdentity(KernelContext& ctx) {
  // Tensors, sequences and optionals alike: the same value, shared.
  ctx.SetOutputValue(0, ctx.InputValue(0));
  return absl::OkStatus();
}

// The value a Constant node holds, from whichever value* attribute it has.
absl::StatusOr<Tensor> ConstantValue(const Node& node) {
  const Attribute* found = nullptr;
  for (const Attribute& a : node.attributes) {
    if (a.name == "value" || a.name == "sparse_value" || a.name.rfind("value_", 0) == 0) {
      if (found != nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("has both attributes '", found->name, "' and '", a.name, "'"));
      }
      found = &a;
    }
  }
  if (found == nullptr) return absl::InvalidArgumentError("has no value attribute");
  const Attribute& a = *found;
  if (a.name == "value" || a.name == "sparse_value") {
    if (!a.t.defined()) return absl::InvalidArgumentError(absl::StrCat("attribute '", a.name, "' is not a tensor"));
    return a.t;
  }
  if (a.name == "value_float" && a.type == Attribute::Type::kFloat) return ScalarTensor<float>(a.f);
  if (a.name == "value_int" && a.type == Attribute::Type::kInt) return ScalarTensor<int64_t>(a.i);
  if (a.name == "value_string" && a.type == Attribute::Type::kString) return ScalarTensor<std::string>(a.s);
  if (a.name == "value_floats" && a.type == Attribute::Type::kFloats) {
    return Tensor::FromVector<float>({static_cast<int64_t>(a.floats.size())}, a.floats);
  }
  if (a.name == "value_ints" && a.type == Attribute::Type::kInts) {
    return Tensor::FromVector<int64_t>({static_cast<int64_t>(a.ints.size())}, a.ints);
  }
  if (a.name == "value_strings" && a.type == Attribute::Type::kStrings) {
    return Tensor::FromVector<std::string>({static_cast<int64_t>(a.strings.size())}, a.strings);
  }
  return absl::InvalidArgumentError(absl::StrCat("attribute '", a.name, "' has unexpected type ",
                                                 AttributeTypeName(a.type)));
}

absl::Status ComputeConstant(KernelContext& ctx) {
  auto t = ConstantValue(ctx.node());
  if (!t.ok()) return ctx.Error(t.status().message());
  ctx.SetOutput(0, *t);  // shares the attribute's buffer; outputs are read-only
  return absl::OkStatus();
}

absl::Status InferConstant(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  auto t = ConstantValue(ctx.node);
  if (!t.ok()) return t.status();
  if (!outputs.empty()) outputs[0] = TypeInfo::Tensor(t->dtype(), ToDims(t->shape()));
  return absl::OkStatus();
}

absl::Status ComputeConstantOfShape(KernelContext& ctx) {
  auto dims = ReadInts(ctx, 0, "shape");
  if (!dims.ok()) return dims.status();
  Shape shape;
  for (int64_t d : *dims) {
    if (d < 0) return ctx.Error("shape has a negative dimension ", d);
    shape.push_back(d);
  }
  if (auto size = CheckedSize(shape); !size.ok()) return ctx.Error(size.status().message());
  const Tensor* value = ctx.node().GetTensor("value");
  Tensor fill = value != nullptr ? *value : Tensor::Zeros(DType::kFloat32, {1});
  if (fill.size() != 1) return ctx.Error("value must hold one element, got ", fill.size());
  Tensor* out = ctx.Output(0, fill.dtype(), shape);
  return VisitStorage(fill.dtype(), [&](auto tag) -> absl::Status {
    using E = typename decltype(tag)::type;
    std::fill_n(out->mutable_data<E>(), out->size(), LoadElement<E>(fill, 0));
    return absl::OkStatus();
  });
}

// [start, end) of Shape: clamped into [0, rank], negative counting from the end.
std::pair<int64_t, int64_t> ShapeRange(const Node& node, int opset, int64_t rank) {
  if (opset < 15) return {0, rank};
  auto clamp = [rank](int64_t v) {
    if (v < 0) v += rank;
    return std::clamp<int64_t>(v, 0, rank);
  };
  const int64_t start = clamp(node.GetInt("start", 0));
  const int64_t end = node.HasAttribute("end") ? clamp(node.GetInt("end", rank)) : rank;
  return {start, std::max(start, end)};
}

absl::Status ComputeShape(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  auto [start, end] = ShapeRange(ctx.node(), ctx.opset(), in.rank());
  Tensor* out = ctx.Output(0, DType::kInt64, {end - start});
  for (int64_t d = start; d < end; ++d) out->mutable_data<int64_t>()[d - start] = in.dim(static_cast<int>(d));
  return absl::OkStatus();
}

absl::Status InferShape(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.empty()) return absl::OkStatus();
  const TypeInfo& in = ctx.input_types[0];
  outputs[0] = TypeInfo::Tensor(DType::kInt64);
  if (in.kind == TypeInfo::Kind::kTensor && in.has_shape) {
    auto [start, end] = ShapeRange(ctx.node, ctx.opset, static_cast<int64_t>(in.shape.size()));
    outputs[0] = TypeInfo::Tensor(DType::kInt64, {Dim{end - start, ""}});
  }
  return absl::OkStatus();
}

absl::Status ComputeSize(KernelContext& ctx) {
  Tensor* out = ctx.Output(0, DType::kInt64, {});
  out->mutable_data<int64_t>()[0] = ctx.Input(0).size();
  return absl::OkStatus();
}

absl::Status InferSize(const InferContext&, std::vector<TypeInfo>& outputs) {
  if (!outputs.empty()) outputs[0] = TypeInfo::Tensor(DType::kInt64, {});
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Views: Reshape, Flatten, Squeeze, Unsqueeze.

// The shape Reshape gives `in_shape` for the requested `target`: 0 copies the
// input dimension (unless allowzero), one -1 is inferred.
absl::StatusOr<Shape> ReshapeTarget(const Shape& in_shape, const std::vector<int64_t>& target, bool allowzero) {
  Shape out;
  int64_t infer_at = -1;
  int64_t known = 1;
  bool has_zero = false;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t d = target[i];
    if (d == -1) {
      if (infer_at >= 0) return absl::InvalidArgumentError("shape has more than one -1");
      infer_at = static_cast<int64_t>(i);
      out.push_back(1);
      continue;
    }
    if (d < -1) return absl::InvalidArgumentError(absl::StrCat("shape has an invalid dimension ", d));
    if (d == 0) {
      has_zero = true;
      if (!allowzero) {
        if (i >= in_shape.size()) {
          return absl::InvalidArgumentError(absl::StrCat("shape copies dimension ", i, " (0) of an input of rank ",
                                                         in_shape.size()));
        }
        d = in_shape[i];
      }
    }
    out.push_back(d);
    if (d != 0 && known > std::numeric_limits<int64_t>::max() / d) {
      return absl::InvalidArgumentError("shape is too large");
    }
    known *= d;
  }
  if (allowzero && has_zero && infer_at >= 0) {
    return absl::InvalidArgumentError("shape has both 0 and -1 while allowzero is set");
  }
  const int64_t size = NumElements(in_shape);
  if (infer_at >= 0) {
    if (known == 0) {
      if (size != 0) return absl::InvalidArgumentError("cannot infer the -1 dimension next to a 0 dimension");
      out[infer_at] = 0;
    } else {
      if (size % known != 0) {
        return absl::InvalidArgumentError(absl::StrCat("cannot reshape ", ShapeToString(in_shape), " to ",
                                                       ShapeToString(out), " with -1 inferred"));
      }
      out[infer_at] = size / known;
    }
  } else if (known != size) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot reshape ", ShapeToString(in_shape), " (", size, " elements) to ", ShapeToString(out)));
  }
  return out;
}

absl::Status ComputeReshape(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  std::vector<int64_t> target;
  if (ctx.opset() < 5) {
    if (!ctx.node().HasAttribute("shape")) return ctx.Error("missing attribute 'shape'");
    target = ctx.node().GetInts("shape");
  } else {
    if (!ctx.HasInput(1)) return ctx.Error("missing input 'shape'");
    auto v = ReadInts(ctx, 1, "shape");
    if (!v.ok()) return v.status();
    target = std::move(*v);
  }
  const bool allowzero = ctx.opset() >= 14 && ctx.node().GetInt("allowzero", 0) != 0;
  auto shape = ReshapeTarget(in.shape(), target, allowzero);
  if (!shape.ok()) return ctx.Error(shape.status().message());
  ctx.SetOutput(0, in.Reshaped(*shape));
  return absl::OkStatus();
}

absl::Status ComputeFlatten(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  const int64_t rank = in.rank();
  int64_t axis = ctx.node().GetInt("axis", 1);
  const int64_t lowest = ctx.opset() >= 11 ? -rank : 0;
  if (axis < lowest || axis > rank) return ctx.Error("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= in.dim(static_cast<int>(d));
  const int64_t inner = outer == 0 ? NumElements(absl::MakeConstSpan(in.shape()).subspan(axis)) : in.size() / outer;
  ctx.SetOutput(0, in.Reshaped({outer, inner}));
  return absl::OkStatus();
}

// Axes of Squeeze/Unsqueeze: attribute before opset 13, input from 13.
absl::StatusOr<std::optional<std::vector<int64_t>>> SqueezeAxes(const KernelContext& ctx) {
  if (ctx.opset() < 13) {
    if (!ctx.node().HasAttribute("axes")) return std::optional<std::vector<int64_t>>();
    return std::optional<std::vector<int64_t>>(ctx.node().GetInts("axes"));
  }
  if (!ctx.HasInput(1)) return std::optional<std::vector<int64_t>>();
  auto v = ReadInts(ctx, 1, "axes");
  if (!v.ok()) return v.status();
  return std::optional<std::vector<int64_t>>(std::move(*v));
}

absl::Status ComputeSqueeze(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  auto axes = SqueezeAxes(ctx);
  if (!axes.ok()) return axes.status();
  std::vector<bool> drop(in.rank(), false);
  if (axes->has_value()) {
    auto norm = NormalizeAxes(**axes, in.rank());
    if (!norm.ok()) return ctx.Error(norm.status().message());
    for (int64_t a : *norm) {
      if (in.dim(static_cast<int>(a)) != 1) {
        return ctx.Error("cannot squeeze axis ", a, " of size ", in.dim(static_cast<int>(a)));
      }
      drop[a] = true;
    }
  } else {
    for (int d = 0; d < in.rank(); ++d) drop[d] = in.dim(d) == 1;
  }
  Shape shape;
  for (int d = 0; d < in.rank(); ++d)
    if (!drop[d]) shape.push_back(in.dim(d));
  ctx.SetOutput(0, in.Reshaped(shape));
  return absl::OkStatus();
}

absl::Status ComputeUnsqueeze(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  auto axes = SqueezeAxes(ctx);
  if (!axes.ok()) return axes.status();
  if (!axes->has_value()) return ctx.Error("missing axes");
  const int64_t out_rank = in.rank() + static_cast<int64_t>((*axes)->size());
  auto norm = NormalizeAxes(**axes, out_rank);
  if (!norm.ok()) return ctx.Error(norm.status().message());
  std::vector<bool> inserted(out_rank, false);
  for (int64_t a : *norm) inserted[a] = true;
  Shape shape;
  int next = 0;
  for (int64_t d = 0; d < out_rank; ++d) shape.push_back(inserted[d] ? 1 : in.dim(next++));
  ctx.SetOutput(0, in.Reshaped(shape));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Transpose, Concat, Split.

// out = the elements of `in` in the order of output dims with sizes `size`
// and input strides `stride` (a permutation's view of in), for trivially
// copyable E: dims that stay adjacent in the input are merged; when the last
// output dim is contiguous in the input, whole runs are copied; otherwise
// the last output dim and the output dim that walks the input contiguously
// are transposed in 16 x 16 tiles (every cache line read is used whole).
template <typename E>
void TransposeStrided(const KernelContext& ctx, const E* in, E* out, Shape size, Shape stride) {
  // Drop size-1 dims, merge dims contiguous in both.
  Shape sz, st;
  for (size_t d = 0; d < size.size(); ++d) {
    if (size[d] == 1) continue;
    if (!sz.empty() && st.back() == stride[d] * size[d]) {
      sz.back() *= size[d];
      st.back() = stride[d];
      continue;
    }
    sz.push_back(size[d]);
    st.push_back(stride[d]);
  }
  const int64_t total = NumElements(sz);
  if (total == 0) return;
  if (sz.empty()) {
    out[0] = in[0];
    return;
  }
  const int rank = static_cast<int>(sz.size());
  const int64_t inner = sz[rank - 1];
  if (st[rank - 1] == 1) {
    // Runs of `inner` contiguous elements.
    const int64_t rows = total / inner;
    ctx.ParallelFor(0, rows, std::max<int64_t>(1, (1 << 14) / inner), [&](int64_t lo, int64_t hi) {
      Shape coord(rank, 0);
      int64_t base = 0;
      for (int64_t r = lo, d = rank - 2; d >= 0; --d) {
        coord[d] = r % sz[d];
        r /= sz[d];
        base += coord[d] * st[d];
      }
      for (int64_t r = lo; r < hi; ++r) {
        std::copy_n(in + base, inner, out + r * inner);
        for (int d = rank - 2; d >= 0; --d) {
          base += st[d];
          if (++coord[d] < sz[d]) break;
          base -= st[d] * sz[d];
          coord[d] = 0;
        }
      }
    });
    return;
  }
  // j: the output dim with input stride 1 (there is one: a merged
  // permutation of a dense tensor).
  int j = -1;
  for (int d = 0; d < rank - 1; ++d)
    if (st[d] == 1) j = d;
  if (j < 0) {
    // Not a dense permutation view: element by element.
    ctx.ParallelFor(0, total, 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        int64_t r = i, off = 0;
        for (int d = rank - 1; d >= 0; --d) {
          off += (r % sz[d]) * st[d];
          r /= sz[d];
        }
        out[i] = in[off];
      }
    });
    return;
  }
  // Output strides, then blocks: every combination of the dims other than
  // j and the last, each a [sz[j], inner] plane transposed in tiles.
  Shape ost(rank, 1);
  for (int d = rank - 2; d >= 0; --d) ost[d] = ost[d + 1] * sz[d + 1];
  const int64_t planes = total / (sz[j] * inner);
  const int64_t last_st = st[rank - 1], oj = ost[j];
  constexpr int64_t kT = 16;
  ctx.ParallelFor(0, planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t pl = lo; pl < hi; ++pl) {
      int64_t r = pl, ibase = 0, obase = 0;
      for (int d = rank - 2; d >= 0; --d) {
        if (d == j) continue;
        const int64_t c = r % sz[d];
        r /= sz[d];
        ibase += c * st[d];
        obase += c * ost[d];
      }
      for (int64_t a0 = 0; a0 < sz[j]; a0 += kT) {
        const int64_t a1 = std::min(sz[j], a0 + kT);
        for (int64_t b0 = 0; b0 < inner; b0 += kT) {
          const int64_t b1 = std::min(inner, b0 + kT);
          for (int64_t a = a0; a < a1; ++a) {
            E* o = out + obase + a * oj;
            const E* src = in + ibase + a;
            for (int64_t b = b0; b < b1; ++b) o[b] = src[b * last_st];
          }
        }
      }
    }
  });
}

absl::Status ComputeTranspose(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  const int rank = in.rank();
  std::vector<int64_t> perm = ctx.node().GetInts("perm");
  if (!ctx.node().HasAttribute("perm")) {
    for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
  }
  if (static_cast<int>(perm.size()) != rank) {
    return ctx.Error("perm has ", perm.size(), " entries for an input of rank ", rank);
  }
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || seen[p]) return ctx.Error("perm is not a permutation of 0..", rank - 1);
    seen[p] = true;
  }
  IndexMap m;
  const Shape strides = Strides(in.shape());
  for (int d = 0; d < rank; ++d) m.out_shape.push_back(in.dim(static_cast<int>(perm[d])));
  // Only size-1 dimensions move: the layout is unchanged.
  int64_t last = -1;
  bool keeps_order = true;
  for (int d = 0; d < rank; ++d) {
    if (in.dim(static_cast<int>(perm[d])) == 1) continue;
    keeps_order = keeps_order && perm[d] > last;
    last = perm[d];
  }
  if (keeps_order) {
    ctx.SetOutput(0, in.Reshaped(m.out_shape));
    return absl::OkStatus();
  }
  const size_t width = DTypeSize(in.dtype());
  if (in.dtype() != DType::kString && (width == 1 || width == 2 || width == 4 || width == 8)) {
    Shape stride(rank);
    for (int d = 0; d < rank; ++d) stride[d] = strides[perm[d]];
    Tensor* out = ctx.Output(0, in.dtype(), m.out_shape);
    auto run = [&](auto* p) {
      using E = std::remove_const_t<std::remove_pointer_t<decltype(p)>>;
      TransposeStrided<E>(ctx, static_cast<const E*>(in.raw_data()), static_cast<E*>(out->raw_mutable_data()),
                          m.out_shape, stride);
    };
    if (width == 1) run(static_cast<const uint8_t*>(nullptr));
    else if (width == 2) run(static_cast<const uint16_t*>(nullptr));
    else if (width == 4) run(static_cast<const uint32_t*>(nullptr));
    else run(static_cast<const uint64_t*>(nullptr));
    return absl::OkStatus();
  }
  // Other element types (strings, 16-byte complex) through offset tables.
  for (int d = 0; d < rank; ++d) m.offsets.push_back(Iota(m.out_shape[d], 0, 1, strides[perm[d]]));
  return GatherByIndexMap(ctx, in, m, m.out_shape);
}

absl::Status InferTranspose(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.empty()) return absl::OkStatus();
  const TypeInfo& in = ctx.input_types[0];
  outputs[0] = TypeInfo::Tensor(in.dtype);
  if (in.kind != TypeInfo::Kind::kTensor || !in.has_shape) return absl::OkStatus();
  const int64_t rank = static_cast<int64_t>(in.shape.size());
  std::vector<int64_t> perm = ctx.node.GetInts("perm");
  if (!ctx.node.HasAttribute("perm")) {
    for (int64_t d = rank - 1; d >= 0; --d) perm.push_back(d);
  }
  if (static_cast<int64_t>(perm.size()) != rank) return absl::InvalidArgumentError("perm does not match the rank");
  std::vector<Dim> dims;
  for (int64_t p : perm) {
    if (p < 0 || p >= rank) return absl::InvalidArgumentError("perm is out of range");
    dims.push_back(in.shape[p]);
  }
  outputs[0] = TypeInfo::Tensor(in.dtype, std::move(dims));
  return absl::OkStatus();
}

absl::Status ComputeConcat(KernelContext& ctx) {
  if (ctx.num_inputs() == 0 || !ctx.HasInput(0)) return ctx.Error("needs at least one input");
  const Tensor& first = ctx.Input(0);
  const int rank = first.rank();
  if (rank == 0) return ctx.Error("cannot concatenate scalars");
  if (ctx.opset() >= 4 && !ctx.node().HasAttribute("axis")) return ctx.Error("missing attribute 'axis'");
  auto axis_or = NormalizeAxis(ctx.node().GetInt("axis", 1), rank);
  if (!axis_or.ok()) return ctx.Error(axis_or.status().message());
  const int axis = static_cast<int>(*axis_or);

  std::vector<const Tensor*> inputs;
  Shape out_shape = first.shape();
  out_shape[axis] = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is missing");
    const Tensor& t = ctx.Input(i);
    if (t.dtype() != first.dtype()) {
      return ctx.Error("input ", i, " has type ", DTypeName(t.dtype()), ", input 0 has ", DTypeName(first.dtype()));
    }
    if (t.rank() != rank) return ctx.Error("input ", i, " has rank ", t.rank(), ", input 0 has rank ", rank);
    for (int d = 0; d < rank; ++d) {
      if (d != axis && t.dim(d) != first.dim(d)) {
        return ctx.Error("input ", i, " has shape ", ShapeToString(t.shape()), ", incompatible with ",
                         ShapeToString(first.shape()), " outside axis ", axis);
      }
    }
    out_shape[axis] += t.dim(axis);
    inputs.push_back(&t);
  }
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= out_shape[d];
  for (int d = axis + 1; d < rank; ++d) inner *= out_shape[d];
  Tensor* out = ctx.Output(0, first.dtype(), out_shape);
  if (out->size() == 0) return absl::OkStatus();
  const int64_t out_block = out_shape[axis] * inner;
  ctx.ParallelFor(0, outer, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(out_block, 1)),
                  [&](int64_t lo, int64_t hi) {
                    for (int64_t o = lo; o < hi; ++o) {
                      int64_t dst = o * out_block;
                      for (const Tensor* t : inputs) {
                        const int64_t block = t->dim(axis) * inner;
                        CopyElements(*t, o * block, out, dst, block);
                        dst += block;
                      }
                    }
                  });
  return absl::OkStatus();
}

absl::Status ComputeSplit(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  const Node& node = ctx.node();
  const int rank = in.rank();
  if (rank == 0) return ctx.Error("cannot split a scalar");
  auto axis_or = NormalizeAxis(node.GetInt("axis", 0), rank);
  if (!axis_or.ok()) return ctx.Error(axis_or.status().message());
  const int axis = static_cast<int>(*axis_or);
  const int64_t dim = in.dim(axis);
  const int64_t n_out = static_cast<int64_t>(ctx.num_outputs());

  std::vector<int64_t> split;
  bool have_split = false;
  if (ctx.opset() >= 13 || (ctx.opset() < 2 && ctx.HasInput(1))) {
    if (ctx.HasInput(1)) {
      auto v = ReadInts(ctx, 1, "split");
      if (!v.ok()) return v.status();
      split = std::move(*v);
      have_split = true;
    }
  } else if (node.HasAttribute("split")) {
    split = node.GetInts("split");
    have_split = true;
  }
  if (have_split) {
    if (ctx.opset() >= 18 && node.HasAttribute("num_outputs")) {
      return ctx.Error("split and num_outputs are both given");
    }
    if (static_cast<int64_t>(split.size()) != n_out) {
      return ctx.Error("split has ", split.size(), " entries for ", n_out, " outputs");
    }
    int64_t sum = 0;
    for (int64_t s : split) {
      if (s < 0) return ctx.Error("split has a negative entry ", s);
      sum += s;
    }
    if (sum != dim) return ctx.Error("split entries sum to ", sum, ", axis ", axis, " has size ", dim);
  } else {
    int64_t parts = n_out;
    if (ctx.opset() >= 18 && node.HasAttribute("num_outputs")) {
      parts = node.GetInt("num_outputs", 0);
      if (parts < 1) return ctx.Error("num_outputs must be positive, got ", parts);
      if (parts != n_out) return ctx.Error("num_outputs is ", parts, " but the node has ", n_out, " outputs");
    }
    if (parts < 1) return ctx.Error("has no outputs");
    // Equal parts; when the axis does not divide evenly, ceil-sized chunks
    // and a smaller last one (opset 18's rule).
    const int64_t chunk = (dim + parts - 1) / parts;
    for (int64_t i = 0, left = dim; i < parts; ++i) {
      split.push_back(std::min(chunk, left));
      left -= split.back();
    }
  }

  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= in.dim(d);
  for (int d = axis + 1; d < rank; ++d) inner *= in.dim(d);
  int64_t start = 0;
  for (int64_t i = 0; i < n_out; ++i) {
    Shape shape = in.shape();
    shape[axis] = split[i];
    if (ctx.HasOutput(i)) {
      Tensor* out = ctx.Output(i, in.dtype(), shape);
      const int64_t block = split[i] * inner;
      for (int64_t o = 0; o < outer; ++o) CopyElements(in, (o * dim + start) * inner, out, o * block, block);
    }
    start += split[i];
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Slice, Expand, Tile.

absl::Status ComputeSlice(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  const int rank = in.rank();
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset() < 10) {
    starts = ctx.node().GetInts("starts");
    ends = ctx.node().GetInts("ends");
    axes = ctx.node().GetInts("axes");
  } else {
    if (!ctx.HasInput(1) || !ctx.HasInput(2)) return ctx.Error("needs inputs starts and ends");
    auto s = ReadInts(ctx, 1, "starts");
    if (!s.ok()) return s.status();
    auto e = ReadInts(ctx, 2, "ends");
    if (!e.ok()) return e.status();
    starts = std::move(*s);
    ends = std::move(*e);
    if (ctx.HasInput(3)) {
      auto a = ReadInts(ctx, 3, "axes");
      if (!a.ok()) return a.status();
      axes = std::move(*a);
    }
    if (ctx.HasInput(4)) {
      auto st = ReadInts(ctx, 4, "steps");
      if (!st.ok()) return st.status();
      steps = std::move(*st);
    }
  }
  const size_t n = starts.size();
  if (ends.size() != n) return ctx.Error("starts has ", n, " entries, ends has ", ends.size());
  if (axes.empty() && (ctx.opset() >= 10 ? !ctx.HasInput(3) : !ctx.node().HasAttribute("axes"))) {
    for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (axes.size() != n) return ctx.Error("axes has ", axes.size(), " entries, starts has ", n);
  if (steps.empty() && !(ctx.opset() >= 10 && ctx.HasInput(4))) steps.assign(n, 1);
  if (steps.size() != n) return ctx.Error("steps has ", steps.size(), " entries, starts has ", n);
  auto norm = NormalizeAxes(axes, rank);
  if (!norm.ok()) return ctx.Error(norm.status().message());

  Shape start(rank, 0), step(rank, 1), out_shape = in.shape();
  for (size_t i = 0; i < n; ++i) {
    const int a = static_cast<int>((*norm)[i]);
    const int64_t dim = in.dim(a);
    int64_t s = starts[i], e = ends[i], k = steps[i];
    if (k == 0) return ctx.Error("steps must not be 0 (axis ", a, ")");
    k = std::max(k, -std::numeric_limits<int64_t>::max());  // so that -k exists
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    int64_t count = 0;
    if (k > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      if (e > s) count = (e - s - 1) / k + 1;
    } else if (dim > 0) {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      if (s > e) count = (s - e - 1) / -k + 1;
    }
    start[a] = count > 0 ? s : 0;
    step[a] = k;
    out_shape[a] = count;
  }
  IndexMap m;
  m.out_shape = out_shape;
  const Shape strides = Strides(in.shape());
  for (int d = 0; d < rank; ++d) m.offsets.push_back(Iota(out_shape[d], start[d], step[d], strides[d]));
  return GatherByIndexMap(ctx, in, m, out_shape);
}

absl::Status ComputeExpand(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  auto dims = ReadInts(ctx, 1, "shape");
  if (!dims.ok()) return dims.status();
  Shape target;
  for (int64_t d : *dims) {
    if (d < 0) return ctx.Error("shape has a negative dimension ", d);
    target.push_back(d);
  }
  auto shape = BroadcastShapes(in.shape(), target);
  if (!shape.ok()) return ctx.Error(shape.status().message());
  if (*shape == in.shape()) {
    ctx.SetOutput(0, in);
    return absl::OkStatus();
  }
  auto size = CheckedSize(*shape);
  if (!size.ok()) return ctx.Error(size.status().message());
  if (*size == 0) {
    ctx.Output(0, in.dtype(), *shape);
    return absl::OkStatus();
  }
  IndexMap m;
  m.out_shape = *shape;
  const Shape strides = BroadcastStrides(in.shape(), *shape);
  for (size_t d = 0; d < shape->size(); ++d) m.offsets.push_back(Iota((*shape)[d], 0, 1, strides[d]));
  return GatherByIndexMap(ctx, in, m, *shape);
}

absl::Status ComputeTile(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  const int rank = in.rank();
  std::vector<int64_t> repeats;
  if (ctx.opset() < 6) {
    // Tile-1: input 1 is the number of tiles along the axis given by input 2.
    auto tiles = ReadScalar(ctx, 1, "tiles");
    if (!tiles.ok()) return tiles.status();
    auto axis = ReadScalar(ctx, 2, "axis");
    if (!axis.ok()) return axis.status();
    auto a = NormalizeAxis(*axis, rank);
    if (!a.ok() || rank == 0) return ctx.Error("axis ", *axis, " is out of range for rank ", rank);
    repeats.assign(rank, 1);
    repeats[*a] = *tiles;
  } else {
    auto r = ReadInts(ctx, 1, "repeats");
    if (!r.ok()) return r.status();
    repeats = std::move(*r);
  }
  if (static_cast<int>(repeats.size()) != rank) {
    return ctx.Error("repeats has ", repeats.size(), " entries for an input of rank ", rank);
  }
  IndexMap m;
  for (int d = 0; d < rank; ++d) {
    if (repeats[d] < 0) return ctx.Error("repeats has a negative entry ", repeats[d]);
    int64_t out_dim = 0;
    if (__builtin_mul_overflow(in.dim(d), repeats[d], &out_dim)) return ctx.Error("repeats are too large");
    m.out_shape.push_back(out_dim);
  }
  auto size = CheckedSize(m.out_shape);
  if (!size.ok()) return ctx.Error(size.status().message());
  if (*size == 0) {
    ctx.Output(0, in.dtype(), m.out_shape);
    return absl::OkStatus();
  }
  const Shape strides = Strides(in.shape());
  for (int d = 0; d < rank; ++d) {
    const int64_t dim = in.dim(d);
    std::vector<int64_t> off(m.out_shape[d]);
    for (int64_t c = 0; c < m.out_shape[d]; ++c) off[c] = (c % dim) * strides[d];
    m.offsets.push_back(std::move(off));
  }
  return GatherByIndexMap(ctx, in, m, m.out_shape);
}

// ---------------------------------------------------------------------------
// Pad, CenterCropPad.

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

// One dimension of size `dim` padded by (begin, end): negative pads crop
// first, then the positive ones pad the cropped data.
struct PadDim {
  int64_t lo = 0;    // first input index kept
  int64_t kept = 0;  // input elements kept
  int64_t pb = 0;    // elements added before
  int64_t out = 0;   // output size
};

absl::StatusOr<PadDim> MakePadDim(int64_t dim, int64_t begin, int64_t end, PadMode mode) {
  PadDim p;
  // Crops beyond the dimension are errors, so the negations below cannot overflow.
  if (begin < -dim || end < -dim || (begin < 0 && end < 0 && -begin > dim + end)) {
    return absl::InvalidArgumentError(absl::StrCat("pads (", begin, ", ", end, ") crop more than the size ", dim));
  }
  p.lo = std::max<int64_t>(0, -begin);
  p.kept = dim - p.lo - std::max<int64_t>(0, -end);
  p.pb = std::max<int64_t>(0, begin);
  if (__builtin_add_overflow(p.kept, p.pb, &p.out) ||
      __builtin_add_overflow(p.out, std::max<int64_t>(0, end), &p.out)) {
    return absl::InvalidArgumentError("pads are too large");
  }
  if (p.kept == 0 && p.out > 0 && mode != PadMode::kConstant) {
    return absl::InvalidArgumentError("cannot pad an empty dimension in reflect, edge or wrap mode");
  }
  return p;
}

// Input offsets of the output coordinates of a padded dimension.
std::vector<int64_t> PadOffsets(const PadDim& p, int64_t stride, PadMode mode) {
  std::vector<int64_t> off(p.out);
  const int64_t kept = p.kept;
  for (int64_t c = 0; c < p.out; ++c) {
    int64_t k = c - p.pb;
    if (k < 0 || k >= kept) {
      switch (mode) {
        case PadMode::kConstant:
          off[c] = kFill;
          continue;
        case PadMode::kEdge:
          k = std::clamp<int64_t>(k, 0, kept - 1);
          break;
        case PadMode::kReflect: {
          if (kept == 1) {
            k = 0;
            break;
          }
          const int64_t period = 2 * (kept - 1);
          k %= period;
          if (k < 0) k += period;
          if (k >= kept) k = period - k;
          break;
        }
        case PadMode::kWrap:
          k %= kept;
          if (k < 0) k += kept;
          break;
      }
    }
    off[c] = (p.lo + k) * stride;
  }
  return off;
}

// Pads (or crops) every dimension d of `in` by (begin[d], end[d]).
absl::Status PadTensor(KernelContext& ctx, const Tensor& in, const std::vector<int64_t>& begin,
                       const std::vector<int64_t>& end, PadMode mode, const Tensor& fill) {
  const int rank = in.rank();
  std::vector<PadDim> dims;
  IndexMap m;
  for (int d = 0; d < rank; ++d) {
    auto p = MakePadDim(in.dim(d), begin[d], end[d], mode);
    if (!p.ok()) return ctx.Error("axis ", d, ": ", p.status().message());
    dims.push_back(*p);
    m.out_shape.push_back(p->out);
  }
  auto size = CheckedSize(m.out_shape);
  if (!size.ok()) return ctx.Error(size.status().message());
  if (*size == 0) {
    ctx.Output(0, in.dtype(), m.out_shape);
    return absl::OkStatus();
  }
  const Shape strides = Strides(in.shape());
  for (int d = 0; d < rank; ++d) m.offsets.push_back(PadOffsets(dims[d], strides[d], mode));
  return GatherByIndexMap(ctx, in, m, m.out_shape, fill);
}

absl::Status ComputePad(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  const Node& node = ctx.node();
  const int rank = in.rank();
  const std::string mode_name = node.GetString("mode", "constant");
  PadMode mode;
  if (mode_name == "constant") mode = PadMode::kConstant;
  else if (mode_name == "reflect") mode = PadMode::kReflect;
  else if (mode_name == "edge") mode = PadMode::kEdge;
  else if (mode_name == "wrap" && ctx.opset() >= 19) mode = PadMode::kWrap;
  else return ctx.Error("unsupported mode '", mode_name, "' at opset ", ctx.opset());

  std::vector<int64_t> pads;
  Tensor fill;
  std::vector<int64_t> axes;
  if (ctx.opset() < 11) {
    const char* pads_name = ctx.opset() < 2 ? "paddings" : "pads";
    if (!node.HasAttribute(pads_name)) return ctx.Error("missing attribute '", pads_name, "'");
    pads = node.GetInts(pads_name);
    const double value = node.GetFloat("value", 0.0f);
    if (value != 0) {  // zero is the default fill
      fill = Tensor::Zeros(in.dtype(), {1});
      absl::Status st = VisitNumericOrBool(in.dtype(), [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        fill.mutable_data<T>()[0] = static_cast<T>(static_cast<ComputeT<T>>(value));
        return absl::OkStatus();
      });
      if (!st.ok()) return ctx.Error(st.message());
    }
  } else {
    auto p = ReadInts(ctx, 1, "pads");
    if (!p.ok()) return p.status();
    pads = std::move(*p);
    if (ctx.HasInput(2)) {
      const Tensor& v = ctx.Input(2);
      if (v.dtype() != in.dtype()) {
        return ctx.Error("constant_value has type ", DTypeName(v.dtype()), ", data has ", DTypeName(in.dtype()));
      }
      if (v.size() > 1) return ctx.Error("constant_value must be a scalar, got shape ", ShapeToString(v.shape()));
      if (v.size() == 1) fill = v;  // an empty tensor means the default 0
    }
    if (ctx.opset() >= 18 && ctx.HasInput(3)) {
      auto a = ReadInts(ctx, 3, "axes");
      if (!a.ok()) return a.status();
      auto norm = NormalizeAxes(*a, rank);
      if (!norm.ok()) return ctx.Error(norm.status().message());
      axes = std::move(*norm);
    }
  }
  if (axes.empty() && !(ctx.opset() >= 18 && ctx.HasInput(3))) {
    for (int d = 0; d < rank; ++d) axes.push_back(d);
  }
  if (pads.size() != 2 * axes.size()) {
    return ctx.Error("pads has ", pads.size(), " entries, expected ", 2 * axes.size());
  }
  std::vector<int64_t> begin(rank, 0), end(rank, 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    begin[axes[i]] = pads[i];
    end[axes[i]] = pads[i + axes.size()];
  }
  return PadTensor(ctx, in, begin, end, mode, fill);
}

absl::Status ComputeCenterCropPad(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  const int rank = in.rank();
  auto target = ReadInts(ctx, 1, "shape");
  if (!target.ok()) return target.status();
  std::vector<int64_t> axes = ctx.node().GetInts("axes");
  if (!ctx.node().HasAttribute("axes")) {
    for (int d = 0; d < rank; ++d) axes.push_back(d);
  }
  auto norm = NormalizeAxes(axes, rank);
  if (!norm.ok()) return ctx.Error(norm.status().message());
  if (target->size() != norm->size()) {
    return ctx.Error("shape has ", target->size(), " entries for ", norm->size(), " axes");
  }
  std::vector<int64_t> begin(rank, 0), end(rank, 0);
  for (size_t i = 0; i < norm->size(); ++i) {
    const int64_t a = (*norm)[i], t = (*target)[i], dim = in.dim(static_cast<int>(a));
    if (t < 0) return ctx.Error("shape has a negative entry ", t);
    // Cropping drops the odd element at the end, padding adds it at the end.
    const int64_t diff = t - dim;
    begin[a] = diff < 0 ? -((-diff) / 2) : diff / 2;
    end[a] = diff - begin[a];
  }
  return PadTensor(ctx, in, begin, end, PadMode::kConstant, Tensor());
}

// ---------------------------------------------------------------------------
// Range, EyeLike, Trilu.

absl::Status ComputeRange(KernelContext& ctx) {
  const Tensor& start_t = ctx.Input(0);
  const DType dtype = start_t.dtype();
  for (size_t i = 0; i < 3; ++i) {
    const Tensor& t = ctx.Input(i);
    if (t.dtype() != dtype) return ctx.Error("inputs have different types");
    if (t.size() != 1) return ctx.Error("input ", i, " must be a scalar, got shape ", ShapeToString(t.shape()));
  }
  constexpr int64_t kMaxElements = int64_t{1} << 32;
  return VisitNumeric(dtype, [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const C start = static_cast<C>(ctx.Input(0).data<T>()[0]);
    const C limit = static_cast<C>(ctx.Input(1).data<T>()[0]);
    const C delta = static_cast<C>(ctx.Input(2).data<T>()[0]);
    if (delta == C(0)) return ctx.Error("delta must not be 0");
    int64_t n = 0;
    if constexpr (std::is_floating_point_v<C>) {
      const double steps = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) / delta);
      if (std::isnan(steps) || steps > static_cast<double>(kMaxElements)) {
        return ctx.Error("range has too many elements");
      }
      n = steps > 0 ? static_cast<int64_t>(steps) : 0;
    } else {
      const __int128 span = static_cast<__int128>(limit) - static_cast<__int128>(start);
      const __int128 d = static_cast<__int128>(delta);
      __int128 steps = span / d;
      if (steps * d != span && ((span > 0) == (d > 0))) ++steps;  // ceil
      if (steps > kMaxElements) return ctx.Error("range has too many elements");
      n = steps > 0 ? static_cast<int64_t>(steps) : 0;
    }
    Tensor* out = ctx.Output(0, dtype, {n});
    T* po = out->mutable_data<T>();
    for (int64_t i = 0; i < n; ++i) {
      if constexpr (std::is_floating_point_v<C>) {
        po[i] = static_cast<T>(static_cast<C>(start + static_cast<C>(i) * delta));
      } else {
        po[i] = static_cast<T>(static_cast<int64_t>(start) + i * static_cast<int64_t>(delta));
      }
    }
    return absl::OkStatus();
  }, "Range");
}

absl::Status ComputeEyeLike(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  if (in.rank() != 2) return ctx.Error("input must be 2-D, got shape ", ShapeToString(in.shape()));
  DType dtype = in.dtype();
  if (ctx.node().HasAttribute("dtype")) {
    const int64_t d = ctx.node().GetInt("dtype", 0);
    if (!IsKnownDType(static_cast<int32_t>(d))) return ctx.Error("unknown dtype ", d);
    dtype = static_cast<DType>(d);
  }
  const int64_t k = ctx.node().GetInt("k", 0);
  const int64_t rows = in.dim(0), cols = in.dim(1);
  Tensor* out = ctx.Output(0, dtype, in.shape());
  return VisitNumericOrBool(dtype, [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T* po = out->mutable_data<T>();
    const T zero = static_cast<T>(static_cast<ComputeT<T>>(0));
    const T one = static_cast<T>(static_cast<ComputeT<T>>(1));
    std::fill_n(po, out->size(), zero);
    for (int64_t i = 0; i < rows; ++i) {
      if (k > cols || -k > rows) break;
      const int64_t j = i + k;
      if (j >= 0 && j < cols) po[i * cols + j] = one;
    }
    return absl::OkStatus();
  }, "EyeLike");
}

absl::Status ComputeTrilu(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  if (in.rank() < 2) return ctx.Error("input must have rank >= 2, got shape ", ShapeToString(in.shape()));
  int64_t k = 0;
  if (ctx.HasInput(1)) {
    auto v = ReadScalar(ctx, 1, "k");
    if (!v.ok()) return v.status();
    k = *v;
  }
  const bool upper = ctx.node().GetInt("upper", 1) != 0;
  const int64_t rows = in.dim(in.rank() - 2), cols = in.dim(in.rank() - 1);
  Tensor* out = ctx.Output(0, in.dtype(), in.shape());
  if (out->size() == 0) return absl::OkStatus();
  const int64_t mats = in.size() / (rows * cols);
  const int64_t kc = std::clamp<int64_t>(k, -rows - 1, cols + 1);  // same rows kept, no overflow
  return VisitStorage(in.dtype(), [&](auto tag) -> absl::Status {
    using E = typename decltype(tag)::type;
    const E* pi = in.data<E>();
    E* po = out->mutable_data<E>();
    ctx.ParallelFor(0, mats, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) {
        for (int64_t i = 0; i < rows; ++i) {
          const int64_t off = (b * rows + i) * cols;
          // Kept columns: j >= i + k (upper) or j <= i + k (lower).
          const int64_t edge = std::clamp<int64_t>(upper ? i + kc : i + kc + 1, 0, cols);
          if (upper) {
            std::fill_n(po + off, edge, E{});
            std::copy_n(pi + off + edge, cols - edge, po + off + edge);
          } else {
            std::copy_n(pi + off, edge, po + off);
            std::fill_n(po + off + edge, cols - edge, E{});
          }
        }
      }
    });
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// DepthToSpace, SpaceToDepth, ReverseSequence.

absl::Status ComputeDepthToSpace(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  if (in.rank() != 4) return ctx.Error("input must be 4-D, got shape ", ShapeToString(in.shape()));
  const int64_t b = ctx.node().GetInt("blocksize", 0);
  if (b <= 0) return ctx.Error("blocksize must be positive, got ", b);
  const std::string mode = ctx.opset() >= 11 ? ctx.node().GetString("mode", "DCR") : "DCR";
  if (mode != "DCR" && mode != "CRD") return ctx.Error("unsupported mode '", mode, "'");
  const int64_t n = in.dim(0), c = in.dim(1), h = in.dim(2), w = in.dim(3);
  if (c % (b * b) != 0) return ctx.Error("channels ", c, " are not a multiple of blocksize^2 = ", b * b);
  const int64_t oc = c / (b * b);
  // Input viewed as 6-D; the output is its transpose to [n, oc, h, b, w, b].
  Shape view = mode == "DCR" ? Shape{n, b, b, oc, h, w} : Shape{n, oc, b, b, h, w};
  const Shape s = Strides(view);
  const Shape perm = mode == "DCR" ? Shape{0, 3, 4, 1, 5, 2} : Shape{0, 1, 4, 2, 5, 3};
  IndexMap m;
  for (int d = 0; d < 6; ++d) {
    m.out_shape.push_back(view[perm[d]]);
    m.offsets.push_back(Iota(view[perm[d]], 0, 1, s[perm[d]]));
  }
  return GatherByIndexMap(ctx, in, m, {n, oc, h * b, w * b});
}

absl::Status ComputeSpaceToDepth(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  if (in.rank() != 4) return ctx.Error("input must be 4-D, got shape ", ShapeToString(in.shape()));
  const int64_t b = ctx.node().GetInt("blocksize", 0);
  if (b <= 0) return ctx.Error("blocksize must be positive, got ", b);
  const int64_t n = in.dim(0), c = in.dim(1), h = in.dim(2), w = in.dim(3);
  if (h % b != 0 || w % b != 0) {
    return ctx.Error("spatial size ", h, "x", w, " is not a multiple of blocksize ", b);
  }
  // Input viewed as [n, c, h/b, b, w/b, b], transposed to [n, b, b, c, h/b, w/b].
  const Shape view{n, c, h / b, b, w / b, b};
  const Shape s = Strides(view);
  const Shape perm{0, 3, 5, 1, 2, 4};
  IndexMap m;
  for (int d = 0; d < 6; ++d) {
    m.out_shape.push_back(view[perm[d]]);
    m.offsets.push_back(Iota(view[perm[d]], 0, 1, s[perm[d]]));
  }
  return GatherByIndexMap(ctx, in, m, {n, c * b * b, h / b, w / b});
}

absl::Status ComputeReverseSequence(KernelContext& ctx) {
  const Tensor& in = ctx.Input(0);
  if (in.rank() < 2) return ctx.Error("input must have rank >= 2, got shape ", ShapeToString(in.shape()));
  const int64_t time_axis = ctx.node().GetInt("time_axis", 0);
  const int64_t batch_axis = ctx.node().GetInt("batch_axis", 1);
  if (!((time_axis == 0 && batch_axis == 1) || (time_axis == 1 && batch_axis == 0))) {
    return ctx.Error("time_axis and batch_axis must be 0 and 1 in some order, got ", time_axis, " and ",
                     batch_axis);
  }
  const int64_t steps = in.dim(static_cast<int>(time_axis));
  const int64_t batch = in.dim(static_cast<int>(batch_axis));
  auto lens = ReadInts(ctx, 1, "sequence_lens");
  if (!lens.ok()) return lens.status();
  if (static_cast<int64_t>(lens->size()) != batch) {
    return ctx.Error("sequence_lens has ", lens->size(), " entries for a batch of ", batch);
  }
  for (int64_t len : *lens) {
    if (len < 0 || len > steps) return ctx.Error("sequence length ", len, " is outside [0, ", steps, "]");
  }
  const int64_t inner = in.size() == 0 ? 0 : in.size() / (steps * batch);
  Tensor* out = ctx.Output(0, in.dtype(), in.shape());
  if (out->size() == 0) return absl::OkStatus();
  auto block = [&](int64_t t, int64_t b) {
    return (time_axis == 0 ? t * batch + b : b * steps + t) * inner;
  };
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = (*lens)[b];
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t src_t = t < len ? len - 1 - t : t;
      CopyElements(in, block(src_t, b), out, block(t, b), inner);
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------

constexpr DTypeSet kEyeLikeTypes = kNumericTypes | Bit(DType::kBool);
constexpr DTypeSet kRangeTypes = Bit(DType::kFloat32) | Bit(DType::kFloat64) | Bit(DType::kInt16) |
                                 Bit(DType::kInt32) | Bit(DType::kInt64);
constexpr DTypeSet kShapeInputTypes = Bit(DType::kInt64) | Bit(DType::kInt32);

const OpTableRegistration kTensorShapeOps({
    // Tensors from 1, sequences from 14, optionals from 16: the value passes through.
    {.name = "Identity", .since = 1, .infer = InferSameAsInput, .compute = ComputeIdentity},
    // value from 1, sparse_value from 11, value_float(s)/int(s)/string(s) from 12.
    {.name = "Constant", .since = 1, .infer = InferConstant, .compute = ComputeConstant},
    {.name = "ConstantOfShape", .since = 9, .types = kShapeInputTypes, .compute = ComputeConstantOfShape},
    // start/end from 15.
    {.name = "Shape", .since = 1, .infer = InferShape, .compute = ComputeShape},
    {.name = "Size", .since = 1, .infer = InferSize, .compute = ComputeSize},
    // shape attribute before 5, input from 5, allowzero from 14.
    {.name = "Reshape", .since = 1, .compute = ComputeReshape},
    // axis in [0, r] before 11, [-r, r] from 11.
    {.name = "Flatten", .since = 1, .compute = ComputeFlatten},
    // axes attribute before 13, input from 13.
    {.name = "Squeeze", .since = 1, .compute = ComputeSqueeze},
    {.name = "Unsqueeze", .since = 1, .compute = ComputeUnsqueeze},
    {.name = "Transpose", .since = 1, .infer = InferTranspose, .compute = ComputeTranspose},
    // axis defaults to 1 at opset 1, required from 4.
    {.name = "Concat", .since = 1, .compute = ComputeConcat},
    // split attribute or input at 1, attribute 2-12, input from 13, num_outputs from 18.
    {.name = "Split", .since = 1, .compute = ComputeSplit},
    // attributes before 10, inputs (with steps) from 10.
    {.name = "Slice", .since = 1, .compute = ComputeSlice},
    {.name = "Expand", .since = 8, .compute = ComputeExpand},
    // tiles/axis inputs before 6, repeats from 6.
    {.name = "Tile", .since = 1, .compute = ComputeTile},
    // paddings attribute at 1, pads attribute 2-10, inputs from 11, axes from 18, wrap from 19.
    {.name = "Pad", .since = 1, .compute = ComputePad},
    {.name = "CenterCropPad", .since = 18, .compute = ComputeCenterCropPad},
    {.name = "Range", .since = 11, .types = kRangeTypes, .compute = ComputeRange},
    {.name = "EyeLike", .since = 9, .types = kEyeLikeTypes, .compute = ComputeEyeLike},
    {.name = "Trilu", .since = 14, .infer = InferSameAsInput, .compute = ComputeTrilu},
    // mode from 11.
    {.name = "DepthToSpace", .since = 1, .compute = ComputeDepthToSpace},
    {.name = "SpaceToDepth", .since = 1, .compute = ComputeSpaceToDepth},
    {.name = "ReverseSequence", .since = 10, .infer = InferSameAsInput, .compute = ComputeReverseSequence},
});

}  // namespace
}  // namespace hepml::ops
