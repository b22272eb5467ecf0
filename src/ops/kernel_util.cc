#include "ops/kernel_util.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "tensor/dispatch.h"

namespace hepml::ops {

absl::StatusOr<Shape> BroadcastShapes(absl::Span<const Shape> shapes) {
  size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const Shape& s : shapes) {
    size_t offset = rank - s.size();
    for (size_t d = 0; d < s.size(); ++d) {
      int64_t a = out[offset + d], b = s[d];
      if (a == b || b == 1) continue;
      if (a == 1) {
        out[offset + d] = b;
        continue;
      }
      std::string all;
      for (const Shape& x : shapes) absl::StrAppend(&all, all.empty() ? "" : " and ", ShapeToString(x));
      return absl::InvalidArgumentError(absl::StrCat("shapes ", all, " cannot be broadcast"));
    }
  }
  return out;
}

absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b) {
  Shape both[2] = {a, b};
  return BroadcastShapes(absl::MakeConstSpan(both, 2));
}

Shape Strides(absl::Span<const int64_t> shape) {
  Shape s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) s[d - 1] = s[d] * shape[d];
  return s;
}

Shape BroadcastStrides(absl::Span<const int64_t> in_shape, absl::Span<const int64_t> out_shape) {
  Shape result(out_shape.size(), 0);
  Shape in_strides = Strides(in_shape);
  size_t offset = out_shape.size() - in_shape.size();
  for (size_t d = 0; d < in_shape.size(); ++d) {
    result[offset + d] = in_shape[d] == 1 ? 0 : in_strides[d];
  }
  return result;
}

absl::StatusOr<int64_t> NormalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) {
    if (!(rank == 0 && (axis == 0 || axis == -1))) {
      return absl::InvalidArgumentError(
          absl::StrCat("axis ", axis, " is out of range for rank ", rank));
    }
  }
  return axis < 0 ? axis + rank : axis;
}

absl::StatusOr<std::vector<int64_t>> NormalizeAxes(absl::Span<const int64_t> axes, int64_t rank) {
  std::vector<int64_t> out;
  out.reserve(axes.size());
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) {
      return absl::InvalidArgumentError(absl::StrCat("axis ", a, " is out of range for rank ", rank));
    }
    int64_t n = a < 0 ? a + rank : a;
    if (std::find(out.begin(), out.end(), n) != out.end()) {
      return absl::InvalidArgumentError(absl::StrCat("axis ", a, " is repeated"));
    }
    out.push_back(n);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> ReadInt64s(const Tensor& t) {
  std::vector<int64_t> out(static_cast<size_t>(t.size()));
  absl::Status st = VisitInteger(
      t.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        const T* p = t.data<T>();
        for (int64_t i = 0; i < t.size(); ++i) out[i] = static_cast<int64_t>(p[i]);
        return absl::OkStatus();
      },
      "integer tensor");
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<double>> ReadDoubles(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.size()));
  absl::Status st = VisitNumericOrBool(
      t.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        const T* p = t.data<T>();
        for (int64_t i = 0; i < t.size(); ++i)
          out[i] = static_cast<double>(static_cast<ComputeT<T>>(p[i]));
        return absl::OkStatus();
      },
      "numeric tensor");
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<int64_t> ReadScalarInt(const Tensor& t) {
  if (t.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a scalar, got shape ", ShapeToString(t.shape())));
  }
  auto v = ReadInt64s(t);
  if (!v.ok()) return v.status();
  return (*v)[0];
}

absl::StatusOr<double> ReadScalarDouble(const Tensor& t) {
  if (t.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a scalar, got shape ", ShapeToString(t.shape())));
  }
  auto v = ReadDoubles(t);
  if (!v.ok()) return v.status();
  return (*v)[0];
}

BroadcastIterator::BroadcastIterator(absl::Span<const int64_t> out_shape,
                                     absl::Span<const Shape> in_shapes)
    : out_shape_(out_shape.begin(), out_shape.end()) {
  for (const Shape& s : in_shapes) in_strides_.push_back(BroadcastStrides(s, out_shape));
}

