// Control flow: If, Loop and Scan. Their bodies are subgraphs run through
// KernelContext::RunSubgraph; names of enclosing graphs resolve there.
//
// Values flowing through If outputs and Loop-carried dependencies may be
// tensors, sequences or optionals (Value kinds); scan outputs are tensors,
// concatenated along a new axis.
#include <cstring>
#include <string>

#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// Reads `in` as [a][b][c] blocks and returns them as [b][a][c] with `shape`.
Tensor SwapBlocks(const Tensor& in, int64_t a, int64_t b, int64_t c, Shape shape) {
  Tensor out = Tensor::Empty(in.dtype(), std::move(shape));
  for (int64_t i = 0; i < a; ++i) {
    for (int64_t j = 0; j < b; ++j) CopyTensorElements(in, (i * b + j) * c, out, (j * a + i) * c, c);
  }
  return out;
}

// `t` with axis `axis` moved to the front.
Tensor MoveAxisToFront(const Tensor& t, int axis) {
  if (axis == 0) return t;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < t.rank(); ++d) {
    if (d < axis) outer *= t.dim(d);
    if (d > axis) inner *= t.dim(d);
  }
  Shape shape = t.shape();
  shape.erase(shape.begin() + axis);
  shape.insert(shape.begin(), t.dim(axis));
  return SwapBlocks(t, outer, t.dim(axis), inner, std::move(shape));
}

// `t` (leading axis = the stacked one) with its leading axis moved to `axis`.
Tensor MoveFrontAxisTo(const Tensor& t, int axis) {
  if (axis == 0) return t;
  int64_t outer = 1, inner = 1;
  for (int d = 1; d < t.rank(); ++d) {
    if (d <= axis)
      outer *= t.dim(d);
    else
      inner *= t.dim(d);
  }
  Shape shape = t.shape();
  shape.erase(shape.begin());
  shape.insert(shape.begin() + axis, t.dim(0));
  return SwapBlocks(t, t.dim(0), outer, inner, std::move(shape));
}

// A rank-0 tensor holding `value`.
template <typename T>
Tensor ScalarTensor(T value) {
  Tensor t = Tensor::Empty(DTypeOf<T>::value, Shape());
  t.mutable_data<T>()[0] = value;
  return t;
}

// The value of a one-element bool tensor.
absl::StatusOr<bool> ReadCondition(const KernelContext& ctx, const Value& v, const char* what) {
  if (v.kind != Value::Kind::kTensor) return ctx.Error(what, " must be a bool tensor");
  if (v.tensor.dtype() != DType::kBool) {
    return ctx.Error(what, " must be bool, got ", DTypeName(v.tensor.dtype()));
  }
  if (v.tensor.size() != 1) {
    return ctx.Error(what, " must hold one element, got shape ", ShapeToString(v.tensor.shape()));
  }
  return v.tensor.data<bool>()[0];
}

// The tensor a scan output takes when no iteration ran: [0] followed by the
// body output's declared shape (unknown dims as 0; rank 1 if no shape is
// declared), of its declared type (float32 if undeclared).
Tensor EmptyScanOutput(const Graph& body, size_t output, Shape leading) {
  const TypeInfo& t = body.outputs[output].type;
  DType dtype = t.kind == TypeInfo::Kind::kTensor && t.dtype != DType::kUndefined ? t.dtype : DType::kFloat32;
  Shape shape = std::move(leading);
  if (t.kind == TypeInfo::Kind::kTensor && t.has_shape) {
    for (const Dim& d : t.shape) shape.push_back(d.known() ? d.value : 0);
  }
  return Tensor::Zeros(dtype, std::move(shape));
}

