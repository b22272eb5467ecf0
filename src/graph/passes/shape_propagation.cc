#include "graph/passes/shape_propagation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "graph/passes/graph_util.h"
#include "ops/evaluate.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"

namespace hepml::passes {
namespace {

// Inputs larger than this are not evaluated ahead of time here (constant
// folding is fold-constants' work; this only does shape arithmetic).
constexpr int64_t kMaxEvaluatedElements = 4096;

bool IsTrackedDType(DType d) { return d == DType::kInt64 || d == DType::kInt32 || d == DType::kBool; }

// Operators cheap and deterministic enough to run on small known inputs.
bool IsEvaluable(const Node& node) {
  static const absl::flat_hash_set<std::string> kOps = {
      "Shape", "Size", "Gather", "Slice", "Concat", "Squeeze", "Unsqueeze", "Reshape", "Flatten",
      "Identity", "Cast", "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Equal", "Less", "Greater",
      "LessOrEqual", "GreaterOrEqual", "Where", "Not", "And", "Or", "Min", "Max", "Mod", "ReduceProd",
      "ReduceSum", "ReduceMax", "ReduceMin", "ConstantOfShape", "Constant", "Range", "Transpose"};
  return node.domain.empty() && kOps.contains(node.op_type);
}

std::optional<std::vector<SymbolicInt>> ValueOfTensor(const Tensor& t) {
  if (!IsTrackedDType(t.dtype()) || t.size() > kMaxSymbolicElements) return std::nullopt;
  std::vector<SymbolicInt> v;
  v.reserve(static_cast<size_t>(t.size()));
  for (int64_t i = 0; i < t.size(); ++i) {
    int64_t x = 0;
    switch (t.dtype()) {
      case DType::kInt64: x = t.data<int64_t>()[i]; break;
      case DType::kInt32: x = t.data<int32_t>()[i]; break;
      case DType::kBool: x = t.data<bool>()[i] ? 1 : 0; break;
      default: return std::nullopt;
    }
    v.push_back(SymbolicInt::Number(x));
  }
  return v;
}

// Number of elements of a fully known shape, or -1.
int64_t KnownCount(const TypeInfo& t) {
  if (t.kind != TypeInfo::Kind::kTensor || !t.has_shape) return -1;
  int64_t n = 1;
  for (const Dim& d : t.shape) {
    if (!d.known() || __builtin_mul_overflow(n, d.value, &n)) return -1;
  }
  return n;
}

Dim DimOf(const SymbolicInt& s) {
  if (s.known()) return *s.number >= 0 ? Dim{*s.number, ""} : Dim{};
  return Dim{-1, s.symbol};
}

// The product of dims, when it is a number or a single symbol (times ones).
std::optional<Dim> ProductDim(const std::vector<Dim>& dims) {
  int64_t n = 1;
  std::string symbol;
  for (const Dim& d : dims) {
    if (d.known()) {
      if (__builtin_mul_overflow(n, d.value, &n)) return std::nullopt;
    } else if (!d.param.empty() && symbol.empty()) {
      symbol = d.param;
    } else {
      return std::nullopt;
    }
  }
  if (symbol.empty()) return Dim{n, ""};
  if (n == 1) return Dim{-1, symbol};
  return std::nullopt;
}

class Propagator {
 public:
  Propagator(const Graph& graph, absl::flat_hash_map<std::string, ValueFacts>& facts)
      : graph_(graph), facts_(facts) {}

  void Run() {
    for (const auto& [name, t] : graph_.initializers) {
      ValueFacts f;
      f.type = TypeInfo::Tensor(t.dtype(), ops::ToDims(t.shape()));
      if (IsConstant(graph_, name)) f.value = ValueOfTensor(t);
      facts_[name] = std::move(f);
    }
    for (const ValueInfo& vi : graph_.inputs) {
      if (IsConstant(graph_, vi.name)) continue;
      ValueFacts f;
      f.type = vi.type;
      if (f.type.kind == TypeInfo::Kind::kUnknown && graph_.IsInitializer(vi.name)) {
        f.type = TypeInfo::Tensor(graph_.initializers.at(vi.name).dtype());
      }
      NameUnknownDims(f.type);
      facts_[vi.name] = std::move(f);
    }
    for (const auto* list : {&graph_.value_info, &graph_.outputs}) {
      for (const ValueInfo& vi : *list) declared_.emplace(vi.name, &vi.type);
    }
    for (const Node& node : graph_.nodes) VisitNode(node);
  }

