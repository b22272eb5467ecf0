#include "runtime/batch_split.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <optional>

#if defined(__linux__)
#include <sched.h>
#endif

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "graph/passes/shape_propagation.h"
#include "ops/gemm.h"
#include "oneapi/tbb/blocked_range.h"
#include "oneapi/tbb/parallel_for.h"
#include "oneapi/tbb/partitioner.h"

namespace hepml {
namespace {

// A slice's estimated work (multiply-adds plus elements written) below which
// the fork/join and the second core's cold caches cost more than they save.
constexpr double kMinSliceWork = 1 << 16;

enum class Kind { kOther, kBatched, kInvariant };

// Operators that compute each element of output 0 from the same element of
// input 0 (inputs 1.. must be invariant: Clip's bounds, CastLike's target,
// Dropout's ratio, a per-tensor quantisation scale).
const absl::flat_hash_set<std::string>& RowwiseUnary() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Cos", "Cosh", "Erf", "Exp",
      "Floor", "Log", "Neg", "Not", "Reciprocal", "Round", "Sigmoid", "Sign", "Sin", "Sinh", "Sqrt",
      "Tan", "Tanh", "Relu", "LeakyRelu", "Elu", "Selu", "Celu", "Gelu", "HardSigmoid", "HardSwish",
      "Softplus", "Softsign", "Mish", "ThresholdedRelu", "Shrink", "IsNaN", "IsInf", "Cast",
      "CastLike", "Identity", "Dropout", "Clip", "BitwiseNot"};
  return *ops;
}

// Multidirectional (numpy) broadcasting operators.
const absl::flat_hash_set<std::string>& Broadcasting() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Greater",
      "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor", "Where", "Mod", "PRelu",
      "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitShift"};
  return *ops;
}

// Per-sample (axis 0 = N) operators whose other inputs are weights.
const absl::flat_hash_set<std::string>& PerSample() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool",
      "GlobalMaxPool", "GlobalLpPool", "InstanceNormalization", "GroupNormalization"};
  return *ops;
}

const absl::flat_hash_set<std::string>& Reductions() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2",
      "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};
  return *ops;
}

// Operators whose results differ between calls with equal inputs.
bool IsRandom(const Node& node) {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
      "Bernoulli"};
  return ops->contains(node.op_type);
}

bool HasSubgraph(const Node& node) {
  for (const Attribute& a : node.attributes) {
    if (a.g || !a.graphs.empty()) return true;
  }
  return false;
}

// Operators whose rules below follow the samples along any axis (a
// Transpose before a recurrent layer puts them on axis 1). Every other
// operator is accepted only with its per-sample inputs batched on axis 0.
const absl::flat_hash_set<std::string>& FollowsAnyAxis() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "Softmax", "LogSoftmax", "Hardmax", "LpNormalization", "ArgMax", "ArgMin", "TopK", "Concat", "Split",
      "Slice", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Tile", "LayerNormalization", "LSTM", "GRU",
      "RNN", "QuantizeLinear", "DequantizeLinear"};
  return *ops;
}

class Analysis {
 public:
  explicit Analysis(const Graph& graph) : graph_(graph), shapes_(passes::ShapePropagation::Run(graph)) {}

  BatchSplitInfo Run() {
    BatchSplitInfo info;
    for (const auto& [name, t] : graph_.initializers) facts_[name] = {Kind::kInvariant, 0};
    bool any_fed = false;
    for (const ValueInfo& vi : graph_.inputs) {
      if (graph_.IsInitializer(vi.name)) continue;  // fed or not, a call that feeds it is not split
      any_fed = true;
      const TypeInfo& t = vi.type;
      if (t.kind != TypeInfo::Kind::kTensor || !t.has_shape || t.shape.empty()) {
        return No(absl::StrCat("input '", vi.name, "' is not a tensor of declared rank >= 1"));
      }
      if (t.dtype == DType::kString) return No(absl::StrCat("input '", vi.name, "' holds strings"));
      if (t.shape[0].known()) {
        return No(absl::StrCat("input '", vi.name, "' fixes its first dimension to ", t.shape[0].value));
      }
      facts_[vi.name] = {Kind::kBatched, 0};
    }
    if (!any_fed) return No("the model has no input to split");
    for (const Node& node : graph_.nodes) {
      std::string why = Visit(node);
      if (!why.empty()) return No(absl::StrCat(node.Describe(), ": ", why));
    }
    for (const ValueInfo& vi : graph_.outputs) {
      if (KindOf(vi.name) != Kind::kBatched) {
        return No(absl::StrCat("output '", vi.name, "' is not computed sample by sample from the inputs"));
      }
      if (AxisOf(vi.name) != 0) {
        return No(absl::StrCat("output '", vi.name, "' holds its samples along axis ", AxisOf(vi.name)));
      }
      if (vi.type.dtype == DType::kString || (vi.type.kind != TypeInfo::Kind::kTensor &&
                                              vi.type.kind != TypeInfo::Kind::kUnknown)) {
        return No(absl::StrCat("output '", vi.name, "' is not a numeric tensor"));
      }
    }
    info.separable = true;
    info.work_per_sample = std::max(1.0, work_per_sample_);
    info.min_rows_per_slice =
        heavy_ ? 1 : std::max<int64_t>(1, static_cast<int64_t>(kMinSliceWork / info.work_per_sample + 0.999));
    return info;
  }

 private:
  // What is known of a value: its kind and, when batched, the axis its
  // samples lie along.
  struct Fact {
    Kind kind = Kind::kOther;
    int axis = 0;
  };

  static BatchSplitInfo No(std::string reason) {
    BatchSplitInfo info;
    info.reason = std::move(reason);
    return info;
  }

  Kind KindOf(const std::string& name) const {
    auto it = facts_.find(name);
    return it == facts_.end() ? Kind::kOther : it->second.kind;
  }
  int AxisOf(const std::string& name) const {
    auto it = facts_.find(name);
    return it == facts_.end() ? 0 : it->second.axis;
  }
  bool BatchedOn(const std::string& name, int axis) const {
    return KindOf(name) == Kind::kBatched && AxisOf(name) == axis;
  }
  int Rank(const std::string& name) const { return shapes_.Rank(name); }
  std::optional<Shape> StaticShape(const std::string& name) const { return shapes_.StaticShape(name); }

  // The integer elements of an invariant input, when known at creation.
  std::optional<std::vector<int64_t>> KnownInts(const std::string& name) const {
    if (name.empty() || KindOf(name) != Kind::kInvariant) return std::nullopt;
    const passes::ValueFacts* f = shapes_.Find(name);
    if (f == nullptr || !f->value || !f->FullyKnown()) return std::nullopt;
    std::vector<int64_t> out;
    for (const passes::SymbolicInt& v : *f->value) out.push_back(*v.number);
    return out;
  }

  // Axes from attribute `attr` (opset < since_input) or input `input`.
  std::optional<std::vector<int64_t>> Axes(const Node& node, const char* attr, int since_input, size_t input) const {
    if (node.opset < since_input) {
      if (!node.HasAttribute(attr)) return std::nullopt;
      return node.GetInts(attr);
    }
    if (!node.HasInput(input)) return std::nullopt;
    return KnownInts(node.inputs[input]);
  }

  // "WHAT axis B (the samples' axis)": why a node that works along the
  // samples' axis is not split.
  static std::string AtSampleAxis(const char* what, int b) {
    return absl::StrCat(what, " axis ", b, " (the samples' axis)");
  }

  // `axis` of a rank-`rank` tensor counted from 0 (-1 when out of range).
  static int64_t Normalized(int64_t axis, int rank) {
    if (rank < 0) return -1;
    const int64_t a = axis < 0 ? axis + rank : axis;
    return a >= 0 && a < rank ? a : -1;
  }
  // True when `axis` of a rank-`rank` tensor is a valid axis other than the
  // sample axis `batch`.
  static bool NotBatchAxis(int64_t axis, int rank, int batch) {
    const int64_t a = Normalized(axis, rank);
    return a >= 0 && a != batch;
  }
  // Counts the axes (normalised for rank `rank`) before `batch`; -1 when one
  // is the sample axis or out of range.
  static int AxesBefore(const std::vector<int64_t>& axes, int rank, int batch) {
    int before = 0;
    for (int64_t axis : axes) {
      const int64_t a = Normalized(axis, rank);
      if (a < 0 || a == batch) return -1;
      before += a < batch ? 1 : 0;
    }
    return before;
  }

