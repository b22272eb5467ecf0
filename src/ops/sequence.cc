// Sequence and optional operators: SequenceEmpty, SequenceConstruct,
// SequenceInsert, SequenceAt, SequenceErase, SequenceLength, SplitToSequence,
// ConcatFromSequence, SequenceMap, Optional, OptionalHasElement,
// OptionalGetElement.
//
// Sequences are Values of kind kSequence; their element tensors share buffers
// with the tensors they were built from (tensors are never written in place,
// so sharing is safe and saves a copy per element). An optional holding an
// element is the element's own Value; an empty optional is Value::None.
#include <cstring>
#include <numeric>

#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

absl::StatusOr<const Value*> SequenceInput(const KernelContext& ctx, size_t i) {
  if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is missing");
  const Value& v = ctx.InputValue(i);
  if (v.kind != Value::Kind::kSequence) {
    return ctx.Error("input ", i, " must be a sequence of tensors, got ",
                     v.kind == Value::Kind::kNone ? "an empty optional" : "a tensor");
  }
  return &v;
}

absl::StatusOr<const Tensor*> TensorInput(const KernelContext& ctx, size_t i) {
  if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is missing");
  const Value& v = ctx.InputValue(i);
  if (v.kind != Value::Kind::kTensor) {
    return ctx.Error("input ", i, " must be a tensor, got ",
                     v.kind == Value::Kind::kNone ? "an empty optional" : "a sequence");
  }
  return &v.tensor;
}

// A sequence position: an int32/int64 tensor holding one value.
absl::StatusOr<int64_t> ReadPosition(const KernelContext& ctx, size_t i) {
  auto t = TensorInput(ctx, i);
  if (!t.ok()) return t.status();
  const Tensor& p = **t;
  if (p.dtype() != DType::kInt32 && p.dtype() != DType::kInt64) {
    return ctx.Error("position must be int32 or int64, got ", DTypeName(p.dtype()));
  }
  if (p.size() != 1) {
    return ctx.Error("position must be a scalar, got shape ", ShapeToString(p.shape()));
  }
  return p.dtype() == DType::kInt32 ? int64_t{p.data<int32_t>()[0]} : p.data<int64_t>()[0];
}

// The element type of `seq` a new element must have (kUndefined: any).
DType ElementType(const Value& seq) {
  if (seq.element_dtype != DType::kUndefined) return seq.element_dtype;
  return seq.sequence.empty() ? DType::kUndefined : seq.sequence.front().dtype();
}

absl::Status ComputeSequenceEmpty(KernelContext& ctx) {
  const int64_t dtype = ctx.node().GetInt("dtype", static_cast<int64_t>(DType::kFloat32));
  if (dtype < 0 || dtype > INT32_MAX || !IsKnownDType(static_cast<int32_t>(dtype)) ||
      dtype == static_cast<int64_t>(DType::kUndefined)) {
    return ctx.Error("attribute 'dtype' = ", dtype, " is not a known tensor element type");
  }
  ctx.SetOutputValue(0, Value::FromSequence({}, static_cast<DType>(dtype)));
  return absl::OkStatus();
}

absl::Status ComputeSequenceConstruct(KernelContext& ctx) {
  if (ctx.num_inputs() == 0) return ctx.Error("needs at least one input tensor");
  std::vector<Tensor> seq;
  seq.reserve(ctx.num_inputs());
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is missing");
    auto t = TensorInput(ctx, i);
    if (!t.ok()) return t.status();
    if (i > 0 && (*t)->dtype() != seq.front().dtype()) {
      return ctx.Error("all inputs must have one type: input 0 is ", DTypeName(seq.front().dtype()), ", input ", i,
                       " is ", DTypeName((*t)->dtype()));
    }
    seq.push_back(**t);
  }
  DType elem = seq.front().dtype();
  ctx.SetOutputValue(0, Value::FromSequence(std::move(seq), elem));
  return absl::OkStatus();
}