// Collects one scan output's per-iteration elements, checking that type and
// shape stay the same.
class ScanAccumulator {
 public:
  absl::Status Add(const KernelContext& ctx, size_t index, Value v) {
    if (v.kind != Value::Kind::kTensor) {
      return ctx.Error("scan output ", index, " must be a tensor in every iteration");
    }
    if (!elems_.empty()) {
      const Tensor& f = elems_.front();
      if (f.dtype() != v.tensor.dtype() || f.shape() != v.tensor.shape()) {
        return ctx.Error("scan output ", index, " changed from ", DTypeName(f.dtype()), ShapeToString(f.shape()),
                         " to ", DTypeName(v.tensor.dtype()), ShapeToString(v.tensor.shape()), " between iterations");
      }
    }
    elems_.push_back(std::move(v.tensor));
    return absl::OkStatus();
  }
  bool empty() const { return elems_.empty(); }
  size_t size() const { return elems_.size(); }
  const Tensor& front() const { return elems_.front(); }
  // The elements stacked on a new leading axis, element i at position i (or
  // at size-1-i when `reverse`).
  Tensor Stack(bool reverse) const {
    Shape shape = elems_.front().shape();
    shape.insert(shape.begin(), static_cast<int64_t>(elems_.size()));
    Tensor out = Tensor::Empty(elems_.front().dtype(), shape);
    const int64_t n = static_cast<int64_t>(elems_.size());
    const int64_t block = elems_.front().size();
    for (int64_t i = 0; i < n; ++i) CopyTensorElements(elems_[i], 0, out, (reverse ? n - 1 - i : i) * block, block);
    return out;
  }

 private:
  std::vector<Tensor> elems_;
};

// ---- If ----

absl::Status ComputeIf(KernelContext& ctx) {
  if (!ctx.HasInput(0)) return ctx.Error("input 'cond' is missing");
  auto cond = ReadCondition(ctx, ctx.InputValue(0), "input 'cond'");
  if (!cond.ok()) return cond.status();
  const char* branch = *cond ? "then_branch" : "else_branch";
  if (ctx.node().GetGraph(branch) == nullptr) return ctx.Error("attribute '", branch, "' is required");
  auto out = ctx.RunSubgraph(branch, {});
  if (!out.ok()) return out.status();
  if (out->size() < ctx.num_outputs()) {
    return ctx.Error(branch, " gives ", out->size(), " outputs, the node has ", ctx.num_outputs());
  }
  for (size_t i = 0; i < ctx.num_outputs(); ++i) ctx.SetOutputValue(i, std::move((*out)[i]));
  return absl::OkStatus();
}

// ---- Loop ----