  bool InputsFrom(const Node& node, size_t first, Kind kind) const {
    for (size_t i = first; i < node.inputs.size(); ++i) {
      if (!node.inputs[i].empty() && KindOf(node.inputs[i]) != kind) return false;
    }
    return true;
  }

  // An invariant operand broadcast against a batched result of rank `rank`
  // with samples on `axis` must not vary along (or stretch) that axis.
  bool BroadcastsAlongBatch(const std::string& name, int rank, int axis = 0) const {
    const int r = Rank(name);
    if (r < 0 || r > rank) return false;
    const int d = axis - (rank - r);  // the operand's dim aligned with the sample axis
    if (d < 0) return true;
    auto shape = StaticShape(name);
    const TypeInfo& t = shapes_.Type(name);
    return (shape && (*shape)[d] == 1) ||
           (t.has_shape && static_cast<int>(t.shape.size()) > d && t.shape[d].value == 1);
  }

  void AddWork(double work) { work_per_sample_ += work; }
  // Output elements per sample of `value` (samples on `axis`), when its
  // other dims are known.
  void AddElements(const std::string& value, int axis) {
    const TypeInfo& t = shapes_.Type(value);
    if (!t.has_shape || t.shape.empty()) return;
    double n = 1;
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (static_cast<int>(d) == axis) continue;
      if (!t.shape[d].known()) return;
      n *= static_cast<double>(t.shape[d].value);
    }
    AddWork(n);
  }

  // Returns why `node` does not keep the samples independent, or "" after
  // marking its outputs.
  std::string Visit(const Node& node) {
    if (HasSubgraph(node)) return "control flow is not split";
    if (IsRandom(node)) return "a random operator is not split";
    bool any_batched = false;
    int axis = -1;  // the sample axis of the first per-sample input
    for (const std::string& in : node.inputs) {
      if (in.empty()) continue;
      const Kind k = KindOf(in);
      if (k == Kind::kOther) return absl::StrCat("input '", in, "' is not known to be per sample");
      if (k != Kind::kBatched) continue;
      any_batched = true;
      if (axis < 0) axis = AxisOf(in);
      if (AxisOf(in) != 0 && !FollowsAnyAxis().contains(node.op_type) && !RowwiseUnary().contains(node.op_type) &&
          !Broadcasting().contains(node.op_type)) {
        return absl::StrCat("input '", in, "' holds its samples along axis ", AxisOf(in),
                            " (this operator is split only with them on axis 0)");
      }
    }
    if (!any_batched) {
      // Only weights and constants: the same in every slice.
      for (const std::string& out : node.outputs)
        if (!out.empty()) facts_[out] = {Kind::kInvariant, 0};
      return "";
    }
    out_axes_.clear();
    std::string why = Rule(node, axis);
    if (!why.empty()) return why;
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const std::string& out = node.outputs[k];
      if (out.empty()) continue;
      const int out_axis = k < out_axes_.size() ? out_axes_[k] : (out_axes_.empty() ? axis : out_axes_.back());
      facts_[out] = {Kind::kBatched, out_axis};
      if (!counted_) AddElements(out, out_axis);
    }
    counted_ = false;
    return "";
  }

  // `b`: the sample axis of the node's first per-sample input. Rules that
  // move it set out_axes_ (one per output, or one for all).
  std::string Rule(const Node& node, int b) {
    const std::string& op = node.op_type;
    const bool hepml_domain = node.domain == "ai.hepml";
    if (!node.domain.empty() && !hepml_domain) return "operators outside ai.onnx and ai.hepml are not split";
    const std::string& x = node.inputs.empty() ? op : node.inputs[0];
    const bool x_batched = !node.inputs.empty() && KindOf(x) == Kind::kBatched;
    const int rank = node.inputs.empty() ? -1 : Rank(x);
    if (hepml_domain) {
      if (op == "FusedGemm") return Gemm(node, /*any_rank=*/true);
      if (op == "FusedConv") return PerSampleOp(node, x_batched, rank);
      return "not known to keep samples independent";
    }
    if (op == "Shape" || op == "Size") return "its value depends on the batch size";
    if (RowwiseUnary().contains(op) || op == "QuantizeLinear" || op == "DequantizeLinear") {
      if (!x_batched || !InputsFrom(node, 1, Kind::kInvariant)) return "only input 0 may vary per sample";
      if (op == "Dropout" && node.HasInput(2)) return "training mode may be on";
      if (op == "QuantizeLinear" || op == "DequantizeLinear") {
        auto scale = node.HasInput(1) ? StaticShape(node.inputs[1]) : std::nullopt;
        if (!scale) return "the scale's shape is not known";
        if (NumElements(*scale) > 1 && !NotBatchAxis(node.GetInt("axis", 1), rank, b)) {
          return AtSampleAxis("quantised along", b);
        }
      }
      return "";
    }
    if (Broadcasting().contains(op)) {
      int out_rank = 0;
      for (const std::string& in : node.inputs) {
        if (in.empty()) continue;
        const int r = Rank(in);
        if (r < 0) return absl::StrCat("the rank of '", in, "' is not known");
        out_rank = std::max(out_rank, r);
      }
      for (const std::string& in : node.inputs) {
        if (in.empty()) continue;
        if (KindOf(in) == Kind::kBatched && (Rank(in) != out_rank || AxisOf(in) != b)) {
          return absl::StrCat("'", in, "' is broadcast to a higher rank or holds its samples on another axis");
        }
        if (KindOf(in) == Kind::kInvariant && !BroadcastsAlongBatch(in, out_rank, b)) {
          return absl::StrCat("'", in, "' varies along the sample axis");
        }
      }
      return "";
    }
    if (op == "Gemm") return Gemm(node, /*any_rank=*/false);
    if (op == "MatMul") {
      if (!x_batched || rank < 2) return "only a batched A of rank >= 2 is split";
      if (!InputsFrom(node, 1, Kind::kInvariant)) return "B must be a constant";
      const int rb = Rank(node.inputs[1]);
      if (rb < 1 || rb > 2) return "B must have rank 1 or 2";
      if (auto w = StaticShape(node.inputs[1])) {
        AddWork(static_cast<double>(NumElements(*w)) * RowsPerSample(x, rank - 1));
      } else {
        heavy_ = true;
      }
      return "";
    }
    if (PerSample().contains(op)) return PerSampleOp(node, x_batched, rank);
    if (op == "BatchNormalization") {
      if (!x_batched || rank < 2 || !InputsFrom(node, 1, Kind::kInvariant)) return "only X may vary per sample";
      if (node.GetInt("training_mode", 0) != 0) return "training mode computes statistics over the batch";
      for (size_t i = 1; i < node.outputs.size(); ++i)
        if (!node.outputs[i].empty()) return "running statistics outputs are not split";
      return "";
    }
    if (op == "LayerNormalization") {
      if (!x_batched || !InputsFrom(node, 1, Kind::kInvariant)) return "only X may vary per sample";
      const int64_t first = Normalized(node.GetInt("axis", -1), rank);
      if (first < 0 || first <= b) return AtSampleAxis("normalises over", b);
      return "";
    }
    if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") {
      if (!x_batched) return "input is not per sample";
      if (node.opset < 13) {  // coerced to 2-D at `axis`: the samples must lie before it
        const int64_t first = Normalized(node.GetInt("axis", 1), rank);
        if (first < 0 || first <= b) return AtSampleAxis("normalises over", b);
        return "";
      }
      if (!NotBatchAxis(node.GetInt("axis", -1), rank, b)) return AtSampleAxis("normalises over", b);
      return "";
    }
    if (op == "LpNormalization" || op == "ArgMax" || op == "ArgMin") {
      if (!x_batched) return "input is not per sample";
      const int64_t def = op == "LpNormalization" ? -1 : 0;
      const int64_t axis = node.GetInt("axis", def);
      if (!NotBatchAxis(axis, rank, b)) return AtSampleAxis("works along", b);
      if (op != "LpNormalization" && node.GetInt("keepdims", 1) == 0 && Normalized(axis, rank) < b) {
        out_axes_ = {b - 1};
      }
      return "";
    }
    if (op == "TopK") {
      if (!x_batched || !InputsFrom(node, 1, Kind::kInvariant)) return "only X may vary per sample";
      if (!NotBatchAxis(node.GetInt("axis", -1), rank, b)) return AtSampleAxis("works along", b);
      return "";
    }
    if (op == "Concat") {
      for (const std::string& in : node.inputs) {
        if (!in.empty() && !BatchedOn(in, b)) return "every input must vary per sample, along the same axis";
      }
      if (!NotBatchAxis(node.GetInt("axis", 0), rank, b)) return AtSampleAxis("concatenates along", b);
      counted_ = true;
      return "";
    }
    if (op == "Split") {
      if (!x_batched || !InputsFrom(node, 1, Kind::kInvariant)) return "only the data may vary per sample";
      if (!NotBatchAxis(node.GetInt("axis", 0), rank, b)) return AtSampleAxis("splits along", b);
      counted_ = true;
      return "";
    }
    if (op == "Slice") {
      if (!x_batched || !InputsFrom(node, 1, Kind::kInvariant)) return "only the data may vary per sample";
      auto axes = node.opset < 10 ? (node.HasAttribute("axes") ? std::optional(node.GetInts("axes")) : std::nullopt)
                                  : (node.HasInput(3) ? KnownInts(node.inputs[3]) : std::nullopt);
      if (!axes) return "slices every axis from 0 (no constant axes)";
      for (int64_t a : *axes)
        if (!NotBatchAxis(a, rank, b)) return AtSampleAxis("slices", b);
      counted_ = true;
      return "";
    }
    if (op == "Reshape") {
      if (!x_batched || !InputsFrom(node, 1, Kind::kInvariant)) return "only the data may vary per sample";
      auto shape = node.HasInput(1) ? KnownInts(node.inputs[1]) : std::nullopt;
      if (!shape || shape->empty()) return "the target shape is not a known constant";
      counted_ = true;
      if ((*shape)[0] == 0 && node.GetInt("allowzero", 0) == 0) return "";  // axis 0 copied
      // [-1, d1, ...] keeps axis 0 when d1... hold exactly one sample.
      const TypeInfo& in = shapes_.Type(x);
      if ((*shape)[0] != -1 || !in.has_shape) return "may change axis 0";
      int64_t per_in = 1, per_out = 1;
      for (size_t d = 1; d < in.shape.size(); ++d) {
        if (!in.shape[d].known()) return "may change axis 0 (the input's sample shape is not known)";
        per_in *= in.shape[d].value;
      }
      for (size_t d = 1; d < shape->size(); ++d) {
        if ((*shape)[d] <= 0) return "may change axis 0";
        per_out *= (*shape)[d];
      }
      return per_in == per_out ? "" : "changes axis 0";
    }
    if (op == "Flatten") {
      if (!x_batched) return "input is not per sample";
      if (rank < 1 || Normalized(node.GetInt("axis", 1), rank) != 1) return "only axis 1 keeps axis 0";
      counted_ = true;
      return "";
    }
    if (op == "Transpose") {
      if (!x_batched) return "input is not per sample";
      std::vector<int64_t> perm = node.GetInts("perm");
      if (perm.empty()) {  // reversed axes
        if (rank < 1) return "the rank is not known";
        for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
      }
      const auto at = std::find(perm.begin(), perm.end(), b);
      if (at == perm.end()) return "the permutation is malformed";
      out_axes_ = {static_cast<int>(at - perm.begin())};
      counted_ = true;
      return "";
    }
    if (op == "Squeeze" || op == "Unsqueeze") {
      if (!x_batched || !InputsFrom(node, 1, Kind::kInvariant)) return "only the data may vary per sample";
      auto axes = Axes(node, "axes", 13, 1);
      if (!axes || axes->empty()) return "the axes are not known constants";
      counted_ = true;
      if (op == "Squeeze") {
        const int before = AxesBefore(*axes, rank, b);
        if (before < 0) return AtSampleAxis("changes", b);
        out_axes_ = {b - before};
        return "";
      }
      // Unsqueeze: the sample axis lands on the b-th position not inserted.
      if (rank < 0) return "the rank is not known";
      const int out_rank = rank + static_cast<int>(axes->size());
      std::vector<bool> inserted(out_rank, false);
      for (int64_t axis : *axes) {
        const int64_t a = Normalized(axis, out_rank);
        if (a < 0) return "the axes are out of range";
        inserted[a] = true;
      }
      for (int d = 0, kept = 0; d < out_rank; ++d) {
        if (inserted[d]) continue;
        if (kept++ == b) out_axes_ = {d};
      }
      return out_axes_.empty() ? "the axes are malformed" : "";
    }
    if (Reductions().contains(op)) {
      if (!x_batched || !InputsFrom(node, 1, Kind::kInvariant)) return "only the data may vary per sample";
      const int since = op == "ReduceSum" ? 13 : 18;
      auto axes = Axes(node, "axes", since, 1);
      if (!axes || axes->empty()) return "reduces over every axis (or axes not known)";
      const int before = AxesBefore(*axes, rank, b);
      if (before < 0) return AtSampleAxis("reduces over", b);
      if (node.GetInt("keepdims", 1) == 0) out_axes_ = {b - before};
      return "";
    }
    if (op == "Gather") {
      if (node.inputs.size() < 2) return "malformed";
      const int64_t axis = node.GetInt("axis", 0);
      const bool data_batched = x_batched && KindOf(node.inputs[1]) == Kind::kInvariant;
      const bool indices_batched = KindOf(x) == Kind::kInvariant && BatchedOn(node.inputs[1], 0);
      if (data_batched && NotBatchAxis(axis, rank, b)) {
        // Axes before the gathered one keep their place; it becomes the
        // indices' axes.
        const int ri = Rank(node.inputs[1]);
        if (ri < 0) return "the rank of the indices is not known";
        if (Normalized(axis, rank) < b) out_axes_ = {b + ri - 1};
        return "";
      }
      if (indices_batched && Normalized(axis, Rank(x)) == 0 && Rank(node.inputs[1]) >= 1) return "";
      return "gathers along the sample axis of per-sample data";
    }
    if (op == "Tile") {
      if (!x_batched || !InputsFrom(node, 1, Kind::kInvariant)) return "only the data may vary per sample";
      auto repeats = node.HasInput(1) ? KnownInts(node.inputs[1]) : std::nullopt;
      if (!repeats || static_cast<int>(repeats->size()) <= b || (*repeats)[b] != 1) {
        return AtSampleAxis("may repeat along", b);
      }
      return "";
    }
    if (op == "LSTM" || op == "GRU" || op == "RNN") return Recurrent(node);
    return "not known to keep samples independent";
  }

  // LSTM, GRU, RNN: X is [seq, batch, in] (layout 0) or [batch, seq, in];
  // the weights are constants; sequence_lens ([batch]) and the initial
  // states ([dirs, batch, h] or [batch, dirs, h]) absent or per sample.
  std::string Recurrent(const Node& node) {
    const bool seq_major = node.GetInt("layout", 0) == 0;
    const int x_axis = seq_major ? 1 : 0, state_axis = seq_major ? 1 : 0;
    const std::string& x = node.inputs[0];
    if (!BatchedOn(x, x_axis) || Rank(x) != 3) {
      return absl::StrCat("X must hold its samples along axis ", x_axis, " (layout ", seq_major ? 0 : 1, ")");
    }
    const size_t p_input = node.op_type == "LSTM" ? 7 : 99;
    for (size_t i = 1; i < node.inputs.size(); ++i) {
      const std::string& in = node.inputs[i];
      if (in.empty()) continue;
      if (i <= 3 || i == p_input) {
        if (KindOf(in) != Kind::kInvariant) return absl::StrCat("weight input '", in, "' must be a constant");
      } else if (i == 4) {
        if (!BatchedOn(in, 0) || Rank(in) != 1) return "sequence_lens must be given per sample";
      } else if (!BatchedOn(in, state_axis)) {
        return absl::StrCat("initial state '", in, "' must be given per sample");
      }
    }
    // Y: [seq, dirs, batch, h] or [batch, seq, dirs, h]; Y_h, Y_c: states.
    out_axes_ = {seq_major ? 2 : 0, state_axis, state_axis};
    const int gates = node.op_type == "LSTM" ? 4 : node.op_type == "GRU" ? 3 : 1;
    const TypeInfo& t = shapes_.Type(x);
    auto w = node.HasInput(1) ? StaticShape(node.inputs[1]) : std::nullopt;
    const int64_t h = node.GetInt("hidden_size", 0);
    const int seq_dim = seq_major ? 0 : 1;
    if (w && w->size() == 3 && h > 0 && t.has_shape && t.shape.size() == 3 && t.shape[seq_dim].known()) {
      // Per sample and step: gates * h * (in + h) multiply-adds per direction.
      AddWork(static_cast<double>(t.shape[seq_dim].value) * static_cast<double>((*w)[0]) * gates *
              static_cast<double>(h) * static_cast<double>((*w)[2] + h));
    } else {
      heavy_ = true;
    }
    return "";
  }

  // Rows a sample of `value` contributes to a GEMM: the product of dims 1..last-1.
  double RowsPerSample(const std::string& value, int last) const {
    const TypeInfo& t = shapes_.Type(value);
    double rows = 1;
    for (int d = 1; d < last && t.has_shape && d < static_cast<int>(t.shape.size()); ++d) {
      if (!t.shape[d].known()) return 1;
      rows *= static_cast<double>(t.shape[d].value);
    }
    return rows;
  }

  std::string Gemm(const Node& node, bool any_rank) {
    if (node.inputs.size() < 2) return "malformed";
    const std::string& a = node.inputs[0];
    const int rank = Rank(a);
    if (!BatchedOn(a, 0) || (any_rank ? rank < 2 : rank != 2)) return "only a batched A is split";
    if (node.GetInt("transA", 0) != 0) return "transA puts the samples in columns";
    if (!InputsFrom(node, 1, Kind::kInvariant)) return "B and C must be constants";
    if (node.HasInput(2) && !BroadcastsAlongBatch(node.inputs[2], 2)) return "C varies along the rows";
    if (auto w = StaticShape(node.inputs[1])) {
      AddWork(static_cast<double>(NumElements(*w)) * RowsPerSample(a, rank - 1));
    } else {
      heavy_ = true;
    }
    return "";
  }

  std::string PerSampleOp(const Node& node, bool x_batched, int rank) {
    if (!x_batched || rank < 2 || !InputsFrom(node, 1, Kind::kInvariant)) return "only X may vary per sample";
    if ((node.op_type == "MaxPool") && node.HasOutput(1)) return "its indices count across the batch";
    const bool conv = node.op_type == "Conv" || node.op_type == "ConvTranspose" || node.op_type == "FusedConv";
    if (conv) {
      // Multiply-adds per sample: weights times output positions.
      auto w = node.HasInput(1) ? StaticShape(node.inputs[1]) : std::nullopt;
      const TypeInfo& y = shapes_.Type(node.outputs.empty() ? "" : node.outputs[0]);
      double positions = 1;
      bool known = w.has_value() && y.has_shape;
      for (size_t d = 2; known && d < y.shape.size(); ++d) {
        if (!y.shape[d].known()) known = false;
        else positions *= static_cast<double>(y.shape[d].value);
      }
      if (known) AddWork(static_cast<double>(NumElements(*w)) * positions);
      else heavy_ = true;
    }
    return "";
  }

  const Graph& graph_;
  passes::ShapePropagation shapes_;
  absl::flat_hash_map<std::string, Fact> facts_;
  std::vector<int> out_axes_;  // set by a rule that moves the sample axis
  double work_per_sample_ = 0;
  bool heavy_ = false;    // some work per sample is unknown and probably large
  bool counted_ = false;  // the node moves data only: not counted as work
};

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins on `done` with a pause, then yields: a slice runs microseconds to
// milliseconds.
template <typename Done>
void WaitUntil(Done done) {
  for (int i = 0; !done(); ++i) {
    if (i < 4096) CpuRelax();
    else std::this_thread::yield();
  }
}