 private:
  void NameUnknownDims(TypeInfo& t) {
    if (t.kind != TypeInfo::Kind::kTensor) return;
    for (Dim& d : t.shape) {
      if (!d.known() && d.param.empty()) d.param = absl::StrCat("hepml$", next_symbol_++);
    }
  }

  // `inferred` completed by the declared type: known dims win, then symbols.
  TypeInfo Merge(TypeInfo inferred, const std::string& name) const {
    auto it = declared_.find(name);
    if (it == declared_.end()) return inferred;
    const TypeInfo& decl = *it->second;
    if (inferred.kind == TypeInfo::Kind::kUnknown) return decl;
    if (decl.kind != TypeInfo::Kind::kTensor || inferred.kind != TypeInfo::Kind::kTensor) return inferred;
    if (inferred.dtype == DType::kUndefined) inferred.dtype = decl.dtype;
    if (!decl.has_shape) return inferred;
    if (!inferred.has_shape) {
      inferred.has_shape = true;
      inferred.shape = decl.shape;
      return inferred;
    }
    if (inferred.shape.size() != decl.shape.size()) return inferred;  // disagreement: trust the table
    for (size_t d = 0; d < decl.shape.size(); ++d) {
      Dim& o = inferred.shape[d];
      const Dim& e = decl.shape[d];
      if (!o.known() && e.known()) o = e;
      else if (!o.known() && o.param.empty()) o.param = e.param;
    }
    return inferred;
  }

  const ValueFacts* Input(const Node& node, size_t i) const {
    if (!node.HasInput(i)) return nullptr;
    auto it = facts_.find(node.inputs[i]);
    return it == facts_.end() ? nullptr : &it->second;
  }

  // The known value of input i as a tensor (small), or nullopt.
  std::optional<Tensor> KnownInput(const Node& node, size_t i) const {
    if (!node.HasInput(i)) return std::nullopt;
    const std::string& name = node.inputs[i];
    if (IsConstant(graph_, name)) {
      const Tensor& t = graph_.initializers.at(name);
      if (t.size() <= kMaxEvaluatedElements) return t;
      return std::nullopt;
    }
    const ValueFacts* f = Input(node, i);
    if (f == nullptr || !f->FullyKnown()) return std::nullopt;
    return f->AsTensor();
  }

  // Known numbers of input i (for axes, starts, ...), or nullopt.
  std::optional<std::vector<int64_t>> Numbers(const Node& node, size_t i) const {
    auto t = KnownInput(node, i);
    if (!t) return std::nullopt;
    auto v = ops::ReadInt64s(*t);
    if (!v.ok()) return std::nullopt;
    return *v;
  }

  void SetOutput(const Node& node, size_t i, ValueFacts f) {
    if (!node.HasOutput(i)) return;
    f.type = Merge(std::move(f.type), node.outputs[i]);
    NameUnknownDims(f.type);
    if (f.value) {
      const int64_t n = KnownCount(f.type);
      if (!IsTrackedDType(f.type.dtype) || n < 0 || n != static_cast<int64_t>(f.value->size())) f.value.reset();
    }
    facts_[node.outputs[i]] = std::move(f);
  }

  void VisitNode(const Node& node) {
    std::vector<ValueFacts> out(node.outputs.size());
    if (!HasSubgraph(node) && IsEvaluable(node) && TryEvaluate(node, out)) {
      for (size_t i = 0; i < out.size(); ++i) SetOutput(node, i, std::move(out[i]));
      return;
    }
    InferTypes(node, out);
    if (node.domain.empty() && !out.empty()) SymbolicValue(node, out[0]);
    for (size_t i = 0; i < out.size(); ++i) SetOutput(node, i, std::move(out[i]));
  }