absl::Status ComputeSequenceInsert(KernelContext& ctx) {
  auto seq = SequenceInput(ctx, 0);
  if (!seq.ok()) return seq.status();
  if (!ctx.HasInput(1)) return ctx.Error("input 'tensor' is missing");
  auto t = TensorInput(ctx, 1);
  if (!t.ok()) return t.status();
  DType elem = ElementType(**seq);
  if (elem != DType::kUndefined && (*t)->dtype() != elem) {
    return ctx.Error("cannot insert a ", DTypeName((*t)->dtype()), " tensor into a sequence of ", DTypeName(elem));
  }
  const int64_t n = static_cast<int64_t>((*seq)->sequence.size());
  int64_t pos = n;
  if (ctx.HasInput(2)) {
    auto p = ReadPosition(ctx, 2);
    if (!p.ok()) return p.status();
    pos = *p;
    if (pos < -n || pos > n) return ctx.Error("position ", pos, " is out of range [", -n, ", ", n, "]");
    if (pos < 0) pos += n;
  }
  std::vector<Tensor> out = (*seq)->sequence;
  out.insert(out.begin() + pos, **t);
  ctx.SetOutputValue(0, Value::FromSequence(std::move(out), (*t)->dtype()));
  return absl::OkStatus();
}

absl::Status ComputeSequenceAt(KernelContext& ctx) {
  auto seq = SequenceInput(ctx, 0);
  if (!seq.ok()) return seq.status();
  if (!ctx.HasInput(1)) return ctx.Error("input 'position' is missing");
  auto p = ReadPosition(ctx, 1);
  if (!p.ok()) return p.status();
  const int64_t n = static_cast<int64_t>((*seq)->sequence.size());
  int64_t pos = *p;
  if (pos < -n || pos >= n) {
    return ctx.Error("position ", pos, " is out of range for a sequence of ", n, " tensors");
  }
  if (pos < 0) pos += n;
  ctx.SetOutput(0, (*seq)->sequence[static_cast<size_t>(pos)]);
  return absl::OkStatus();
}

absl::Status ComputeSequenceErase(KernelContext& ctx) {
  auto seq = SequenceInput(ctx, 0);
  if (!seq.ok()) return seq.status();
  const int64_t n = static_cast<int64_t>((*seq)->sequence.size());
  int64_t pos = -1;
  if (ctx.HasInput(1)) {
    auto p = ReadPosition(ctx, 1);
    if (!p.ok()) return p.status();
    pos = *p;
  }
  if (pos < -n || pos >= n) {
    return ctx.Error("position ", pos, " is out of range for a sequence of ", n, " tensors");
  }
  if (pos < 0) pos += n;
  std::vector<Tensor> out = (*seq)->sequence;
  out.erase(out.begin() + pos);
  ctx.SetOutputValue(0, Value::FromSequence(std::move(out), (*seq)->element_dtype));
  return absl::OkStatus();
}

absl::Status ComputeSequenceLength(KernelContext& ctx) {
  auto seq = SequenceInput(ctx, 0);
  if (!seq.ok()) return seq.status();
  Tensor* out = ctx.Output(0, DType::kInt64, {});
  out->mutable_data<int64_t>()[0] = static_cast<int64_t>((*seq)->sequence.size());
  return absl::OkStatus();
}

absl::Status InferSequenceLength(const InferContext&, std::vector<TypeInfo>& outputs) {
  outputs[0] = TypeInfo::Tensor(DType::kInt64, {});
  return absl::OkStatus();
}