// A lock for sections of a few hundred nanoseconds that the slices, running
// in step, often enter at once: a std::mutex would put the loser to sleep
// (a futex wait and a wake-up, microseconds on a virtual machine).
class SpinLock {
 public:
  void lock() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      WaitUntil([&] { return !locked_.load(std::memory_order_relaxed); });
    }
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace

// Where the slices write the graph outputs: allocated before the slices as
// predicted from the crew's last call (Predict), or else by the first slice
// that produces each one (its dims past axis 0 are then known), with the
// whole batch's rows; every slice gets a view of its rows.
class OutputSink {
 public:
  // `outputs`: the graph's, for their number and names; they outlive the sink.
  OutputSink(const std::vector<ValueInfo>& outputs, int64_t batch)
      : full_(outputs.size()), batch_(batch), infos_(outputs) {}

  // A view of rows [row, row + shape[0]) of output k, or an own tensor when
  // the slice's output does not fit the one allocated (then Collect
  // reports it).
  Tensor Allocate(size_t k, DType dtype, const Shape& shape, int64_t row) {
    if (Published(k)) {
      if (!Fits(full_[k], dtype, shape)) return Tensor::Empty(dtype, shape);
      return View(k, shape, row);
    }
    std::lock_guard<SpinLock> lock(mu_);
    if (!Ensure(k, dtype, shape)) return Tensor::Empty(dtype, shape);
    return View(k, shape, row);
  }