  bool TryEvaluate(const Node& node, std::vector<ValueFacts>& out) {
    std::vector<Value> values(node.inputs.size());
    std::vector<const Value*> ptrs(node.inputs.size(), nullptr);
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      if (node.inputs[i].empty()) continue;
      auto t = KnownInput(node, i);
      // Small inputs only: even broadcasting them keeps results small.
      if (!t || t->size() > kMaxSymbolicElements) return false;
      values[i] = Value::FromTensor(*t);
      ptrs[i] = &values[i];
    }
    if ((node.op_type == "ConstantOfShape" && ptrs.size() < 1) || (node.op_type == "Range" && ptrs.size() < 3)) return false;
    for (size_t i = 0; i < (node.op_type == "Range" ? 3u : node.op_type == "ConstantOfShape" ? 1u : 0u); ++i)
      if (ptrs[i] == nullptr) return false;
    if (node.op_type == "ConstantOfShape" || node.op_type == "Range") {
      // The output may be large: only shape-sized results.
      if (node.op_type == "ConstantOfShape") {
        auto dims = ops::ReadInt64s(values[0].tensor);
        if (!dims.ok()) return false;
        int64_t n = 1;
        for (int64_t d : *dims) {
          if (d < 0 || d > kMaxEvaluatedElements) return false;
          n *= d;
          if (n > kMaxEvaluatedElements) return false;
        }
      } else {
        auto s = ops::ReadScalarDouble(values[0].tensor);
        auto e = ops::ReadScalarDouble(values[1].tensor);
        auto d = ops::ReadScalarDouble(values[2].tensor);
        if (!s.ok() || !e.ok() || !d.ok() || *d == 0) return false;
        const double count = (*e - *s) / *d;
        if (!std::isfinite(count) || count > kMaxEvaluatedElements) return false;
      }
    }
    auto result = ops::EvaluateNode(node, ptrs);
    if (!result.ok()) return false;
    for (size_t i = 0; i < out.size() && i < result->size(); ++i) {
      const Value& v = (*result)[i];
      if (!v.is_tensor() || !v.tensor.defined()) return false;
      out[i].type = TypeInfo::Tensor(v.tensor.dtype(), ops::ToDims(v.tensor.shape()));
      out[i].value = ValueOfTensor(v.tensor);
    }
    return true;
  }

  void InferTypes(const Node& node, std::vector<ValueFacts>& out) {
    const ops::OpDef* op = ops::OpRegistry::Global().Find(node.domain, node.op_type, node.opset);
    std::vector<Tensor> known(node.inputs.size());
    ops::InferContext ctx{node, node.opset, {}, {}};
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const ValueFacts* f = Input(node, i);
      ctx.input_types.push_back(f ? f->type : TypeInfo{});
      auto t = KnownInput(node, i);
      if (t) known[i] = *t;
      ctx.constant_inputs.push_back(t ? &known[i] : nullptr);
    }
    std::vector<TypeInfo> types(node.outputs.size());
    bool done = false;
    if (op != nullptr && op->infer != nullptr && !HasSubgraph(node)) {
      done = op->infer(ctx, types).ok();
      if (!done) std::fill(types.begin(), types.end(), TypeInfo{});
    }
    if (!done && node.domain.empty() && !types.empty()) ShapeOpType(node, ctx, types[0]);
    for (size_t i = 0; i < out.size(); ++i) out[i].type = std::move(types[i]);
  }

  // ---- types of shape operators without a table infer function ----

  // The elements of input i (a 1-D shape-like tensor) when tracked.
  const std::vector<SymbolicInt>* Elements(const Node& node, size_t i) const {
    const ValueFacts* f = Input(node, i);
    return f && f->value ? &*f->value : nullptr;
  }

  static bool HasShape(const TypeInfo* t) { return t && t->kind == TypeInfo::Kind::kTensor && t->has_shape; }

