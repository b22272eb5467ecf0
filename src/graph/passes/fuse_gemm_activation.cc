// fuse-gemm-activation: merges a dense layer's nodes into one.
//  1. MatMul(A, B) + Add(bias), B a constant 2-D matrix and bias a constant
//     per-column vector (one element, [N] or [1, N]) of B's type, becomes
//     Gemm(A, B, bias) when A is 2-D, and hepml's FusedGemm (ai.hepml, A of
//     rank > 2 flattened into rows, see src/ops/fused.cc) when A's rank is
//     higher: [batch, tokens, K] x [K, N] + [N] in one pass. A's rank must be
//     known (shape propagation).
//  2. Gemm / FusedGemm / Conv followed by Relu, LeakyRelu, Sigmoid, Tanh, Clip
//     (constant bounds that are exact in float) or Gelu (approximate none)
//     becomes FusedGemm / FusedConv with that `activation` attribute, which
//     applies it in place on the output (same arithmetic as the operator).
// The first node's output must be read only by the second and not be a graph
// output; the fused node takes the second's output name and place, and only
// floating-point weights (constant B or W) are fused. Leaves alone: Gemm
// before opset 7, MatMul with a non-constant or non-2-D B, and every other node.
#include <cmath>
#include <limits>

#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"
#include "graph/passes/shape_propagation.h"
#include "ops/kernel_util.h"

namespace hepml::passes {
namespace {

constexpr char kHepmlDomain[] = "ai.hepml";

Attribute StringAttr(const std::string& name, const std::string& value) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kString;
  a.s = value;
  return a;
}

Attribute FloatAttr(const std::string& name, float value) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kFloat;
  a.f = value;
  return a;
}

class GemmFuser {
 public:
  explicit GemmFuser(Graph& graph) : graph_(graph), index_(graph) {}