  // Allocates, before any slice runs, the full outputs this call is
  // predicted to have: `last`'s (the crew's previous call's) dtypes and dims
  // past axis 0. Each of `last` that nobody else holds and has this call's
  // shape is filled again (the same memory every call: the rows each thread
  // writes stay in its cache); the others are left alone. The slices then
  // find their outputs allocated and never take the lock for them. A slice
  // whose output does not fit the prediction (the model's output dims moved
  // with the inputs) writes its own tensor, which Settle puts together.
  void Predict(std::vector<Tensor>& last) {
    for (size_t k = 0; k < full_.size() && k < last.size() && k < 64; ++k) {
      Tensor& old = last[k];
      if (!old.defined() || old.rank() < 1 || old.dtype() == DType::kString) continue;
      Shape whole = old.shape();
      whole[0] = batch_;
      full_[k] = old.sole_owner() && old.shape() == whole ? std::move(old) : Tensor::Empty(old.dtype(), whole);
      predicted_ |= uint64_t{1} << k;
    }
    published_.store(predicted_, std::memory_order_release);
  }

  // Puts a slice's value of output k in place (a copy, unless it already
  // is the view Allocate gave).
  absl::Status Collect(size_t k, const Value& value, int64_t row, int64_t rows, const std::string& name) {
    if (value.kind != Value::Kind::kTensor || !value.tensor.defined()) {
      return absl::InternalError(absl::StrCat("batch slices: output '", name, "' is not a tensor"));
    }
    const Tensor& t = value.tensor;
    std::unique_lock<SpinLock> lock(mu_, std::defer_lock);
    if (!Published(k)) lock.lock();
    if (Predicted(k) && t.rank() >= 1 && t.dim(0) == rows && !Fits(full_[k], t.dtype(), t.shape())) {
      lock.lock();
      pending_.push_back(Piece{k, row, t});
      return absl::OkStatus();
    }
    if (t.rank() < 1 || t.dim(0) != rows || t.dtype() == DType::kString || !Ensure(k, t.dtype(), t.shape())) {
      return absl::InternalError(absl::StrCat("batch slices: output '", name, "' of rows [", row, ", ", row + rows,
                                              ") is ", DTypeName(t.dtype()), ShapeToString(t.shape()),
                                              "; expected ", rows, " rows like the other slices' ",
                                              full_[k].defined() ? ShapeToString(full_[k].shape()) : "?"));
    }
    const size_t row_bytes = full_[k].nbytes() / static_cast<size_t>(batch_);
    uint8_t* dst = static_cast<uint8_t*>(full_[k].raw_mutable_data()) + row * row_bytes;
    if (t.raw_data() != dst) std::memcpy(dst, t.raw_data(), row_bytes * rows);
    return absl::OkStatus();
  }