  void ShapeOpType(const Node& node, const ops::InferContext& ctx, TypeInfo& out) {
    const std::string& op = node.op_type;
    const TypeInfo* x = ctx.input_types.empty() ? nullptr : &ctx.input_types[0];
    if (x == nullptr) return;
    if (op == "Reshape") return ReshapeType(node, *x, out);
    if (op == "Flatten") {
      out = TypeInfo::Tensor(x->dtype);
      if (!HasShape(x)) return;
      const int64_t rank = static_cast<int64_t>(x->shape.size());
      int64_t axis = node.GetInt("axis", 1);
      if (axis < 0) axis += rank;
      if (axis < 0 || axis > rank) return;
      auto a = ProductDim(std::vector<Dim>(x->shape.begin(), x->shape.begin() + axis));
      auto b = ProductDim(std::vector<Dim>(x->shape.begin() + axis, x->shape.end()));
      out = TypeInfo::Tensor(x->dtype, {a ? *a : Dim{}, b ? *b : Dim{}});
      return;
    }
    if (op == "Squeeze" || op == "Unsqueeze") {
      out = TypeInfo::Tensor(x->dtype);
      if (!HasShape(x)) return;
      std::optional<std::vector<int64_t>> axes;
      if (node.opset < 13) {
        if (node.HasAttribute("axes")) axes = node.GetInts("axes");
      } else if (node.HasInput(1)) {
        axes = Numbers(node, 1);
        if (!axes) return;
      }
      const int64_t rank = static_cast<int64_t>(x->shape.size());
      if (op == "Squeeze") {
        std::vector<Dim> dims;
        if (!axes) {
          for (const Dim& d : x->shape) {
            if (!d.known()) return;  // cannot tell whether it is 1
            if (d.value != 1) dims.push_back(d);
          }
        } else {
          auto norm = ops::NormalizeAxes(*axes, rank);
          if (!norm.ok()) return;
          for (int64_t d = 0; d < rank; ++d) {
            if (std::find(norm->begin(), norm->end(), d) == norm->end()) dims.push_back(x->shape[d]);
          }
        }
        out = TypeInfo::Tensor(x->dtype, std::move(dims));
        return;
      }
      if (!axes) return;
      const int64_t out_rank = rank + static_cast<int64_t>(axes->size());
      auto norm = ops::NormalizeAxes(*axes, out_rank);
      if (!norm.ok()) return;
      std::vector<Dim> dims;
      size_t next = 0;
      for (int64_t d = 0; d < out_rank; ++d) {
        if (std::find(norm->begin(), norm->end(), d) != norm->end()) dims.push_back(Dim{1, ""});
        else dims.push_back(x->shape[next++]);
      }
      out = TypeInfo::Tensor(x->dtype, std::move(dims));
      return;
    }
    if (op == "Concat") {
      out = TypeInfo::Tensor(x->dtype);
      std::vector<Dim> dims;
      for (const TypeInfo& t : ctx.input_types) {
        if (!HasShape(&t)) return;
        if (dims.empty()) dims = t.shape;
        if (t.shape.size() != dims.size()) return;
      }
      if (dims.empty()) return;
      auto axis = ops::NormalizeAxis(node.GetInt("axis", 1), static_cast<int64_t>(dims.size()));
      if (!axis.ok()) return;
      int64_t total = 0;
      for (size_t i = 0; i < ctx.input_types.size(); ++i) {
        if (node.inputs[i].empty()) continue;
        const Dim& d = ctx.input_types[i].shape[*axis];
        // Unknown as well when the sum overflows (a model may declare any dims).
        int64_t sum;
        total = (total >= 0 && d.known() && d.value >= 0 && !__builtin_add_overflow(total, d.value, &sum)) ? sum : -1;
        for (size_t k = 0; k < dims.size(); ++k) {
          if (static_cast<int64_t>(k) != *axis && !dims[k].known() && ctx.input_types[i].shape[k].known()) {
            dims[k] = ctx.input_types[i].shape[k];
          }
        }
      }
      dims[*axis] = total >= 0 ? Dim{total, ""} : Dim{};
      out = TypeInfo::Tensor(x->dtype, std::move(dims));
      return;
    }
    if (op == "Slice") return SliceType(node, *x, out);
    if (op == "Expand") {
      out = TypeInfo::Tensor(x->dtype);
      const std::vector<SymbolicInt>* shape = Elements(node, 1);
      if (!HasShape(x) || shape == nullptr) return;
      const size_t rank = std::max(x->shape.size(), shape->size());
      std::vector<Dim> dims(rank);
      for (size_t k = 0; k < rank; ++k) {
        const size_t xo = rank - x->shape.size(), so = rank - shape->size();
        Dim a = k >= xo ? x->shape[k - xo] : Dim{1, ""};
        Dim b = k >= so ? DimOf((*shape)[k - so]) : Dim{1, ""};
        if (a.known() && a.value == 1) dims[k] = b;
        else if (b.known() && b.value == 1) dims[k] = a;
        else if (a.known()) dims[k] = a;
        else if (b.known()) dims[k] = b;
        else if (a.param == b.param) dims[k] = a;
        else dims[k] = Dim{};
      }
      out = TypeInfo::Tensor(x->dtype, std::move(dims));
      return;
    }
    if (op == "Tile") {
      // Each dim times its repeat: a known repeat of 1 keeps a symbolic dim.
      out = TypeInfo::Tensor(x->dtype);
      const std::vector<SymbolicInt>* repeats = Elements(node, 1);
      if (!HasShape(x) || repeats == nullptr || repeats->size() != x->shape.size()) return;
      std::vector<Dim> dims(x->shape.size());
      for (size_t k = 0; k < dims.size(); ++k) {
        const SymbolicInt& r = (*repeats)[k];
        if (!r.known()) continue;
        if (*r.number == 1) dims[k] = x->shape[k];
        else if (x->shape[k].known() && *r.number >= 0) dims[k] = Dim{x->shape[k].value * *r.number, ""};
      }
      out = TypeInfo::Tensor(x->dtype, std::move(dims));
      return;
    }
    if (op == "ConstantOfShape") {
      const Tensor* v = node.GetTensor("value");
      const DType dtype = v ? v->dtype() : DType::kFloat32;
      out = TypeInfo::Tensor(dtype);
      const std::vector<SymbolicInt>* shape = Elements(node, 0);
      if (shape == nullptr) return;
      std::vector<Dim> dims;
      for (const SymbolicInt& s : *shape) dims.push_back(DimOf(s));
      out = TypeInfo::Tensor(dtype, std::move(dims));
      return;
    }
  }

