// fuse-layernorm: replaces layer normalisation written as elementwise nodes
// (what PyTorch exports for nn.LayerNorm below opset 17):
//     m = ReduceMean(x, axes)          d = Sub(x, m)
//     v = ReduceMean(Pow(d, 2), axes)  (or Mul(d, d))
//     n = Div(d, Sqrt(Add(v, eps)))
//     y = Add(Mul(n, scale), bias)     (Mul and Add optional)
// with one LayerNormalization(x, scale, bias) of axis = -k, epsilon = eps,
// where axes are the last k dims (both ReduceMeans the same, keepdims = 1).
// scale and bias must be constants that broadcast over the normalised dims
// only (rank <= k); without Mul the scale is a one-element 1. eps, the
// exponent 2, and the ReduceMean axes must be constants.
//
// LayerNormalization is an opset 17 operator: the fused node's opset field is
// max(17, the pattern's opset) so the operator table finds its row whatever
// opset the model imports. The kernel normalises in double precision, so
// results agree with the decomposed form up to float rounding. Intermediate
// values must be read only inside the pattern and not be graph outputs.
// Leaves every other node alone.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"
#include "graph/passes/shape_propagation.h"
#include "ops/kernel_util.h"

namespace hepml::passes {
namespace {

bool Is(const Node* n, const char* op, size_t inputs) {
  return n != nullptr && n->domain.empty() && n->op_type == op && n->inputs.size() == inputs && n->outputs.size() == 1;
}

class LayerNormFuser {
 public:
  explicit LayerNormFuser(Graph& graph) : graph_(graph), index_(graph), names_(graph) {}

  bool Run() {
    bool changed = false;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (!index_.removed(i) && graph_.nodes[i].domain.empty() && graph_.nodes[i].op_type == "ReduceMean") {
        changed |= TryFuse(i);
      }
    }
    index_.Compact();
    return changed;
  }

 private:
  // The reduced axes of a ReduceMean with keepdims = 1 as negative axes
  // (-k..-1 sorted), or nullopt.
  std::optional<std::vector<int64_t>> TrailingAxes(const Node& n) {
    if (n.GetInt("keepdims", 1) != 1) return std::nullopt;
    std::vector<int64_t> axes;
    if (n.opset < 18) {
      if (!n.HasAttribute("axes")) return std::nullopt;
      axes = n.GetInts("axes");
    } else {
      const Tensor* t = ConstantTensor(graph_, n.inputs.size() > 1 ? n.inputs[1] : "");
      if (t == nullptr) return std::nullopt;
      auto v = ops::ReadInt64s(*t);
      if (!v.ok()) return std::nullopt;
      axes = *v;
    }
    if (axes.empty()) return std::nullopt;
    const bool any_positive = std::any_of(axes.begin(), axes.end(), [](int64_t a) { return a >= 0; });
    if (any_positive) {
      if (!shapes_) shapes_ = ShapePropagation::Run(graph_);
      const int rank = shapes_->Rank(n.inputs[0]);
      if (rank < 0) return std::nullopt;
      for (int64_t& a : axes) a = a >= 0 ? a - rank : a;
    }
    std::sort(axes.begin(), axes.end());
    const int64_t k = static_cast<int64_t>(axes.size());
    for (int64_t i = 0; i < k; ++i)
      if (axes[i] != i - k) return std::nullopt;
    return axes;
  }

  // A constant that broadcasts over the last k dims only.
  const Tensor* Param(const std::string& name, size_t k) const {
    const Tensor* t = ConstantTensor(graph_, name);
    if (t == nullptr || !IsFloatingPoint(t->dtype())) return nullptr;
    size_t rank = static_cast<size_t>(t->rank());
    for (int d = 0; d < t->rank() && t->dim(d) == 1 && rank > k; ++d) --rank;
    return rank <= k ? t : nullptr;
  }