  // Once every slice is done: the outputs that did not fit their
  // prediction, put together from the slices' own tensors. An output that
  // fit for some slices and not for others is an error (the same on every
  // later call).
  absl::Status Settle() {
    if (!settled_.ok() || pending_.empty()) return settled_;
    std::sort(pending_.begin(), pending_.end(),
              [](const Piece& a, const Piece& b) { return a.k != b.k ? a.k < b.k : a.row < b.row; });
    for (size_t i = 0; i < pending_.size();) {
      const size_t k = pending_[i].k;
      size_t end = i;
      int64_t covered = 0;
      for (; end < pending_.size() && pending_[end].k == k; ++end) covered += pending_[end].tensor.dim(0);
      const Tensor& first = pending_[i].tensor;
      Shape whole = first.shape();
      whole[0] = batch_;
      bool ok = covered == batch_;  // (string outputs are never predicted)
      for (size_t j = i; j < end && ok; ++j) ok = Fits(pending_[j].tensor, first.dtype(), whole);
      if (!ok) {
        settled_ = absl::InternalError(absl::StrCat("batch slices: output '", infos_[k].name, "' has ", covered, " of ",
                                                    batch_, " rows in ", DTypeName(first.dtype()),
                                                    ShapeToString(first.shape()), " and the others in ",
                                                    ShapeToString(full_[k].shape())));
        return settled_;
      }
      Tensor full = Tensor::Empty(first.dtype(), whole);
      const size_t row_bytes = full.nbytes() / static_cast<size_t>(batch_);
      for (size_t j = i; j < end; ++j) {
        std::memcpy(static_cast<uint8_t*>(full.raw_mutable_data()) + pending_[j].row * row_bytes,
                    pending_[j].tensor.raw_data(), pending_[j].tensor.nbytes());
      }
      full_[k] = std::move(full);
      i = end;
    }
    pending_.clear();
    return absl::OkStatus();
  }

  std::vector<Tensor>& outputs() { return full_; }
  // Whether Predict allocated output k before the slices.
  bool predicted(size_t k) const { return Predicted(k); }

 private:
  // Whether output k is allocated for good: from then on full_[k] is only
  // read, and the slices read it without the lock (outputs past the 64th
  // always take the lock).
  bool Published(size_t k) const { return k < 64 && (published_.load(std::memory_order_acquire) >> k & 1) != 0; }
  bool Predicted(size_t k) const { return k < 64 && (predicted_ >> k & 1) != 0; }

  static bool Fits(const Tensor& f, DType dtype, const Shape& shape) {
    if (shape.empty() || dtype == DType::kString) return false;
    if (f.dtype() != dtype || f.rank() != static_cast<int>(shape.size())) return false;
    for (size_t d = 1; d < shape.size(); ++d)
      if (f.dim(static_cast<int>(d)) != shape[d]) return false;
    return true;
  }

  // Allocates output k if it is not yet (under the lock, or published).
  bool Ensure(size_t k, DType dtype, const Shape& shape) {
    if (shape.empty() || dtype == DType::kString) return false;
    Tensor& f = full_[k];
    if (!f.defined()) {
      Shape whole = shape;
      whole[0] = batch_;
      f = Tensor::Empty(dtype, whole);
      if (k < 64) published_.fetch_or(uint64_t{1} << k, std::memory_order_release);
      return true;
    }
    return Fits(f, dtype, shape);
  }

  // The full tensor outlives every slice's frame (it is returned after the
  // parallel region), so the view needs no reference of its own.
  Tensor View(size_t k, const Shape& shape, int64_t row) {
    const size_t row_bytes = batch_ > 0 ? full_[k].nbytes() / static_cast<size_t>(batch_) : 0;
    uint8_t* data = static_cast<uint8_t*>(full_[k].raw_mutable_data()) + row * row_bytes;
    return Tensor::Wrap(full_[k].dtype(), shape, data);
  }

  struct Piece {  // a slice's own tensor for an output that missed its prediction
    size_t k;
    int64_t row;
    Tensor tensor;
  };

  SpinLock mu_;
  std::atomic<uint64_t> published_{0};  // bit k: full_[k] allocated for good
  uint64_t predicted_ = 0;              // bit k: full_[k] allocated by Predict (set before the slices)
  std::vector<Tensor> full_;
  const int64_t batch_;
  std::vector<Piece> pending_;  // under mu_
  const std::vector<ValueInfo>& infos_;
  absl::Status settled_;
};

namespace {

// One slice's view of the sink: its rows start at `row`.
class SliceRows final : public SliceOutputs {
 public:
  SliceRows(OutputSink& sink, int64_t row) : sink_(sink), row_(row) {}
  Tensor Allocate(size_t output, DType dtype, const Shape& shape) override {
    return sink_.Allocate(output, dtype, shape, row_);
  }

 private:
  OutputSink& sink_;
  const int64_t row_;
};

// Rows [row, row + rows) of `t` (axis 0), sharing its memory. The caller's
// input outlives the slice (Run holds it until the parallel region ends).
Tensor RowsOf(const Tensor& t, int64_t row, int64_t rows) {
  Shape shape = t.shape();
  const size_t row_bytes = shape[0] > 0 ? t.nbytes() / static_cast<size_t>(shape[0]) : 0;
  shape[0] = rows;
  const uint8_t* data = static_cast<const uint8_t*>(t.raw_data()) + row * row_bytes;
  return Tensor::Wrap(t.dtype(), std::move(shape), const_cast<uint8_t*>(data));
}

}  // namespace

BatchSplitInfo AnalyzeBatchSplit(const Graph& graph) { return Analysis(graph).Run(); }

namespace {

// The fp32 GEMM's register tile rows.
int64_t BatchSliceAlignment() {
  static const int64_t align = std::max(1, ops::GemmF32KernelShape().mr);
  return align;
}

// Slices of `batch` rows start at multiples of this: the GEMM's exact rows
// when they divide the batch (every slice's tiles, and the whole batch's,
// then hold multiples of them: see GemmKernelShape), else its tile rows.
int64_t SliceGranule(int64_t batch) {
  static const int64_t exact = std::max(1, ops::GemmF32KernelShape().exact_rows);
  return batch % exact == 0 ? exact : BatchSliceAlignment();
}

}  // namespace

int NumBatchSlices(int64_t batch, int concurrency, int64_t min_rows_per_slice) {
  if (concurrency <= 1 || batch < 2) return 1;
  // Every slice more than two row tiles: the GEMM then picks the same driver
  // for a slice as for the whole batch (it differs at 2 tiles or fewer).
  const int64_t align = BatchSliceAlignment();
  const int64_t min_rows = std::max<int64_t>(min_rows_per_slice, 2 * align + 1);
  // Boundaries move by up to align / 2 rows when rounded (SliceBegin).
  const int64_t by_rows = batch / (min_rows + align);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(concurrency, by_rows)));
}

int64_t SliceBegin(int64_t batch, int slices, int s) {
  if (s >= slices) return batch;
  const int64_t align = SliceGranule(batch);
  const int64_t target = batch * s / slices;
  return std::min(batch, (target + align / 2) / align * align);
}

// ---- OffCpu ----

OffCpu::~OffCpu() {
#if defined(__linux__)
  if (moved_) sched_setaffinity(0, sizeof(allowed_), &allowed_);
#endif
}

bool OffCpu::Leave(int cpu) {
#if defined(__linux__)
  if (!moved_ && sched_getaffinity(0, sizeof(allowed_), &allowed_) != 0) return false;
  if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed_) || CPU_COUNT(&allowed_) < 2) return false;
  cpu_set_t others = allowed_;
  CPU_CLR(cpu, &others);
  if (sched_setaffinity(0, sizeof(others), &others) != 0) return false;
  moved_ = true;
  return true;
#else
  (void)cpu;
  return false;
#endif
}

// ---- SliceCrew ----

// A call opens and closes by bumping `gen` (odd while open), with its words
// written before it opens. A worker that sees a call open copies its words,
// task and size, then reads `gen` again: the copy is the call's when `gen`
// has not moved (a sequence lock). Slices 1.. are then claimed through
// `claim`, which holds the generation of the call whose slices were last
// claimed and the next slice to take: a claim succeeds only for a call
// still open (a slice of it unclaimed means the call cannot be over), so a
// worker touches a call's task only for a slice it holds, and the caller,
// which waits for every slice to be done, keeps the call alive meanwhile.
// The caller leaves `claim` alone unless a slice's flag (`claimed`) says
// no worker took it: the worker that claimed the last call's slices then
// finds the line in its own cache, and starting a slice costs one transfer
// of a line between the CPUs (the call's words), not two.
// Each group of fields below that one side writes lies on lines of its own
// (kThreadApart: not beside a line the other side writes either).
struct alignas(kThreadApart) SliceCrew::State {
  explicit State(std::chrono::microseconds s) : spin(s) {}
  // What waiting workers poll, alone on its cache line with the call's words.
  alignas(kThreadApart) std::atomic<uint64_t> gen{0};
  std::atomic<uint64_t> words[kWords]{};
  // The call's task and size: written by the caller only where they change.
  alignas(kThreadApart) const std::chrono::microseconds spin;
  std::atomic<Task*> task{nullptr};
  std::atomic<int> slices{0};
  std::atomic<int> caller_cpu{-1};  // where the last call started
  std::atomic<bool> stop{false};
  // The claims: (generation << 16) | the next slice to take.
  alignas(kThreadApart) std::atomic<uint64_t> claim{0};
  // What the caller reads at the end of a call, on one line.
  // Slices 1.. finished, over all calls: the caller does not reset it (a
  // write to this line before each call would cost one more transfer).
  alignas(kThreadApart) std::atomic<uint32_t> done{0};
  std::atomic<bool> caller_sleeps{false};  // the caller waits on `done` in the kernel
  std::atomic<bool> failed{false};         // some slice of the call failed
  std::atomic<int64_t> end1{0};            // when slice 1 ended (steady clock, ns)
  std::atomic<uint64_t> claimed[kFlagged]{};  // slice s: the generation of the last call it was claimed in
  // Counts of workers: written as they come, go and sleep.
  alignas(kThreadApart) std::atomic<int> waiting{0};  // workers waiting for a call
  std::atomic<int> sleepers{0};             // workers asleep on `wake` (see Help)
  // The caller's own.
  alignas(kThreadApart) std::mutex busy;      // one call at a time
  std::atomic<double> share{0.5};   // slice 0's part of the rows when there are two
  std::atomic<int64_t> split{-1};   // the row SplitRow gave last
  uint32_t done_before = 0;         // `done` when the last call ended
  std::mutex sleep_mu;
  std::condition_variable wake;
};