  void ReshapeType(const Node& node, const TypeInfo& x, TypeInfo& out) {
    out = TypeInfo::Tensor(x.dtype);
    std::vector<SymbolicInt> target;
    if (node.opset < 5) {
      for (int64_t v : node.GetInts("shape")) target.push_back(SymbolicInt::Number(v));
    } else {
      const std::vector<SymbolicInt>* s = Elements(node, 1);
      if (s == nullptr) {
        // Rank still known from the shape input's length.
        const ValueFacts* f = Input(node, 1);
        if (f && f->type.has_shape && f->type.shape.size() == 1 && f->type.shape[0].known()) {
          out = TypeInfo::Tensor(x.dtype, std::vector<Dim>(static_cast<size_t>(f->type.shape[0].value)));
        }
        return;
      }
      target = *s;
    }
    const bool allowzero = node.opset >= 14 && node.GetInt("allowzero", 0) != 0;
    std::vector<Dim> dims(target.size());
    int infer_at = -1;
    for (size_t k = 0; k < target.size(); ++k) {
      const SymbolicInt& s = target[k];
      if (s.known() && *s.number == -1) {
        infer_at = static_cast<int>(k);
      } else if (s.known() && *s.number == 0 && !allowzero) {
        if (!x.has_shape || k >= x.shape.size()) return;
        dims[k] = x.shape[k];
      } else {
        dims[k] = DimOf(s);
      }
    }
    if (infer_at >= 0 && x.has_shape) {
      // -1 = size / product(other dims): cancel equal symbols, divide numbers.
      std::vector<Dim> rest = x.shape;
      int64_t divisor = 1;
      bool ok = true;
      for (size_t k = 0; k < dims.size() && ok; ++k) {
        if (static_cast<int>(k) == infer_at) continue;
        const Dim& d = dims[k];
        if (d.known()) {
          ok = ok && !__builtin_mul_overflow(divisor, d.value, &divisor);
          continue;
        }
        auto it = std::find_if(rest.begin(), rest.end(), [&](const Dim& r) { return !r.known() && r.param == d.param && !d.param.empty(); });
        if (it == rest.end()) ok = false;
        else rest.erase(it);
      }
      int64_t numerator = 1;
      for (const Dim& r : rest) {
        if (!r.known() || __builtin_mul_overflow(numerator, r.value, &numerator)) ok = false;
      }
      if (ok && divisor > 0 && numerator % divisor == 0) dims[infer_at] = Dim{numerator / divisor, ""};
    }
    out = TypeInfo::Tensor(x.dtype, std::move(dims));
  }