// Semantics (ONNX Loop, all versions): run while (no M or i < M) and cond,
// where cond starts as input 'cond' (true when omitted) and becomes the body's
// first output after each iteration. ONNX's table calls that output "ignored"
// when the 'cond' input is omitted; like the ONNX reference implementation and
// ONNX Runtime, hepml always honours it, so a loop without M and 'cond' ends
// when the body says so (it is not rejected as unbounded).
absl::Status ComputeLoop(KernelContext& ctx) {
  const Graph* body = ctx.node().GetGraph("body");
  if (body == nullptr) return ctx.Error("attribute 'body' is required");
  if (ctx.num_inputs() < 2) return ctx.Error("needs inputs M and cond (either may be empty)");
  const size_t n_carried = ctx.num_inputs() - 2;
  if (body->inputs.size() != n_carried + 2) {
    return ctx.Error("body takes ", body->inputs.size(), " inputs; expected ", n_carried + 2,
                     " (iteration number, condition and ", n_carried, " loop-carried values)");
  }
  if (body->outputs.size() < n_carried + 1) {
    return ctx.Error("body has ", body->outputs.size(), " outputs; expected at least ", n_carried + 1,
                     " (condition and ", n_carried, " loop-carried values)");
  }
  const size_t n_scan = body->outputs.size() - 1 - n_carried;
  if (ctx.num_outputs() > n_carried + n_scan) {
    return ctx.Error("has ", ctx.num_outputs(), " outputs; the body gives only ", n_carried + n_scan);
  }

  bool has_max = ctx.HasInput(0);
  int64_t max_trip = 0;
  if (has_max) {
    const Value& m = ctx.InputValue(0);
    if (m.kind != Value::Kind::kTensor || (m.tensor.dtype() != DType::kInt64 && m.tensor.dtype() != DType::kInt32) ||
        m.tensor.size() != 1) {
      return ctx.Error("input 'M' must be an int64 scalar");
    }
    auto v = ReadScalarInt(m.tensor);
    if (!v.ok()) return ctx.Error(v.status().message());
    max_trip = *v;
  }
  bool cond = true;
  if (ctx.HasInput(1)) {
    auto c = ReadCondition(ctx, ctx.InputValue(1), "input 'cond'");
    if (!c.ok()) return c.status();
    cond = *c;
  }
  std::vector<Value> carried;
  carried.reserve(n_carried);
  for (size_t j = 0; j < n_carried; ++j) {
    if (!ctx.HasInput(2 + j)) return ctx.Error("loop-carried input ", j, " is missing");
    carried.push_back(ctx.InputValue(2 + j));
  }

  std::vector<ScanAccumulator> scans(n_scan);
  for (int64_t i = 0; (!has_max || i < max_trip) && cond; ++i) {
    std::vector<Value> args;
    args.reserve(n_carried + 2);
    args.push_back(Value::FromTensor(ScalarTensor<int64_t>(i)));
    args.push_back(Value::FromTensor(ScalarTensor<bool>(cond)));
    for (Value& v : carried) args.push_back(std::move(v));
    auto out = ctx.RunSubgraph("body", std::move(args));
    if (!out.ok()) return out.status();
    auto c = ReadCondition(ctx, (*out)[0], "body output 'cond'");
    if (!c.ok()) return c.status();
    cond = *c;
    for (size_t j = 0; j < n_carried; ++j) carried[j] = std::move((*out)[1 + j]);
    for (size_t k = 0; k < n_scan; ++k) {
      absl::Status st = scans[k].Add(ctx, k, std::move((*out)[1 + n_carried + k]));
      if (!st.ok()) return st;
    }
  }

  for (size_t j = 0; j < n_carried && j < ctx.num_outputs(); ++j) {
    if (ctx.HasOutput(j)) ctx.SetOutputValue(j, std::move(carried[j]));
  }
  for (size_t k = 0; k < n_scan && n_carried + k < ctx.num_outputs(); ++k) {
    if (!ctx.HasOutput(n_carried + k)) continue;
    ctx.SetOutput(n_carried + k,
                  scans[k].empty() ? EmptyScanOutput(*body, 1 + n_carried + k, {0}) : scans[k].Stack(false));
  }
  return absl::OkStatus();
}

// ---- Scan ----

struct ScanSetup {
  const Graph* body = nullptr;
  size_t n_state = 0;  // N
  size_t n_in = 0;     // M
  size_t n_out = 0;    // K
  size_t first = 0;    // index of the first state input (1 at opset 8)
};

absl::StatusOr<ScanSetup> ParseScan(const KernelContext& ctx, size_t first) {
  ScanSetup s;
  s.first = first;
  s.body = ctx.node().GetGraph("body");
  if (s.body == nullptr) return ctx.Error("attribute 'body' is required");
  const int64_t m = ctx.node().GetInt("num_scan_inputs", -1);
  if (m < 1) return ctx.Error("attribute 'num_scan_inputs' must be >= 1, got ", m);
  if (ctx.num_inputs() < first + static_cast<size_t>(m)) {
    return ctx.Error("has ", ctx.num_inputs() - std::min(ctx.num_inputs(), first),
                     " state and scan inputs, fewer than num_scan_inputs = ", m);
  }
  s.n_in = static_cast<size_t>(m);
  s.n_state = ctx.num_inputs() - first - s.n_in;
  if (s.body->inputs.size() != s.n_state + s.n_in) {
    return ctx.Error("body takes ", s.body->inputs.size(), " inputs; expected ", s.n_state + s.n_in, " (", s.n_state,
                     " states and ", s.n_in, " scan inputs)");
  }
  if (s.body->outputs.size() < s.n_state) {
    return ctx.Error("body has ", s.body->outputs.size(), " outputs, fewer than its ", s.n_state, " states");
  }
  s.n_out = s.body->outputs.size() - s.n_state;
  if (ctx.num_outputs() > s.n_state + s.n_out) {
    return ctx.Error("has ", ctx.num_outputs(), " outputs; the body gives only ", s.n_state + s.n_out);
  }
  for (size_t i = first; i < ctx.num_inputs(); ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is missing");
    if (ctx.InputValue(i).kind != Value::Kind::kTensor) return ctx.Error("input ", i, " must be a tensor");
  }
  return s;
}