namespace {

// The CPU this thread runs on, or -1 where the system cannot say.
int CurrentCpu() {
#if defined(__linux__)
  return sched_getcpu();
#else
  return -1;
#endif
}

}  // namespace

// The most the split between two slices moves per call (Observe).
constexpr double kShareStep = 0.004;
// How long a caller spins on the slices it did not run before it sleeps.
constexpr std::chrono::microseconds kCallerSpin{20};
// How long a worker that left the caller's CPU to it sleeps waiting for the
// next call before it gives its thread back to the arena.
constexpr std::chrono::milliseconds kSleepLimit{100};

SliceCrew::SliceCrew(std::chrono::microseconds spin) : state_(std::make_shared<State>(spin)) {}

SliceCrew::~SliceCrew() {
  State& st = *state_;
  st.stop = true;
  std::lock_guard<std::mutex> lock(st.sleep_mu);
  st.wake.notify_all();
}

int SliceCrew::Claim(State& st, uint64_t g, int slices) {
  uint64_t cur = st.claim.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t claimed_gen = cur >> 16;
    if (claimed_gen > g) return -1;  // a later call's: this one is over
    const int s = claimed_gen == g ? static_cast<int>(cur & 0xffff) : 1;
    if (s >= slices) return -1;
    if (st.claim.compare_exchange_weak(cur, g << 16 | static_cast<uint64_t>(s + 1))) {
      if (s < kFlagged) st.claimed[s].store(g, std::memory_order_relaxed);
      return s;
    }
  }
}

void SliceCrew::RunClaimed(State& st, Task& task, int s, int slices, const Words& words) {
  const bool ok = task.RunSlice(s, slices, words);
  if (s == 1) {
    st.end1.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch()).count(),
                  std::memory_order_relaxed);
  }
  if (!ok) st.failed.store(true, std::memory_order_relaxed);
  st.done.fetch_add(1);  // after the time and the failure: the caller reads them once it sees this
}

void SliceCrew::Help(const std::shared_ptr<State>& state) {
  State& st = *state;
  using Clock = std::chrono::steady_clock;
  st.waiting.fetch_add(1);
  uint64_t served = 0;
  auto deadline = Clock::now() + st.spin;
  OffCpu off_cpu;
  for (int idle = 0;; ++idle) {
    const uint64_t g = st.gen.load(std::memory_order_acquire);
    if ((g & 1) != 0 && g != served) {
      served = g;
      Words words;
      for (int i = 0; i < kWords; ++i) words[i] = st.words[i].load(std::memory_order_relaxed);
      Task* task = st.task.load(std::memory_order_relaxed);
      const int slices = st.slices.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (st.gen.load(std::memory_order_relaxed) == g) {  // the copy is the call's
        for (int s; (s = Claim(st, g, slices)) >= 0;) {
          RunClaimed(st, *task, s, slices, words);
          if (st.caller_sleeps.load()) st.done.notify_all();
        }
      }
      deadline = Clock::now() + st.spin;
      idle = 0;
      continue;
    }
    if (st.stop.load(std::memory_order_relaxed)) break;
    if ((idle & 63) == 0) {
      if (Clock::now() >= deadline) break;
      // Spinning on the caller's own CPU (where the scheduler may have put
      // this worker) only takes that CPU from the caller, which then runs
      // every slice itself at a fraction of its speed. Keep off it while
      // helping; where there is no other CPU, sleep until the next call.
      const int cpu = CurrentCpu();
      if (cpu >= 0 && cpu == st.caller_cpu.load(std::memory_order_relaxed) && !off_cpu.Leave(cpu)) {
        std::unique_lock<std::mutex> lock(st.sleep_mu);
        st.sleepers.fetch_add(1);
        const bool called = st.wake.wait_for(lock, kSleepLimit, [&] { return st.gen.load() != g || st.stop.load(); });
        st.sleepers.fetch_sub(1);
        if (!called) break;
        deadline = Clock::now() + st.spin;
        idle = 0;
        continue;
      }
    }
    CpuRelax();
  }
  st.waiting.fetch_sub(1);
}

int64_t SliceCrew::SplitRow(int64_t batch) const {
  const int64_t tile = BatchSliceAlignment(), granule = SliceGranule(batch);
  // Each slice more than two tiles, on a multiple of the granule.
  const int64_t least = (2 * tile + granule) / granule * granule;
  const int64_t most = std::max(least, (batch - 2 * tile - 1) / granule * granule);
  const double target = state_->share.load(std::memory_order_relaxed) * static_cast<double>(batch);
  // The last split while the share stays within a granule of it: a split
  // that moves back and forth with the noise of the timings would cost each
  // move the slices' planned memory (made for their rows).
  const int64_t last = state_->split.load(std::memory_order_relaxed);
  if (last >= least && last <= most && last % granule == 0 &&
      std::abs(target - static_cast<double>(last)) < static_cast<double>(granule)) {
    return last;
  }
  const int64_t row = std::clamp<int64_t>((static_cast<int64_t>(target) + granule / 2) / granule * granule, least, most);
  state_->split.store(row, std::memory_order_relaxed);
  return row;
}

void SliceCrew::Observe(int64_t rows0, double seconds0, int64_t rows1, double seconds1) {
  if (rows0 <= 0 || rows1 <= 0 || seconds0 <= 0 || seconds1 <= 0) return;
  const double speed0 = rows0 / seconds0, speed1 = rows1 / seconds1;
  const double balanced = speed0 / (speed0 + speed1);  // equal finishing times
  const double share = state_->share.load(std::memory_order_relaxed);
  // Slowly, and by at most 0.4% of the rows per call: one call's timings
  // are noisy on a virtual machine, a slice interrupted once (the host took
  // its vCPU for tens of microseconds) says nothing of the threads' speeds,
  // and a split moved by noise costs the next calls their balance. A change
  // of speed that lasts (another guest on a core, for seconds or minutes)
  // moves it within a hundred calls.
  const double moved = std::clamp(0.95 * share + 0.05 * balanced, share - kShareStep, share + kShareStep);
  state_->share.store(std::clamp(moved, 0.25, 0.75), std::memory_order_relaxed);
}