  // Slice parameters as numbers (attributes before opset 10, inputs from 10).
  bool SliceParams(const Node& node, int64_t rank, std::vector<int64_t>& starts, std::vector<int64_t>& ends,
                   std::vector<int64_t>& axes, std::vector<int64_t>& steps) const {
    if (node.opset < 10) {
      starts = node.GetInts("starts");
      ends = node.GetInts("ends");
      axes = node.GetInts("axes");
    } else {
      auto s = Numbers(node, 1), e = Numbers(node, 2);
      if (!s || !e) return false;
      starts = *s;
      ends = *e;
      if (node.HasInput(3)) {
        auto a = Numbers(node, 3);
        if (!a) return false;
        axes = *a;
      }
      if (node.HasInput(4)) {
        auto st = Numbers(node, 4);
        if (!st) return false;
        steps = *st;
      }
    }
    if (axes.empty()) {
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    }
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (starts.size() != ends.size() || axes.size() != starts.size() || steps.size() != starts.size()) return false;
    for (int64_t& a : axes) {
      if (a < 0) a += rank;
      if (a < 0 || a >= rank) return false;
    }
    for (int64_t st : steps)
      if (st == 0) return false;
    return true;
  }

  // The clamped [start, end) of a slice along a dim of length n (ONNX rules).
  static std::pair<int64_t, int64_t> SliceBounds(int64_t n, int64_t start, int64_t end, int64_t step) {
    auto clamp = [n](int64_t v, int64_t lo, int64_t hi) {
      if (v < 0) v = v < -n ? -n - 1 : v + n;  // no overflow for INT64_MIN-like ends
      return std::clamp(v, lo, hi);
    };
    if (step > 0) return {clamp(start, 0, n), clamp(end, 0, n)};
    return {clamp(start, 0, n - 1), end < -n ? -1 : clamp(end, -1, n - 1)};
  }

  // Number of elements a slice takes along a dim of length n.
  static int64_t SliceCount(int64_t n, int64_t start, int64_t end, int64_t step) {
    auto [b, e] = SliceBounds(n, start, end, step);
    if (step > 0) return e > b ? (e - b - 1) / step + 1 : 0;
    if (b <= e) return 0;
    return step == std::numeric_limits<int64_t>::min() ? 1 : (b - e - 1) / -step + 1;
  }

  // The indices a slice takes along a dim of length n (n small).
  static std::vector<int64_t> SliceIndices(int64_t n, int64_t start, int64_t end, int64_t step) {
    const int64_t count = SliceCount(n, start, end, step);
    const int64_t b = SliceBounds(n, start, end, step).first;
    std::vector<int64_t> idx;
    for (int64_t k = 0; k < count; ++k) idx.push_back(b + k * step);  // stays within [0, n)
    return idx;
  }

  void SliceType(const Node& node, const TypeInfo& x, TypeInfo& out) {
    out = TypeInfo::Tensor(x.dtype);
    if (!x.has_shape) return;
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    std::vector<int64_t> starts, ends, axes, steps;
    if (!SliceParams(node, rank, starts, ends, axes, steps)) return;
    std::vector<Dim> dims = x.shape;
    for (size_t i = 0; i < axes.size(); ++i) {
      Dim& d = dims[axes[i]];
      if (d.known()) {
        d = Dim{SliceCount(d.value, starts[i], ends[i], steps[i]), ""};
      } else if (!(starts[i] == 0 && steps[i] == 1 && ends[i] >= std::numeric_limits<int32_t>::max())) {
        d = Dim{};
      }
    }
    out = TypeInfo::Tensor(x.dtype, std::move(dims));
  }