absl::Status ComputeSplitToSequence(KernelContext& ctx) {
  auto in = TensorInput(ctx, 0);
  if (!in.ok()) return in.status();
  const Tensor& x = **in;
  if (x.rank() == 0) return ctx.Error("cannot split a scalar");
  auto axis = NormalizeAxis(ctx.node().GetInt("axis", 0), x.rank());
  if (!axis.ok()) return ctx.Error("attribute 'axis': ", axis.status().message());
  const int64_t dim = x.dim(static_cast<int>(*axis));
  const bool keepdims = ctx.node().GetInt("keepdims", 1) != 0;

  std::vector<int64_t> lengths;
  bool drop_axis = false;
  if (!ctx.HasInput(1)) {
    lengths.assign(static_cast<size_t>(dim), 1);
    drop_axis = !keepdims;
  } else {
    auto st = TensorInput(ctx, 1);
    if (!st.ok()) return st.status();
    const Tensor& split = **st;
    if (split.dtype() != DType::kInt32 && split.dtype() != DType::kInt64) {
      return ctx.Error("'split' must be int32 or int64, got ", DTypeName(split.dtype()));
    }
    if (split.rank() > 1) return ctx.Error("'split' must be a scalar or 1-D, got shape ", ShapeToString(split.shape()));
    auto values = ReadInt64s(split);
    if (!values.ok()) return ctx.Error(values.status().message());
    if (split.rank() == 0) {
      const int64_t chunk = (*values)[0];
      if (chunk <= 0) return ctx.Error("scalar 'split' must be positive, got ", chunk);
      for (int64_t done = 0; done < dim; done += chunk) lengths.push_back(std::min(chunk, dim - done));
    } else {
      int64_t sum = 0;
      for (int64_t v : *values) {
        if (v < 0) return ctx.Error("'split' values must be >= 0, got ", v);
        sum += v;
      }
      if (sum != dim) {
        return ctx.Error("'split' values sum to ", sum, " but axis ", *axis, " has size ", dim);
      }
      lengths = *values;
    }
  }

  int64_t outer = 1, inner = 1;
  for (int d = 0; d < x.rank(); ++d) {
    if (d < *axis) outer *= x.dim(d);
    if (d > *axis) inner *= x.dim(d);
  }
  std::vector<Tensor> seq;
  seq.reserve(lengths.size());
  int64_t offset = 0;
  for (int64_t len : lengths) {
    Shape shape = x.shape();
    if (drop_axis) {
      shape.erase(shape.begin() + *axis);
    } else {
      shape[static_cast<size_t>(*axis)] = len;
    }
    Tensor part = Tensor::Empty(x.dtype(), shape);
    for (int64_t o = 0; o < outer; ++o) {
      CopyTensorElements(x, (o * dim + offset) * inner, part, o * len * inner, len * inner);
    }
    seq.push_back(std::move(part));
    offset += len;
  }
  ctx.SetOutputValue(0, Value::FromSequence(std::move(seq), x.dtype()));
  return absl::OkStatus();
}

absl::Status ComputeConcatFromSequence(KernelContext& ctx) {
  auto seq = SequenceInput(ctx, 0);
  if (!seq.ok()) return seq.status();
  const std::vector<Tensor>& items = (*seq)->sequence;
  if (!ctx.node().HasAttribute("axis")) return ctx.Error("attribute 'axis' is required");
  if (items.empty()) return ctx.Error("cannot concatenate an empty sequence");
  const bool new_axis = ctx.node().GetInt("new_axis", 0) != 0;
  const Tensor& first = items.front();
  const int rank = first.rank();
  const int out_rank = rank + (new_axis ? 1 : 0);
  if (out_rank == 0) return ctx.Error("cannot concatenate scalars without new_axis");
  auto axis_or = NormalizeAxis(ctx.node().GetInt("axis", 0), out_rank);
  if (!axis_or.ok()) return ctx.Error("attribute 'axis': ", axis_or.status().message());
  const int axis = static_cast<int>(*axis_or);

  // Each item seen with the output's rank (a 1 inserted for new_axis).
  auto item_shape = [&](const Tensor& t) {
    Shape s = t.shape();
    if (new_axis) s.insert(s.begin() + axis, 1);
    return s;
  };
  Shape out_shape = item_shape(first);
  int64_t total = 0;
  for (size_t k = 0; k < items.size(); ++k) {
    const Tensor& t = items[k];
    if (t.dtype() != first.dtype()) {
      return ctx.Error("sequence element ", k, " has type ", DTypeName(t.dtype()), ", element 0 has ",
                       DTypeName(first.dtype()));
    }
    Shape s = item_shape(t);
    bool match = t.rank() == rank;
    for (int d = 0; match && d < out_rank; ++d) match = d == axis || s[d] == out_shape[d];
    if (!match) {
      return ctx.Error("sequence element ", k, " has shape ", ShapeToString(t.shape()), ", element 0 has ",
                       ShapeToString(first.shape()), new_axis ? " (stacking needs equal shapes)" : "");
    }
    total += s[axis];
  }
  out_shape[axis] = total;
  Tensor* out = ctx.Output(0, first.dtype(), out_shape);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < out_rank; ++d) {
    if (d < axis) outer *= out_shape[d];
    if (d > axis) inner *= out_shape[d];
  }
  const int64_t out_block = total * inner;
  int64_t offset = 0;
  for (const Tensor& t : items) {
    const int64_t block = item_shape(t)[axis] * inner;
    for (int64_t o = 0; o < outer; ++o) CopyTensorElements(t, o * block, *out, o * out_block + offset, block);
    offset += block;
  }
  return absl::OkStatus();
}