// An optional per-input (or per-output) int list attribute of `count` entries.
absl::StatusOr<std::vector<int64_t>> ListAttr(const KernelContext& ctx, const char* name, size_t count) {
  if (!ctx.node().HasAttribute(name)) return std::vector<int64_t>(count, 0);
  std::vector<int64_t> v = ctx.node().GetInts(name);
  if (v.size() != count) return ctx.Error("attribute '", name, "' has ", v.size(), " entries; expected ", count);
  return v;
}

// Element t of `t` along its leading axis, as its own tensor.
Tensor LeadingSlice(const Tensor& t, int64_t index) {
  Shape shape(t.shape().begin() + 1, t.shape().end());
  Tensor out = Tensor::Empty(t.dtype(), shape);
  CopyTensorElements(t, index * out.size(), out, 0, out.size());
  return out;
}

// Opset 8: batch axis 0, sequence axis 1, optional sequence_lens.
absl::Status ComputeScan8(KernelContext& ctx) {
  auto setup = ParseScan(ctx, 1);
  if (!setup.ok()) return setup.status();
  const ScanSetup& s = *setup;
  auto dirs = ListAttr(ctx, "directions", s.n_in);
  if (!dirs.ok()) return dirs.status();
  std::vector<const Tensor*> states, inputs;
  for (size_t j = 0; j < s.n_state; ++j) states.push_back(&ctx.Input(s.first + j));
  for (size_t i = 0; i < s.n_in; ++i) inputs.push_back(&ctx.Input(s.first + s.n_state + i));
  const Tensor& x0 = *inputs[0];
  if (x0.rank() < 2)
    return ctx.Error("scan inputs need a batch and a sequence axis, got shape ", ShapeToString(x0.shape()));
  const int64_t batch = x0.dim(0), max_len = x0.dim(1);
  for (size_t i = 0; i < s.n_in; ++i) {
    const Tensor& x = *inputs[i];
    if (x.rank() < 2 || x.dim(0) != batch || x.dim(1) != max_len) {
      return ctx.Error("scan input ", i, " has shape ", ShapeToString(x.shape()), "; expected [", batch, ",", max_len,
                       ",...]");
    }
    if ((*dirs)[i] != 0 && (*dirs)[i] != 1) return ctx.Error("directions must be 0 or 1");
  }
  for (size_t j = 0; j < s.n_state; ++j) {
    if (states[j]->rank() < 1 || states[j]->dim(0) != batch) {
      return ctx.Error("state ", j, " has shape ", ShapeToString(states[j]->shape()),
                       "; its first axis must be the batch (", batch, ")");
    }
  }
  std::vector<int64_t> lens(static_cast<size_t>(batch), max_len);
  if (ctx.HasInput(0)) {
    const Tensor& sl = ctx.Input(0);
    auto v = ReadInt64s(sl);
    if (!v.ok() || sl.rank() != 1 || sl.dim(0) != batch) {
      return ctx.Error("sequence_lens must be an integer tensor of shape [", batch, "]");
    }
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t l = (*v)[b];
      if (l < 0 || l > max_len) return ctx.Error("sequence_lens[", b, "] = ", l, " is outside [0, ", max_len, "]");
      lens[b] = l;
    }
  }

  // Per batch entry: final states and scan outputs ([max_len, ...] each).
  std::vector<std::vector<Tensor>> final_states(s.n_state);
  std::vector<std::vector<Tensor>> scan_out(s.n_out);
  std::vector<Shape> out_elem_shape(s.n_out);
  std::vector<bool> out_known(s.n_out, false);
  std::vector<DType> out_dtype(s.n_out, DType::kUndefined);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Value> st;
    for (size_t j = 0; j < s.n_state; ++j) st.push_back(Value::FromTensor(LeadingSlice(*states[j], b)));
    std::vector<Tensor> x_b;
    for (size_t i = 0; i < s.n_in; ++i) x_b.push_back(LeadingSlice(*inputs[i], b));
    std::vector<ScanAccumulator> acc(s.n_out);
    for (int64_t t = 0; t < lens[b]; ++t) {
      std::vector<Value> args = std::move(st);
      for (size_t i = 0; i < s.n_in; ++i) {
        args.push_back(Value::FromTensor(LeadingSlice(x_b[i], (*dirs)[i] ? lens[b] - 1 - t : t)));
      }
      auto out = ctx.RunSubgraph("body", std::move(args));
      if (!out.ok()) return out.status();
      st.assign(std::make_move_iterator(out->begin()), std::make_move_iterator(out->begin() + s.n_state));
      for (size_t k = 0; k < s.n_out; ++k) {
        absl::Status status = acc[k].Add(ctx, k, std::move((*out)[s.n_state + k]));
        if (!status.ok()) return status;
      }
    }
    for (size_t j = 0; j < s.n_state; ++j) {
      if (st[j].kind != Value::Kind::kTensor) return ctx.Error("state ", j, " must stay a tensor");
      if (!final_states[j].empty() && (final_states[j].front().shape() != st[j].tensor.shape() ||
                                       final_states[j].front().dtype() != st[j].tensor.dtype())) {
        return ctx.Error("final state ", j, " differs in shape or type between batch entries");
      }
      final_states[j].push_back(std::move(st[j].tensor));
    }
    for (size_t k = 0; k < s.n_out; ++k) {
      if (acc[k].empty()) {
        scan_out[k].emplace_back();
        continue;
      }
      if (!out_known[k]) {
        out_known[k] = true;
        out_elem_shape[k] = acc[k].front().shape();
        out_dtype[k] = acc[k].front().dtype();
      } else if (out_elem_shape[k] != acc[k].front().shape() || out_dtype[k] != acc[k].front().dtype()) {
        return ctx.Error("scan output ", k, " differs in shape or type between batch entries");
      }
      scan_out[k].push_back(acc[k].Stack(false));
    }
  }

  for (size_t j = 0; j < s.n_state && j < ctx.num_outputs(); ++j) {
    if (!ctx.HasOutput(j)) continue;
    if (batch == 0) {
      ctx.SetOutput(j, Tensor::Zeros(states[j]->dtype(), states[j]->shape()));
      continue;
    }
    Shape shape = final_states[j].front().shape();
    shape.insert(shape.begin(), batch);
    Tensor out = Tensor::Empty(final_states[j].front().dtype(), shape);
    const int64_t block = final_states[j].front().size();
    for (int64_t b = 0; b < batch; ++b) CopyTensorElements(final_states[j][b], 0, out, b * block, block);
    ctx.SetOutput(j, std::move(out));
  }
  for (size_t k = 0; k < s.n_out && s.n_state + k < ctx.num_outputs(); ++k) {
    if (!ctx.HasOutput(s.n_state + k)) continue;
    if (!out_known[k]) {
      ctx.SetOutput(s.n_state + k, EmptyScanOutput(*s.body, s.n_state + k, {batch, max_len}));
      continue;
    }
    Shape shape = out_elem_shape[k];
    shape.insert(shape.begin(), {batch, max_len});
    // Positions past a batch entry's length stay zero.
    Tensor out = Tensor::Zeros(out_dtype[k], shape);
    const int64_t block = NumElements(out_elem_shape[k]);
    for (int64_t b = 0; b < batch; ++b) {
      const Tensor& part = scan_out[k][b];
      if (part.defined()) CopyTensorElements(part, 0, out, b * max_len * block, part.size());
    }
    ctx.SetOutput(s.n_state + k, std::move(out));
  }
  return absl::OkStatus();
}