  bool Run() {
    bool changed = false;
    const ShapePropagation shapes = ShapePropagation::Run(graph_);
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (!index_.removed(i)) changed |= FuseMatMulAdd(i, shapes);
    }
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (!index_.removed(i)) changed |= FuseActivation(i);
    }
    index_.Compact();
    return changed;
  }

 private:
  // A constant floating-point tensor or null.
  const Tensor* FloatConstant(const Node& n, size_t i) const {
    const Tensor* t = ConstantTensor(graph_, n.HasInput(i) ? n.inputs[i] : "");
    return t != nullptr && IsFloatingPoint(t->dtype()) ? t : nullptr;
  }

  bool FuseMatMulAdd(size_t mm_index, const ShapePropagation& shapes) {
    Node& mm = graph_.nodes[mm_index];
    if (!mm.domain.empty() || mm.op_type != "MatMul" || mm.inputs.size() != 2 || mm.outputs.size() != 1) return false;
    const Tensor* b = FloatConstant(mm, 1);
    if (b == nullptr || b->rank() != 2) return false;
    const int rank = shapes.Rank(mm.inputs[0]);
    if (rank < 2) return false;
    size_t add_index = 0;
    Node* add = index_.SoleReader(mm.outputs[0], &add_index);
    if (add == nullptr || !add->domain.empty() || add->op_type != "Add") return false;
    const std::string* bias_name = OtherInput(*add, mm.outputs[0]);
    if (bias_name == nullptr || *bias_name == mm.outputs[0]) return false;
    const Tensor* bias = ConstantTensor(graph_, *bias_name);
    const int64_t n = b->dim(1);
    if (bias == nullptr || bias->dtype() != b->dtype() || bias->rank() > 2 ||
        (bias->size() != 1 && bias->size() != n) || (bias->rank() >= 1 && bias->dim(bias->rank() - 1) != bias->size())) {
      return false;
    }
    if (rank == 2 && mm.opset < 7) return false;  // Gemm's C broadcast from 7
    Node gemm;
    gemm.name = add->name.empty() ? mm.name : add->name;
    gemm.op_type = rank == 2 ? "Gemm" : "FusedGemm";
    gemm.domain = rank == 2 ? "" : kHepmlDomain;
    gemm.opset = rank == 2 ? std::max(mm.opset, add->opset) : 1;
    gemm.inputs = {mm.inputs[0], mm.inputs[1], *bias_name};
    gemm.outputs = {add->outputs[0]};
    *add = std::move(gemm);
    index_.Remove(mm_index);
    return true;
  }

  // The activation attributes for node `act`, or nullopt if it cannot be fused.
  std::optional<std::vector<Attribute>> ActivationAttrs(const Node& act, DType dtype) const {
    if (!act.domain.empty() || act.outputs.size() != 1 || act.inputs.empty()) return std::nullopt;
    const std::string& op = act.op_type;
    if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "Softplus") {
      if (act.inputs.size() != 1) return std::nullopt;
      return std::vector<Attribute>{StringAttr("activation", op)};
    }
    if (op == "LeakyRelu") {
      return std::vector<Attribute>{StringAttr("activation", op), FloatAttr("activation_alpha", act.GetFloat("alpha", 0.01f))};
    }
    if (op == "Gelu") {
      if (act.GetString("approximate", "none") != "none") return std::nullopt;
      return std::vector<Attribute>{StringAttr("activation", op)};
    }
    if (op == "Clip") {
      double bounds[2] = {-std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
      if (act.opset < 11) {
        bounds[0] = act.GetFloat("min", std::numeric_limits<float>::lowest());
        bounds[1] = act.GetFloat("max", std::numeric_limits<float>::max());
      } else {
        for (size_t i = 1; i <= 2; ++i) {
          if (!act.HasInput(i)) continue;
          const Tensor* t = ConstantTensor(graph_, act.inputs[i]);
          if (t == nullptr || t->size() != 1 || t->dtype() != dtype) return std::nullopt;
          auto v = ops::ReadScalarDouble(*t);
          if (!v.ok()) return std::nullopt;
          bounds[i - 1] = *v;
        }
      }
      std::vector<Attribute> attrs{StringAttr("activation", op)};
      for (int i = 0; i < 2; ++i) {
        if (std::isinf(bounds[i])) continue;
        const float f = static_cast<float>(bounds[i]);
        if (static_cast<double>(f) != bounds[i]) return std::nullopt;  // float attributes must hold it exactly
        attrs.push_back(FloatAttr(i == 0 ? "activation_alpha" : "activation_beta", f));
      }
      return attrs;
    }
    return std::nullopt;
  }

  bool FuseActivation(size_t p_index) {
    Node& p = graph_.nodes[p_index];
    const bool gemm = p.op_type == "Gemm" && p.domain.empty() && p.opset >= 7;
    const bool fused_gemm = p.op_type == "FusedGemm" && p.domain == kHepmlDomain && !p.HasAttribute("activation");
    const bool conv = p.op_type == "Conv" && p.domain.empty();
    if (!(gemm || fused_gemm || conv) || p.outputs.size() != 1) return false;
    const Tensor* w = FloatConstant(p, 1);
    if (w == nullptr) return false;
    size_t act_index = 0;
    Node* act = index_.SoleReader(p.outputs[0], &act_index);
    if (act == nullptr || act->inputs[0] != p.outputs[0]) return false;
    auto attrs = ActivationAttrs(*act, w->dtype());
    if (!attrs) return false;
    Node fused = p;
    fused.name = act->name.empty() ? p.name : act->name;
    fused.op_type = conv ? "FusedConv" : "FusedGemm";
    fused.domain = kHepmlDomain;
    fused.opset = 1;
    fused.outputs = {act->outputs[0]};
    for (Attribute& a : *attrs) fused.attributes.push_back(std::move(a));
    *act = std::move(fused);
    index_.Remove(p_index);
    return true;
  }

  Graph& graph_;
  NodeIndex index_;
};

}  // namespace

absl::StatusOr<bool> FuseGemmActivation(Graph& graph) { return GemmFuser(graph).Run(); }

}  // namespace hepml::passes