// The dtype a subgraph output declares, if it is a tensor of known type.
DType DeclaredTensorType(const Graph* g, size_t i) {
  if (g == nullptr || i >= g->outputs.size()) return DType::kUndefined;
  const TypeInfo& t = g->outputs[i].type;
  return t.kind == TypeInfo::Kind::kTensor ? t.dtype : DType::kUndefined;
}

absl::Status ComputeSequenceMap(KernelContext& ctx) {
  const Graph* body = ctx.node().GetGraph("body");
  if (body == nullptr) return ctx.Error("attribute 'body' is required");
  auto first = SequenceInput(ctx, 0);
  if (!first.ok()) return first.status();
  const size_t n = (*first)->sequence.size();
  const size_t num_in = ctx.num_inputs();
  if (body->inputs.size() != num_in) {
    return ctx.Error("body takes ", body->inputs.size(), " inputs, the node has ", num_in);
  }
  for (size_t j = 0; j < num_in; ++j) {
    if (!ctx.HasInput(j)) return ctx.Error("input ", j, " is missing");
    const Value& v = ctx.InputValue(j);
    if (v.kind == Value::Kind::kNone) return ctx.Error("input ", j, " is an empty optional");
    if (v.kind == Value::Kind::kSequence && v.sequence.size() != n) {
      return ctx.Error("input sequence ", j, " has ", v.sequence.size(), " elements, input 0 has ", n);
    }
  }
  const size_t num_out = ctx.num_outputs();
  if (body->outputs.size() != num_out) {
    return ctx.Error("body has ", body->outputs.size(), " outputs, the node has ", num_out);
  }
  std::vector<std::vector<Tensor>> outs(num_out);
  for (auto& o : outs) o.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::vector<Value> args;
    args.reserve(num_in);
    for (size_t j = 0; j < num_in; ++j) {
      const Value& v = ctx.InputValue(j);
      args.push_back(v.kind == Value::Kind::kSequence ? Value::FromTensor(v.sequence[i]) : v);
    }
    auto result = ctx.RunSubgraph("body", std::move(args));
    if (!result.ok()) return result.status();
    for (size_t k = 0; k < num_out; ++k) {
      Value& r = (*result)[k];
      if (r.kind != Value::Kind::kTensor) {
        return ctx.Error("body output ", k, " must be a tensor, got ",
                         r.kind == Value::Kind::kNone ? "an empty optional" : "a sequence");
      }
      if (!outs[k].empty() && outs[k].front().dtype() != r.tensor.dtype()) {
        return ctx.Error("body output ", k, " changed type from ", DTypeName(outs[k].front().dtype()), " to ",
                         DTypeName(r.tensor.dtype()));
      }
      outs[k].push_back(std::move(r.tensor));
    }
  }
  for (size_t k = 0; k < num_out; ++k) {
    DType elem = outs[k].empty() ? DeclaredTensorType(body, k) : outs[k].front().dtype();
    ctx.SetOutputValue(k, Value::FromSequence(std::move(outs[k]), elem));
  }
  return absl::OkStatus();
}