  bool TryFuse(size_t m_index) {
    const Node& mean = graph_.nodes[m_index];
    if (mean.outputs.size() != 1 || mean.inputs.empty()) return false;
    const std::string& x = mean.inputs[0];
    auto axes = TrailingAxes(mean);
    if (!axes) return false;
    size_t di = 0, pi = 0, vi = 0, ei = 0, si = 0, ni = 0;
    Node* d = index_.SoleReader(mean.outputs[0], &di);
    if (!Is(d, "Sub", 2) || d->inputs[0] != x || d->inputs[1] != mean.outputs[0]) return false;
    // d is read by the square (once, or twice as Mul(d, d)) and the division only.
    if (IsGraphOutput(graph_, d->outputs[0])) return false;
    Node* sq = nullptr;
    Node* div = nullptr;
    for (size_t j = di + 1; j < graph_.nodes.size(); ++j) {
      if (index_.removed(j)) continue;
      Node& n = graph_.nodes[j];
      if (std::find(n.inputs.begin(), n.inputs.end(), d->outputs[0]) == n.inputs.end()) continue;
      if (Is(&n, "Div", 2) && n.inputs[0] == d->outputs[0] && div == nullptr) {
        div = &n;
        ni = j;
      } else if (sq == nullptr && ((Is(&n, "Pow", 2) && n.inputs[0] == d->outputs[0] && IsTwo(n.inputs[1])) ||
                                   (Is(&n, "Mul", 2) && n.inputs[0] == d->outputs[0] && n.inputs[1] == d->outputs[0]))) {
        sq = &n;
        pi = j;
      } else {
        return false;
      }
    }
    if (sq == nullptr || div == nullptr) return false;
    const int want_reads = sq->op_type == "Mul" ? 3 : 2;
    if (index_.Reads(d->outputs[0]) != want_reads) return false;
    Node* var = index_.SoleReader(sq->outputs[0], &vi);
    if (var == nullptr || !var->domain.empty() || var->op_type != "ReduceMean" || var->outputs.size() != 1 ||
        var->inputs.empty() || var->inputs[0] != sq->outputs[0]) {
      return false;
    }
    auto var_axes = TrailingAxes(*var);
    if (!var_axes || *var_axes != *axes) return false;
    Node* add = index_.SoleReader(var->outputs[0], &ei);
    if (!Is(add, "Add", 2)) return false;
    const std::string* eps_name = OtherInput(*add, var->outputs[0]);
    std::optional<double> eps = eps_name ? ConstantScalar(graph_, *eps_name) : std::nullopt;
    if (!eps || *eps < 0) return false;
    Node* sqrt = index_.SoleReader(add->outputs[0], &si);
    if (!Is(sqrt, "Sqrt", 1)) return false;
    if (index_.SoleReader(sqrt->outputs[0]) != div || div->inputs[1] != sqrt->outputs[0]) return false;
    // Optional scale and bias.
    const size_t k = axes->size();
    std::vector<size_t> pattern = {m_index, di, pi, vi, ei, si};
    size_t last = ni;
    std::string scale, bias;
    size_t mi = 0, bi = 0;
    Node* mul = index_.SoleReader(div->outputs[0], &mi);
    if (Is(mul, "Mul", 2)) {
      const std::string* s = OtherInput(*mul, div->outputs[0]);
      if (s != nullptr && Param(*s, k) != nullptr) {
        scale = *s;
        pattern.push_back(last);
        last = mi;
        Node* badd = index_.SoleReader(mul->outputs[0], &bi);
        if (Is(badd, "Add", 2)) {
          const std::string* b = OtherInput(*badd, mul->outputs[0]);
          if (b != nullptr && Param(*b, k) != nullptr) {
            bias = *b;
            pattern.push_back(last);
            last = bi;
          }
        }
      }
    }
    if (scale.empty()) {
      const Tensor* e = ConstantTensor(graph_, *eps_name);
      scale = names_.Fresh(absl::StrCat(div->outputs[0], "/scale"));
      graph_.initializers[scale] = OneOf(e->dtype());
    }
    Node& out = graph_.nodes[last];
    Node ln;
    ln.name = out.name;
    ln.op_type = "LayerNormalization";
    ln.opset = std::max(17, out.opset);
    ln.inputs = {x, scale};
    if (!bias.empty()) ln.inputs.push_back(bias);
    ln.outputs = {out.outputs[0]};
    Attribute axis;
    axis.name = "axis";
    axis.type = Attribute::Type::kInt;
    axis.i = -static_cast<int64_t>(k);
    Attribute epsilon;
    epsilon.name = "epsilon";
    epsilon.type = Attribute::Type::kFloat;
    epsilon.f = static_cast<float>(*eps);
    ln.attributes = {axis, epsilon};
    out = std::move(ln);
    for (size_t p : pattern) index_.Remove(p);
    return true;
  }

  bool IsTwo(const std::string& name) const {
    const Tensor* t = ConstantTensor(graph_, name);
    if (t == nullptr || t->size() != 1) return false;
    auto v = ops::ReadScalarDouble(*t);
    return v.ok() && *v == 2.0;
  }

  static Tensor OneOf(DType dtype) {
    switch (dtype) {
      case DType::kFloat64: return Tensor::FromVector<double>({1}, {1.0});
      case DType::kFloat16: return Tensor::FromVector<Float16>({1}, {Float16(1.0f)});
      case DType::kBFloat16: return Tensor::FromVector<BFloat16>({1}, {BFloat16(1.0f)});
      default: return Tensor::FromVector<float>({1}, {1.0f});
    }
  }

  Graph& graph_;
  NodeIndex index_;
  NameGenerator names_;
  std::optional<ShapePropagation> shapes_;
};

}  // namespace

absl::StatusOr<bool> FuseLayerNorm(Graph& graph) { return LayerNormFuser(graph).Run(); }

}  // namespace hepml::passes