  // ---- symbolic values ----

  void SymbolicValue(const Node& node, ValueFacts& out) {
    const std::string& op = node.op_type;
    const ValueFacts* x = Input(node, 0);
    if (op == "Shape") {
      if (!x || !HasShape(&x->type)) return;
      const int64_t rank = static_cast<int64_t>(x->type.shape.size());
      int64_t start = 0, end = rank;
      if (node.opset >= 15) {
        auto clamp = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
        start = clamp(node.GetInt("start", 0));
        end = node.HasAttribute("end") ? clamp(node.GetInt("end", rank)) : rank;
      }
      std::vector<SymbolicInt> v;
      for (int64_t d = start; d < end; ++d) v.push_back(SymbolicInt::FromDim(x->type.shape[d]));
      out.value = std::move(v);
      return;
    }
    if (!x || !x->value) return;
    const std::vector<SymbolicInt>& xv = *x->value;
    if (op == "Identity" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze" || op == "Flatten") {
      out.value = xv;
      return;
    }
    if (op == "Cast") {
      const DType to = static_cast<DType>(node.GetInt("to", 0));
      if (to == DType::kInt64 || to == DType::kInt32) out.value = xv;
      return;
    }
    if (op == "Gather") {
      if (x->type.shape.size() != 1 || node.GetInt("axis", 0) != 0) return;
      auto idx = Numbers(node, 1);
      if (!idx) return;
      const int64_t n = static_cast<int64_t>(xv.size());
      std::vector<SymbolicInt> v;
      for (int64_t i : *idx) {
        if (i < 0) i += n;
        if (i < 0 || i >= n) return;
        v.push_back(xv[i]);
      }
      out.value = std::move(v);
      return;
    }
    if (op == "Slice") {
      if (x->type.shape.size() != 1) return;
      std::vector<int64_t> starts, ends, axes, steps;
      if (!SliceParams(node, 1, starts, ends, axes, steps) || starts.size() != 1) return;
      std::vector<SymbolicInt> v;
      for (int64_t i : SliceIndices(static_cast<int64_t>(xv.size()), starts[0], ends[0], steps[0])) v.push_back(xv[i]);
      out.value = std::move(v);
      return;
    }
    if (op == "Concat") {
      std::vector<SymbolicInt> v;
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        if (node.inputs[i].empty()) continue;
        const ValueFacts* f = Input(node, i);
        if (!f || !f->value || !f->type.has_shape || f->type.shape.size() != 1) return;
        v.insert(v.end(), f->value->begin(), f->value->end());
      }
      out.value = std::move(v);
      return;
    }
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Equal") {
      const ValueFacts* y = Input(node, 1);
      if (!y || !y->value) return;
      const std::vector<SymbolicInt>& yv = *y->value;
      const size_t n = std::max(xv.size(), yv.size());
      if ((xv.size() != n && xv.size() != 1) || (yv.size() != n && yv.size() != 1)) return;
      std::vector<SymbolicInt> v;
      for (size_t i = 0; i < n; ++i) {
        const SymbolicInt& a = xv[xv.size() == 1 ? 0 : i];
        const SymbolicInt& b = yv[yv.size() == 1 ? 0 : i];
        v.push_back(Elementwise(op, a, b));
      }
      out.value = std::move(v);
      return;
    }
    if (op == "Where") {
      const ValueFacts* a = Input(node, 1);
      const ValueFacts* b = Input(node, 2);
      if (!a || !a->value || !b || !b->value) return;
      const size_t n = std::max({xv.size(), a->value->size(), b->value->size()});
      for (size_t s : {xv.size(), a->value->size(), b->value->size()})
        if (s != n && s != 1) return;
      std::vector<SymbolicInt> v;
      for (size_t i = 0; i < n; ++i) {
        const SymbolicInt& c = xv[xv.size() == 1 ? 0 : i];
        if (!c.known()) {
          v.push_back({});
          continue;
        }
        const auto& src = *c.number != 0 ? *a->value : *b->value;
        v.push_back(src[src.size() == 1 ? 0 : i]);
      }
      out.value = std::move(v);
      return;
    }
  }

  static SymbolicInt Elementwise(const std::string& op, const SymbolicInt& a, const SymbolicInt& b) {
    if (op == "Equal") {
      if (a.SameAs(b)) return SymbolicInt::Number(1);
      if (a.known() && b.known()) return SymbolicInt::Number(0);
      // A dimension is never negative.
      if ((a.IsDim() && b.known() && *b.number < 0) || (b.IsDim() && a.known() && *a.number < 0)) {
        return SymbolicInt::Number(0);
      }
      return {};
    }
    if (a.known() && b.known()) {
      const int64_t x = *a.number, y = *b.number;
      int64_t r = 0;
      if (op == "Add" && !__builtin_add_overflow(x, y, &r)) return SymbolicInt::Number(r);
      if (op == "Sub" && !__builtin_sub_overflow(x, y, &r)) return SymbolicInt::Number(r);
      if (op == "Mul" && !__builtin_mul_overflow(x, y, &r)) return SymbolicInt::Number(r);
      if (op == "Div" && y != 0 && !(x == std::numeric_limits<int64_t>::min() && y == -1)) {
        return SymbolicInt::Number(x / y);
      }
      return {};
    }
    auto is = [](const SymbolicInt& s, int64_t v) { return s.known() && *s.number == v; };
    if ((op == "Add" || op == "Sub") && is(b, 0)) return a;
    if (op == "Add" && is(a, 0)) return b;
    if ((op == "Mul" || op == "Div") && is(b, 1)) return a;
    if (op == "Mul" && is(a, 1)) return b;
    return {};
  }

  const Graph& graph_;
  absl::flat_hash_map<std::string, ValueFacts>& facts_;
  absl::flat_hash_map<std::string, const TypeInfo*> declared_;
  int next_symbol_ = 0;
};

}  // namespace