absl::Status ComputeOptional(KernelContext& ctx) {
  if (ctx.HasInput(0)) {
    ctx.SetOutputValue(0, ctx.InputValue(0));
    return absl::OkStatus();
  }
  const Attribute* type = ctx.node().FindAttribute("type");
  if (type == nullptr || type->type != Attribute::Type::kTypeProto) {
    return ctx.Error("an Optional without input needs the 'type' attribute");
  }
  const TypeInfo& t = type->type_proto;
  if (t.kind == TypeInfo::Kind::kTensor) {
    ctx.SetOutputValue(0, Value::None(t.dtype, false));
  } else if (t.kind == TypeInfo::Kind::kSequence) {
    DType elem = t.element && t.element->kind == TypeInfo::Kind::kTensor ? t.element->dtype : DType::kUndefined;
    ctx.SetOutputValue(0, Value::None(elem, true));
  } else {
    return ctx.Error("attribute 'type' must be a tensor or sequence type, got ", t.ToString());
  }
  return absl::OkStatus();
}

absl::Status ComputeOptionalHasElement(KernelContext& ctx) {
  bool has = false;
  if (ctx.HasInput(0)) {
    has = ctx.InputValue(0).kind != Value::Kind::kNone;
  } else if (ctx.opset() < 18) {
    return ctx.Error("input 'input' is required before opset 18");
  }
  Tensor* out = ctx.Output(0, DType::kBool, {});
  out->mutable_data<bool>()[0] = has;
  return absl::OkStatus();
}

absl::Status InferBoolScalar(const InferContext&, std::vector<TypeInfo>& outputs) {
  outputs[0] = TypeInfo::Tensor(DType::kBool, {});
  return absl::OkStatus();
}

absl::Status ComputeOptionalGetElement(KernelContext& ctx) {
  if (!ctx.HasInput(0)) return ctx.Error("input 'input' is missing");
  const Value& v = ctx.InputValue(0);
  if (v.kind == Value::Kind::kNone) return ctx.Error("the optional input is empty");
  ctx.SetOutputValue(0, v);
  return absl::OkStatus();
}

const OpTableRegistration kSequenceOps({
    {.name = "SequenceEmpty", .since = 11, .compute = ComputeSequenceEmpty},
    {.name = "SequenceConstruct", .since = 11, .compute = ComputeSequenceConstruct},
    {.name = "SequenceInsert", .since = 11, .compute = ComputeSequenceInsert},
    {.name = "SequenceAt", .since = 11, .compute = ComputeSequenceAt},
    {.name = "SequenceErase", .since = 11, .compute = ComputeSequenceErase},
    {.name = "SequenceLength", .since = 11, .infer = InferSequenceLength, .compute = ComputeSequenceLength},
    {.name = "SplitToSequence", .since = 11, .compute = ComputeSplitToSequence},
    {.name = "ConcatFromSequence", .since = 11, .compute = ComputeConcatFromSequence},
    {.name = "SequenceMap", .since = 17, .compute = ComputeSequenceMap},
    {.name = "Optional", .since = 15, .compute = ComputeOptional},
    // 15: the input must be an optional; 18: it may be omitted (false) or be a
    // plain tensor or sequence (true).
    {.name = "OptionalHasElement", .since = 15, .infer = InferBoolScalar, .compute = ComputeOptionalHasElement},
    // 15 takes an optional, 18 also a plain tensor or sequence (returned as is).
    // hepml's Value does not tell optional(tensor) from tensor, so one kernel
    // serves both.
    {.name = "OptionalGetElement", .since = 15, .compute = ComputeOptionalGetElement},
});

}  // namespace
}  // namespace hepml::ops