absl::Status RequireTensorInputs(const KernelContext& ctx, size_t required) {
  for (size_t i = 0; i < std::max(required, ctx.num_inputs()); ++i) {
    if (!ctx.HasInput(i)) {
      if (i < required) return ctx.Error("required input ", i, " is missing");
      continue;
    }
    if (!ctx.InputValue(i).is_tensor()) return ctx.Error("input ", i, " is not a tensor");
  }
  return absl::OkStatus();
}

void CopyTensorElements(const Tensor& src, int64_t src_off, Tensor& dst, int64_t dst_off, int64_t n) {
  if (n <= 0) return;
  if (src.dtype() == DType::kString) {
    CopyElements(dst.mutable_data<std::string>() + dst_off, src.data<std::string>() + src_off, n);
    return;
  }
  const size_t es = DTypeSize(src.dtype());
  std::memcpy(static_cast<char*>(dst.raw_mutable_data()) + static_cast<size_t>(dst_off) * es,
              static_cast<const char*>(src.raw_data()) + static_cast<size_t>(src_off) * es,
              static_cast<size_t>(n) * es);
}

std::optional<Shape> KnownShape(const TypeInfo& type) {
  if (type.kind != TypeInfo::Kind::kTensor || !type.has_shape) return std::nullopt;
  Shape s;
  for (const Dim& d : type.shape) {
    if (!d.known()) return std::nullopt;
    s.push_back(d.value);
  }
  return s;
}

std::vector<Dim> ToDims(const Shape& shape) {
  std::vector<Dim> dims;
  for (int64_t v : shape) dims.push_back(Dim{v, ""});
  return dims;
}

absl::Status InferSameAsInput(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (!ctx.input_types.empty() && !outputs.empty()) outputs[0] = ctx.input_types[0];
  return absl::OkStatus();
}

namespace {
absl::Status InferBroadcastAs(const InferContext& ctx, std::vector<TypeInfo>& outputs, DType dtype) {
  if (outputs.empty()) return absl::OkStatus();
  // Symbolic broadcast: the output dim is the one non-1 dim when all agree.
  size_t rank = 0;
  for (const TypeInfo& t : ctx.input_types) {
    if (t.kind != TypeInfo::Kind::kTensor || !t.has_shape) {
      outputs[0] = TypeInfo::Tensor(dtype);
      return absl::OkStatus();
    }
    rank = std::max(rank, t.shape.size());
  }
  std::vector<Dim> out(rank, Dim{1, ""});
  for (const TypeInfo& t : ctx.input_types) {
    size_t offset = rank - t.shape.size();
    for (size_t d = 0; d < t.shape.size(); ++d) {
      const Dim& in = t.shape[d];
      Dim& o = out[offset + d];
      if (in.known() && in.value == 1) continue;
      if (o.known() && o.value == 1) {
        o = in;
      } else if (in.known() && o.known() && in.value != o.value) {
        return absl::InvalidArgumentError(absl::StrCat(
            "dimension ", offset + d, " cannot be broadcast: ", o.value, " vs ", in.value));
      } else if (!(in.known() && o.known()) && !(in.param == o.param && !in.param.empty())) {
        if (!in.known() && o.known()) continue;  // keep the known one
        if (in.known()) o = in;
        else o = Dim{};
      }
    }
  }
  outputs[0] = TypeInfo::Tensor(dtype, std::move(out));
  return absl::OkStatus();
}
}  // namespace

absl::Status InferBroadcast(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  DType dtype = ctx.input_types.empty() ? DType::kUndefined : ctx.input_types[0].dtype;
  return InferBroadcastAs(ctx, outputs, dtype);
}

absl::Status InferBroadcastBool(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  return InferBroadcastAs(ctx, outputs, DType::kBool);
}

}  // namespace hepml::ops