bool ValueFacts::FullyKnown() const {
  if (!value) return false;
  for (const SymbolicInt& s : *value)
    if (!s.known()) return false;
  return true;
}

std::optional<Tensor> ValueFacts::AsTensor() const {
  if (!FullyKnown() || type.kind != TypeInfo::Kind::kTensor || !type.has_shape) return std::nullopt;
  Shape shape;
  for (const Dim& d : type.shape) {
    if (!d.known()) return std::nullopt;
    shape.push_back(d.value);
  }
  if (NumElements(shape) != static_cast<int64_t>(value->size())) return std::nullopt;
  Tensor t = Tensor::Empty(type.dtype, shape);
  for (size_t i = 0; i < value->size(); ++i) {
    const int64_t v = *(*value)[i].number;
    switch (type.dtype) {
      case DType::kInt64: t.mutable_data<int64_t>()[i] = v; break;
      case DType::kInt32: t.mutable_data<int32_t>()[i] = static_cast<int32_t>(v); break;
      case DType::kBool: t.mutable_data<bool>()[i] = v != 0; break;
      default: return std::nullopt;
    }
  }
  return t;
}

ShapePropagation ShapePropagation::Run(const Graph& graph) {
  ShapePropagation result;
  Propagator(graph, result.facts_).Run();
  return result;
}

const ValueFacts* ShapePropagation::Find(const std::string& value) const {
  auto it = facts_.find(value);
  return it == facts_.end() ? nullptr : &it->second;
}

const TypeInfo& ShapePropagation::Type(const std::string& value) const {
  static const TypeInfo kUnknown;
  const ValueFacts* f = Find(value);
  return f ? f->type : kUnknown;
}

int ShapePropagation::Rank(const std::string& value) const {
  const TypeInfo& t = Type(value);
  return t.kind == TypeInfo::Kind::kTensor && t.has_shape ? static_cast<int>(t.shape.size()) : -1;
}

std::optional<Shape> ShapePropagation::StaticShape(const std::string& value) const {
  const TypeInfo& t = Type(value);
  if (t.kind != TypeInfo::Kind::kTensor || !t.has_shape) return std::nullopt;
  Shape s;
  for (const Dim& d : t.shape) {
    if (!d.known()) return std::nullopt;
    s.push_back(d.value);
  }
  return s;
}

}  // namespace hepml::passes