// Opset 9 and later: no batch axis; per-input scan axes and directions,
// per-output axes and directions.
absl::Status ComputeScan9(KernelContext& ctx) {
  auto setup = ParseScan(ctx, 0);
  if (!setup.ok()) return setup.status();
  const ScanSetup& s = *setup;
  auto in_axes = ListAttr(ctx, "scan_input_axes", s.n_in);
  if (!in_axes.ok()) return in_axes.status();
  auto in_dirs = ListAttr(ctx, "scan_input_directions", s.n_in);
  if (!in_dirs.ok()) return in_dirs.status();
  auto out_axes = ListAttr(ctx, "scan_output_axes", s.n_out);
  if (!out_axes.ok()) return out_axes.status();
  auto out_dirs = ListAttr(ctx, "scan_output_directions", s.n_out);
  if (!out_dirs.ok()) return out_dirs.status();

  // Scan inputs with their scan axis moved to the front.
  std::vector<Tensor> xs;
  int64_t length = -1;
  for (size_t i = 0; i < s.n_in; ++i) {
    const Tensor& x = ctx.Input(s.n_state + i);
    if (x.rank() < 1) return ctx.Error("scan input ", i, " is a scalar; it needs a scan axis");
    auto axis = NormalizeAxis((*in_axes)[i], x.rank());
    if (!axis.ok()) return ctx.Error("scan_input_axes[", i, "]: ", axis.status().message());
    if ((*in_dirs)[i] != 0 && (*in_dirs)[i] != 1) return ctx.Error("scan_input_directions must be 0 or 1");
    const int64_t len = x.dim(static_cast<int>(*axis));
    if (length >= 0 && len != length) {
      return ctx.Error("scan input ", i, " has length ", len, " along its scan axis; scan input 0 has ", length);
    }
    length = len;
    xs.push_back(MoveAxisToFront(x, static_cast<int>(*axis)));
  }
  for (size_t k = 0; k < s.n_out; ++k) {
    if ((*out_dirs)[k] != 0 && (*out_dirs)[k] != 1) return ctx.Error("scan_output_directions must be 0 or 1");
  }

  std::vector<Value> st;
  for (size_t j = 0; j < s.n_state; ++j) st.push_back(ctx.InputValue(j));
  std::vector<ScanAccumulator> acc(s.n_out);
  for (int64_t t = 0; t < length; ++t) {
    std::vector<Value> args = std::move(st);
    for (size_t i = 0; i < s.n_in; ++i) {
      args.push_back(Value::FromTensor(LeadingSlice(xs[i], (*in_dirs)[i] ? length - 1 - t : t)));
    }
    auto out = ctx.RunSubgraph("body", std::move(args));
    if (!out.ok()) return out.status();
    st.assign(std::make_move_iterator(out->begin()), std::make_move_iterator(out->begin() + s.n_state));
    for (size_t k = 0; k < s.n_out; ++k) {
      absl::Status status = acc[k].Add(ctx, k, std::move((*out)[s.n_state + k]));
      if (!status.ok()) return status;
    }
  }

  for (size_t j = 0; j < s.n_state && j < ctx.num_outputs(); ++j) {
    if (ctx.HasOutput(j)) ctx.SetOutputValue(j, std::move(st[j]));
  }
  for (size_t k = 0; k < s.n_out && s.n_state + k < ctx.num_outputs(); ++k) {
    if (!ctx.HasOutput(s.n_state + k)) continue;
    Tensor stacked = acc[k].empty() ? EmptyScanOutput(*s.body, s.n_state + k, {0}) : acc[k].Stack((*out_dirs)[k] != 0);
    auto axis = NormalizeAxis((*out_axes)[k], stacked.rank());
    if (!axis.ok()) return ctx.Error("scan_output_axes[", k, "]: ", axis.status().message());
    ctx.SetOutput(s.n_state + k, MoveFrontAxisTo(stacked, static_cast<int>(*axis)));
  }
  return absl::OkStatus();
}

const OpTableRegistration kControlFlowOps({
    // If 1, 11, 13 (sequences), 16 (optionals), 19 and 21 (more types): one
    // kernel passes any Value through.
    {.name = "If", .since = 1, .compute = ComputeIf},
    // Loop 1, 11, 13 (loop-carried sequences), 16 (optionals), 19, 21.
    {.name = "Loop", .since = 1, .compute = ComputeLoop},
    {.name = "Scan", .since = 8, .until = 8, .compute = ComputeScan8},
    // Scan 9, 11 (negative axes), 16, 19, 21 (more types).
    {.name = "Scan", .since = 9, .compute = ComputeScan9},
});

}  // namespace
}  // namespace hepml::ops