bool SliceCrew::Run(oneapi::tbb::task_arena& arena, int slices, Task& task, absl::FunctionRef<void(Words&)> open,
                    absl::FunctionRef<void()> close, Outcome* outcome) {
  State& st = *state_;
  std::unique_lock<std::mutex> lock(st.busy, std::try_to_lock);
  if (!lock.owns_lock()) return false;
  Words words{};
  open(words);
  // The last call's close before this call's words (the sequence lock).
  std::atomic_thread_fence(std::memory_order_release);
  // The call's task and size are written only where they change (they
  // seldom do): the workers then keep their copy of that line.
  if (st.task.load(std::memory_order_relaxed) != &task) st.task.store(&task, std::memory_order_relaxed);
  if (st.slices.load(std::memory_order_relaxed) != slices) st.slices.store(slices, std::memory_order_relaxed);
  if (const int cpu = CurrentCpu(); st.caller_cpu.load(std::memory_order_relaxed) != cpu) {
    st.caller_cpu.store(cpu, std::memory_order_relaxed);
  }
  for (int i = 0; i < kWords; ++i) st.words[i].store(words[i], std::memory_order_relaxed);
  if (st.failed.load(std::memory_order_relaxed)) st.failed.store(false, std::memory_order_relaxed);
  const uint64_t g = st.gen.fetch_add(1) + 1;  // open
  if (st.sleepers.load() > 0) {  // after opening: a worker going to sleep now sees the call
    std::lock_guard<std::mutex> sleep_lock(st.sleep_mu);
    st.wake.notify_all();
  }
  for (int missing = slices - 1 - st.waiting.load(); missing > 0; --missing) {
    arena.enqueue([state = state_] { Help(state); });
  }
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const bool ok0 = task.RunSlice(0, slices, words);
  auto now = Clock::now();
  outcome->seconds[0] = std::chrono::duration<double>(now - t0).count();
  // Then the slices no worker took: each worker flags the slices it claims,
  // and only where a flag is missing does the caller go to the claims.
  bool taken = slices <= kFlagged, ran1 = false;
  for (int s = 1; taken && s < slices; ++s) taken = st.claimed[s].load(std::memory_order_relaxed) == g;
  if (!taken) {
    for (int s; (s = Claim(st, g, slices)) >= 0;) {
      ran1 |= s == 1;
      RunClaimed(st, task, s, slices, words);
    }
    now = Clock::now();
  }
  // Every slice is taken: close the call now, while the workers still run
  // theirs, so that the close is not one more transfer of a line between
  // the CPUs after the last slice ends.
  st.gen.store(g + 1, std::memory_order_release);
  // Spin for a few microseconds (the usual wait), then sleep: a caller
  // spinning for long on a slice that is still running takes the core's
  // resources from it where two vCPUs share one core. The helper wakes it
  // only when it sleeps: a notify is a system call.
  const auto spin_until = now + kCallerSpin;
  // Every slice taken in a call is done before the call ends, so `done`
  // moves only in the call that took the slice.
  const uint32_t all_done = st.done_before + static_cast<uint32_t>(slices - 1);
  for (int i = 0; st.done.load() != all_done; ++i) {
    if ((i & 63) == 63 && Clock::now() >= spin_until) {
      st.caller_sleeps.store(true);
      for (uint32_t d; (d = st.done.load()) != all_done;) st.done.wait(d);
      st.caller_sleeps.store(false);
      break;
    }
    CpuRelax();
  }
  st.done_before = all_done;
  if (slices > 1 && !ran1) {
    const Clock::time_point end1{std::chrono::nanoseconds(st.end1.load(std::memory_order_relaxed))};
    outcome->seconds[1] = std::chrono::duration<double>(end1 - t0).count();
  }
  outcome->failed = !ok0 || st.failed.load(std::memory_order_relaxed);
  close();
  return true;
}

// ---- batch slices ----

namespace {

// Runs one slice's rows (`part`) through the plan on this thread with its
// own planned memory, then puts each graph output k in place (`collect`).
absl::Status RunSliceRows(const GraphPlan& plan, std::vector<Value> part, ExecutionContext& ctx,
                          MemoryPlanner& memory, absl::FunctionRef<absl::Status(size_t, const Value&)> collect) {
  thread_local std::vector<int64_t> signature;
  MemoryPlanner::Signature(part, &signature);
  ctx.allocator = memory.Begin(signature);
  absl::Status status;
  try {
    auto out = ExecutePlan(plan, std::move(part), ctx);
    if (!out.ok()) {
      status = out.status();
    } else {
      for (size_t k = 0; k < out->size() && status.ok(); ++k) status = collect(k, (*out)[k]);
    }
  } catch (const std::bad_alloc&) {
    status = absl::ResourceExhaustedError("out of memory allocating the outputs of a batch slice");
  }  // the slice's values are gone before its planned memory goes back
  memory.End(ctx.allocator);
  return status;
}

// Whether a slice takes rows of this input (a fed tensor; the analysis
// puts every fed input's samples on axis 0).
bool Sliced(const Value& v) { return v.kind == Value::Kind::kTensor && v.tensor.defined() && v.tensor.rank() >= 1; }

}  // namespace

// The task of a Session's crew. What a slice needs of a call comes in the
// crew's words: the batch, the split, the epoch of the inputs' and the
// predicted outputs' dtypes and dims, and their addresses where they fit.
// The rest each slice keeps from the last call of the same epoch. The
// call's own structures (`call_`, on the caller's stack) are read by a
// worker only to learn a new epoch, for addresses that do not fit the
// words, for an output that does not fit its prediction, and for errors.
class CrewSlices::Task final : public SliceCrew::Task {
 public:
  Task(const GraphPlan& plan, MemoryPlanner& memory, int max_slices)
      : plan_(plan), memory_(memory), slices_(static_cast<size_t>(std::max(max_slices, 2))) {}

  // A call, set up by Open on the caller (holding the crew).
  struct Call {
    const std::vector<Value>* inputs = nullptr;
    int64_t batch = 0;
    int64_t split = -1;  // the first row of slice 1, or -1: SliceBegin
    const ExecutionContext* exec = nullptr;
    OutputSink* sink = nullptr;
    absl::Status* errors = nullptr;  // one per slice
  };

  // On the caller, before the slices: the call's outputs predicted from
  // the last call's, its epoch, and its words.
  void Open(const Call& call, SliceCrew::Words& words) {
    call_ = call;
    call.sink->Predict(outputs_);
    const std::vector<Value>& in = *call.inputs;
    const std::vector<Tensor>& out = call.sink->outputs();
    form_.clear();
    auto add = [&](bool present, const Tensor& t) {
      form_.push_back(present);
      if (!present) return;
      form_.push_back(static_cast<int64_t>(t.dtype()));
      form_.push_back(t.rank());
      form_.insert(form_.end(), t.shape().begin() + 1, t.shape().end());
    };
    for (const Value& v : in) add(Sliced(v), v.tensor);
    for (size_t k = 0; k < out.size(); ++k) add(call.sink->predicted(k), out[k]);
    if (form_ != last_form_) {
      last_form_.swap(form_);
      ++epoch_;
    }
    const bool direct = in.size() + out.size() <= kAddressWords;
    words[0] = static_cast<uint64_t>(call.batch);
    words[1] = static_cast<uint64_t>(call.split + 1);
    words[2] = epoch_ | (direct ? kDirect : 0);
    if (!direct) return;
    size_t w = 3;
    for (const Value& v : in) words[w++] = Sliced(v) ? Address(v.tensor.raw_data()) : 0;
    for (size_t k = 0; k < out.size(); ++k) words[w++] = call.sink->predicted(k) ? Address(out[k].raw_data()) : 0;
  }

  // On the caller after every slice: the call's outputs, kept for the next.
  void Close() {
    if (call_.sink->Settle().ok()) outputs_ = call_.sink->outputs();  // shared with the caller's results
    else outputs_.clear();
  }

  bool RunSlice(int s, int slices, const SliceCrew::Words& words) override {
    Slice& slice = slices_[static_cast<size_t>(s)];
    const int64_t batch = static_cast<int64_t>(words[0]);
    const int64_t split = static_cast<int64_t>(words[1]) - 1;
    auto begin = [&](int i) { return split < 0 || i != 1 ? SliceBegin(batch, slices, i) : split; };
    const int64_t row = begin(s), rows = begin(s + 1) - row;
    if (slice.epoch != (words[2] & ~kDirect)) Learn(slice, words[2] & ~kDirect);
    absl::Status status = Rows(slice, s, row, rows, words);
    if (status.ok()) return true;
    call_.errors[s] = std::move(status);
    return false;
  }

 private:
  static constexpr size_t kAddressWords = SliceCrew::kWords - 3;
  static constexpr uint64_t kDirect = uint64_t{1} << 63;  // in words[2]: the addresses are words[3..]

  static uint64_t Address(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }
  static uint8_t* AtAddress(uint64_t word) { return reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(word)); }

  // A tensor a slice takes rows of: its dtype and dims (axis 0 set per
  // call) and the bytes of one row.
  struct Form {
    bool present = false;  // inputs: a tensor was given; outputs: predicted
    DType dtype = DType::kUndefined;
    Shape shape;
    size_t row_bytes = 0;
  };
  // The form of `t`, whose axis 0 has `rows` rows.
  static Form FormOf(const Tensor& t, int64_t rows) {
    return Form{true, t.dtype(), t.shape(), rows > 0 ? t.nbytes() / static_cast<size_t>(rows) : 0};
  }
  // What slice s keeps between calls, on lines of its own.
  struct alignas(kThreadApart) Slice {
    uint64_t epoch = 0;
    std::vector<Form> inputs, outputs;
  };

  // Where one slice's graph outputs go: rows of the call's predicted full
  // outputs, else whatever the call's sink gives.
  class Views final : public SliceOutputs {
   public:
    Views(const Task& task, const Slice& slice, const SliceCrew::Words& words, int64_t row, int64_t rows)
        : task_(task), slice_(slice), words_(words), row_(row), rows_(rows) {}
    Tensor Allocate(size_t k, DType dtype, const Shape& shape) override {
      if (uint8_t* data = View(k, dtype, shape)) return Tensor::Wrap(dtype, shape, data);
      return task_.call_.sink->Allocate(k, dtype, shape, row_);
    }
    // Whether `value` is already in place: the view Allocate gave.
    bool Placed(size_t k, const Value& value) const {
      if (value.kind != Value::Kind::kTensor || !value.tensor.defined()) return false;
      const uint8_t* data = View(k, value.tensor.dtype(), value.tensor.shape());
      return data != nullptr && data == value.tensor.raw_data();
    }

   private:
    // Rows [row, row + rows) of full output k when it was predicted in
    // `dtype` and `shape`'s dims past axis 0; null otherwise.
    uint8_t* View(size_t k, DType dtype, const Shape& shape) const {
      if (k >= slice_.outputs.size()) return nullptr;
      const Form& f = slice_.outputs[k];
      if (!f.present || f.dtype != dtype || shape.size() != f.shape.size() || shape.empty() || shape[0] != rows_) {
        return nullptr;
      }
      for (size_t d = 1; d < shape.size(); ++d)
        if (shape[d] != f.shape[d]) return nullptr;
      uint8_t* base = (words_[2] & kDirect) != 0 ? AtAddress(words_[3 + slice_.inputs.size() + k])
                                                  : static_cast<uint8_t*>(task_.call_.sink->outputs()[k].raw_mutable_data());
      return base + row_ * f.row_bytes;
    }

    const Task& task_;
    const Slice& slice_;
    const SliceCrew::Words& words_;
    const int64_t row_, rows_;
  };

  // The forms of a new epoch, from the call's own structures.
  void Learn(Slice& slice, uint64_t epoch) const {
    const std::vector<Value>& in = *call_.inputs;
    slice.inputs.assign(in.size(), Form{});
    for (size_t i = 0; i < in.size(); ++i) {
      if (Sliced(in[i])) slice.inputs[i] = FormOf(in[i].tensor, in[i].tensor.dim(0));
    }
    const std::vector<Tensor>& out = call_.sink->outputs();
    slice.outputs.assign(out.size(), Form{});
    for (size_t k = 0; k < out.size(); ++k) {
      if (call_.sink->predicted(k)) slice.outputs[k] = FormOf(out[k], call_.batch);
    }
    slice.epoch = epoch;
  }

  // Rows [row, row + rows) of the call through the plan.
  absl::Status Rows(const Slice& slice, int s, int64_t row, int64_t rows, const SliceCrew::Words& words) {
    const bool direct = (words[2] & kDirect) != 0;
    std::vector<Value> part(slice.inputs.size());
    for (size_t i = 0; i < part.size(); ++i) {
      const Form& f = slice.inputs[i];
      if (!f.present) continue;
      uint8_t* base = direct ? AtAddress(words[3 + i])
                             : static_cast<uint8_t*>(const_cast<void*>((*call_.inputs)[i].tensor.raw_data()));
      Shape shape = f.shape;
      shape[0] = rows;
      part[i] = Value::FromTensor(Tensor::Wrap(f.dtype, std::move(shape), base + row * f.row_bytes));
    }
    Views views(*this, slice, words, row, rows);
    ExecutionContext ctx;
    ctx.arena = nullptr;  // kernels run serially on this slice's thread
    ctx.concurrency = 1;
    if (s == 0) {  // the caller's slice
      ctx.profile = call_.exec->profile;
      ctx.start = call_.exec->start;
    }
    ctx.slice_outputs = &views;
    return RunSliceRows(plan_, std::move(part), ctx, memory_, [&](size_t k, const Value& value) {
      if (views.Placed(k, value)) return absl::OkStatus();
      return call_.sink->Collect(k, value, row, rows, plan_.graph->outputs[k].name);
    });
  }

  // What the slices read every call.
  const GraphPlan& plan_;
  MemoryPlanner& memory_;
  std::vector<Slice> slices_;  // by slice
  // The caller's, written every call (a worker reads the call only as the
  // class comment says): the call, the last call's full outputs, the forms
  // of the last epoch (none at first, so the first call opens epoch 1), the
  // epoch.
  alignas(kThreadApart) Call call_;
  std::vector<Tensor> outputs_;
  std::vector<int64_t> form_, last_form_{-1};
  uint64_t epoch_ = 0;
};

CrewSlices::CrewSlices(std::chrono::microseconds spin, const GraphPlan& plan, MemoryPlanner& memory, int max_slices)
    : task_(std::make_unique<Task>(plan, memory, max_slices)), crew_(spin) {}

CrewSlices::~CrewSlices() = default;

absl::StatusOr<std::vector<Value>> ExecuteBatchSlices(const GraphPlan& plan, const std::vector<Value>& inputs,
                                                      int64_t batch, int slices, const ExecutionContext& exec,
                                                      MemoryPlanner& memory, CrewSlices* crew) {
  OutputSink sink(plan.graph->outputs, batch);
  absl::InlinedVector<absl::Status, 4> errors(static_cast<size_t>(slices));
  bool ran = false;
  if (crew != nullptr && exec.arena != nullptr) {
    SliceCrew& c = crew->crew();
    CrewSlices::Task& task = crew->task();
    // Two slices: split where the threads' speeds say.
    const int64_t split = slices == 2 ? c.SplitRow(batch) : -1;
    SliceCrew::Outcome outcome;
    ran = c.Run(
        *exec.arena, slices, task,
        [&](SliceCrew::Words& words) { task.Open({&inputs, batch, split, &exec, &sink, errors.data()}, words); },
        [&] { task.Close(); }, &outcome);
    if (ran && split >= 0 && !outcome.failed) c.Observe(split, outcome.seconds[0], batch - split, outcome.seconds[1]);
  }
  if (!ran) {
    auto run_slice = [&](int s) {
      const int64_t row = SliceBegin(batch, slices, s), rows = SliceBegin(batch, slices, s + 1) - row;
      std::vector<Value> part(inputs.size());
      for (size_t i = 0; i < inputs.size(); ++i) {
        if (Sliced(inputs[i])) part[i] = Value::FromTensor(RowsOf(inputs[i].tensor, row, rows));
      }
      SliceRows slice(sink, row);
      ExecutionContext ctx;
      ctx.arena = nullptr;  // kernels run serially on this slice's thread
      ctx.concurrency = 1;
      ctx.profile = s == 0 ? exec.profile : nullptr;
      ctx.start = exec.start;
      ctx.slice_outputs = &slice;
      errors[static_cast<size_t>(s)] =
          RunSliceRows(plan, std::move(part), ctx, memory, [&](size_t k, const Value& value) {
            return sink.Collect(k, value, row, rows, plan.graph->outputs[k].name);
          });
    };
    auto all = [&] {
      oneapi::tbb::parallel_for(
          oneapi::tbb::blocked_range<int>(0, slices, 1),
          [&](const oneapi::tbb::blocked_range<int>& r) {
            for (int s = r.begin(); s < r.end(); ++s) run_slice(s);
          },
          oneapi::tbb::simple_partitioner());
    };
    // The caller is in the arena already unless it came with a crew (Session::Run).
    if (crew != nullptr && exec.arena != nullptr) exec.arena->execute(all);
    else all();
  }
  for (const absl::Status& e : errors) HEPML_RETURN_IF_ERROR(e);
  HEPML_RETURN_IF_ERROR(sink.Settle());
  std::vector<Value> outputs;
  outputs.reserve(sink.outputs().size());
  for (Tensor& t : sink.outputs()) outputs.push_back(Value::FromTensor(std::move(t)));
  return outputs;
}

}  // namespace hepml
