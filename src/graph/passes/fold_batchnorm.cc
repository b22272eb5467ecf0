// fold-batchnorm: folds inference-mode BatchNormalization (constant scale,
// B, mean, var; no training outputs) into the linear node next to it, where
// BN's per-channel affine map y = x * s + t (s = scale / sqrt(var + eps),
// t = B - mean * s) can be absorbed into constant weights:
//   Conv / ConvTranspose -> BN    weights scaled per output channel, bias
//                                 b * s + t (ConvTranspose with any group);
//   Gemm -> BN                    B scaled per column of op(B), C becomes
//                                 (beta * C) * s + t with beta = 1 (C absent,
//                                 scalar or [N]);
//   MatMul (+ Add bias) -> BN     with 2-D A: B scaled per column, the bias
//                                 folded (or an Add of t replaces BN);
//   BN -> Conv                    when the Conv has group 1 and no padding
//                                 (padding would see BN(0) = t, not 0):
//                                 weights scaled per input channel, bias
//                                 b + sum(W * t).
// The folded weights are new initializers (the old ones may be shared). The
// linear node's output must be read by BN alone (BN's input by the Conv
// alone) and not be a graph output. Arithmetic is in double, rounded once to
// the weights' type. Leaves alone: training-mode BN, BN with non-constant
// parameters, spatial = 0 (opset < 9), Gemm before opset 7, and everything else.
#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"
#include "graph/passes/shape_propagation.h"
#include "ops/kernel_util.h"
#include "tensor/dispatch.h"

namespace hepml::passes {
namespace {

struct Affine {
  std::vector<double> s, t;  // per channel: y = x * s + t
};

std::optional<std::vector<double>> ConstantDoubles(const Graph& graph, const std::string& name) {
  const Tensor* t = ConstantTensor(graph, name);
  if (t == nullptr || !IsFloatingPoint(t->dtype())) return std::nullopt;
  auto v = ops::ReadDoubles(*t);
  if (!v.ok()) return std::nullopt;
  return *v;
}

// The affine map of an inference BatchNormalization with constant parameters.
std::optional<Affine> InferenceBatchNorm(const Graph& graph, const Node& bn) {
  if (bn.domain != "" || bn.op_type != "BatchNormalization") return std::nullopt;
  for (size_t i = 1; i < bn.outputs.size(); ++i)
    if (!bn.outputs[i].empty()) return std::nullopt;  // statistics requested: training
  if (bn.opset >= 14 && bn.GetInt("training_mode", 0) != 0) return std::nullopt;
  if (bn.opset < 9 && bn.GetInt("spatial", 1) == 0) return std::nullopt;
  if (bn.inputs.size() < 5 || !bn.HasOutput(0)) return std::nullopt;
  std::vector<std::vector<double>> p;
  for (size_t i = 1; i <= 4; ++i) {
    auto v = ConstantDoubles(graph, bn.inputs[i]);
    if (!v || graph.initializers.at(bn.inputs[i]).rank() != 1) return std::nullopt;
    p.push_back(std::move(*v));
  }
  const size_t c = p[0].size();
  for (const auto& v : p)
    if (v.size() != c) return std::nullopt;
  const double eps = bn.GetFloat("epsilon", 1e-5f);
  Affine a;
  for (size_t k = 0; k < c; ++k) {
    const double s = p[0][k] / std::sqrt(p[3][k] + eps);
    a.s.push_back(s);
    a.t.push_back(p[1][k] - p[2][k] * s);
  }
  return a;
}

// A tensor of `dtype` (a float type) holding `values`.
std::optional<Tensor> FloatTensor(DType dtype, const Shape& shape, const std::vector<double>& values) {
  Tensor t = Tensor::Empty(dtype, shape);
  absl::Status st = VisitFloat(dtype, [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T* p = t.mutable_data<T>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(static_cast<ComputeT<T>>(values[i]));
    return absl::OkStatus();
  });
  if (!st.ok()) return std::nullopt;
  return t;
}

class Folder {
 public:
  explicit Folder(Graph& graph)
      : graph_(graph), names_(graph), reads_(CountReads(graph)), producers_(ProducerIndex(graph)),
        removed_(graph.nodes.size(), false) {}

  bool Run() {
    bool changed = false;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (removed_[i]) continue;
      Node& bn = graph_.nodes[i];
      auto affine = InferenceBatchNorm(graph_, bn);
      if (!affine) continue;
      changed |= FoldIntoProducer(i, *affine) || FoldIntoConsumer(i, *affine);
    }
    std::vector<Node> kept;
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
      if (!removed_[i]) kept.push_back(std::move(graph_.nodes[i]));
    graph_.nodes = std::move(kept);
    return changed;
  }

 private:
  bool ReadOnce(const std::string& value) const {
    auto it = reads_.find(value);
    return it != reads_.end() && it->second == 1 && !IsGraphOutput(graph_, value);
  }

  // The node producing `value` if it is read only once; else null.
  Node* SoleProducer(const std::string& value, size_t* index) {
    auto it = producers_.find(value);
    if (it == producers_.end() || removed_[it->second] || !ReadOnce(value)) return nullptr;
    *index = it->second;
    return &graph_.nodes[it->second];
  }

  std::string AddInitializer(const std::string& base, Tensor t) {
    std::string name = names_.Fresh(base);
    graph_.initializers[name] = std::move(t);
    return name;
  }

  // New bias b * s + t (b absent: zeros) of `channels` in `dtype`.
  std::optional<std::string> FoldedBias(const Node& node, size_t bias_input, const Affine& a, DType dtype) {
    std::vector<double> b(a.s.size(), 0.0);
    if (node.HasInput(bias_input)) {
      auto v = ConstantDoubles(graph_, node.inputs[bias_input]);
      if (!v || v->size() != b.size()) return std::nullopt;
      b = *v;
    }
    for (size_t k = 0; k < b.size(); ++k) b[k] = b[k] * a.s[k] + a.t[k];
    auto t = FloatTensor(dtype, {static_cast<int64_t>(b.size())}, b);
    if (!t) return std::nullopt;
    return AddInitializer(absl::StrCat(node.outputs[0], "/folded_bias"), *t);
  }

  // Makes `node` (before BN) produce BN's output and drops BN.
  void Replace(size_t bn_index, Node& node) {
    node.outputs[0] = graph_.nodes[bn_index].outputs[0];
    producers_[node.outputs[0]] = static_cast<size_t>(&node - graph_.nodes.data());
    removed_[bn_index] = true;
  }

  // Rank of a value of the graph as it was before this pass.
  int Rank(const std::string& value) {
    if (!shapes_) shapes_ = ShapePropagation::Run(graph_);
    return shapes_->Rank(value);
  }

  bool FoldIntoProducer(size_t bn_index, const Affine& a) {
    const Node& bn = graph_.nodes[bn_index];
    size_t pi = 0;
    Node* p = SoleProducer(bn.inputs[0], &pi);
    if (p == nullptr || !p->domain.empty() || HasSubgraph(*p)) return false;
    const int64_t c = static_cast<int64_t>(a.s.size());
    if (p->op_type == "Conv" || p->op_type == "ConvTranspose") {
      const Tensor* w = ConstantTensor(graph_, p->inputs.size() > 1 ? p->inputs[1] : "");
      if (w == nullptr || w->rank() < 3 || !IsFloatingPoint(w->dtype())) return false;
      const bool transpose = p->op_type == "ConvTranspose";
      const int64_t group = p->GetInt("group", 1);
      if (group < 1 || (transpose && w->dim(0) % group != 0)) return false;
      const int64_t out_channels = transpose ? w->dim(1) * group : w->dim(0);
      if (out_channels != c) return false;
      auto wv = ops::ReadDoubles(*w);
      if (!wv.ok()) return false;
      const int64_t inner = NumElements(Shape(w->shape().begin() + 2, w->shape().end()));
      const int64_t d0 = w->dim(0), d1 = w->dim(1);
      for (int64_t i = 0; i < d0; ++i) {
        for (int64_t j = 0; j < d1; ++j) {
          // Output channel of W[i, j]: i for Conv; group(i) * d1 + j for ConvTranspose.
          const int64_t o = transpose ? (i / (d0 / group)) * d1 + j : i;
          double* q = wv->data() + (i * d1 + j) * inner;
          for (int64_t k = 0; k < inner; ++k) q[k] *= a.s[o];
        }
      }
      auto bias = FoldedBias(*p, 2, a, w->dtype());
      auto wt = FloatTensor(w->dtype(), w->shape(), *wv);
      if (!bias || !wt) return false;
      p->inputs.resize(3);
      p->inputs[1] = AddInitializer(absl::StrCat(p->inputs[1], "/folded"), *wt);
      p->inputs[2] = *bias;
      Replace(bn_index, *p);
      return true;
    }
    if (p->op_type == "Gemm") {
      if (p->opset < 7) return false;
      const Tensor* b = ConstantTensor(graph_, p->inputs.size() > 1 ? p->inputs[1] : "");
      if (b == nullptr || b->rank() != 2 || !IsFloatingPoint(b->dtype())) return false;
      const bool tb = p->GetInt("transB", 0) != 0;
      const int64_t n = tb ? b->dim(0) : b->dim(1);
      if (n != c) return false;
      std::vector<double> cv(c, 0.0);
      if (p->HasInput(2)) {
        const Tensor* ct = ConstantTensor(graph_, p->inputs[2]);
        if (ct == nullptr || ct->rank() > 2 || (ct->size() != 1 && ct->size() != c) ||
            (ct->rank() >= 1 && ct->dim(ct->rank() - 1) != ct->size())) {
          return false;  // C varies per row: not a per-column bias
        }
        auto v = ops::ReadDoubles(*ct);
        if (!v.ok()) return false;
        const double beta = p->GetFloat("beta", 1.0f);
        for (int64_t k = 0; k < c; ++k) cv[k] = beta * (*v)[v->size() == 1 ? 0 : k];
      }
      auto bv = ops::ReadDoubles(*b);
      if (!bv.ok()) return false;
      for (int64_t r = 0; r < b->dim(0); ++r)
        for (int64_t q = 0; q < b->dim(1); ++q) (*bv)[r * b->dim(1) + q] *= a.s[tb ? r : q];
      for (int64_t k = 0; k < c; ++k) cv[k] = cv[k] * a.s[k] + a.t[k];
      auto bt = FloatTensor(b->dtype(), b->shape(), *bv);
      auto ct = FloatTensor(b->dtype(), {c}, cv);
      if (!bt || !ct) return false;
      p->inputs.resize(3);
      p->inputs[1] = AddInitializer(absl::StrCat(p->inputs[1], "/folded"), *bt);
      p->inputs[2] = AddInitializer(absl::StrCat(p->outputs[0], "/folded_bias"), *ct);
      SetFloat(*p, "beta", 1.0f);
      Replace(bn_index, *p);
      return true;
    }
    // MatMul (+ Add bias) with 2-D A and constant 2-D B.
    Node* add = nullptr;
    size_t bias_input = 0;
    if (p->op_type == "Add") {
      for (size_t side = 0; side < 2 && add == nullptr; ++side) {
        size_t mi = 0;
        if (p->inputs.size() != 2 || !ConstantTensor(graph_, p->inputs[1 - side])) continue;
        Node* mm = SoleProducer(p->inputs[side], &mi);
        if (mm != nullptr && mm->op_type == "MatMul" && mm->domain.empty()) {
          add = p;
          bias_input = 1 - side;
          p = mm;
        }
      }
      if (add == nullptr) return false;
    }
    if (p->op_type != "MatMul" || p->inputs.size() != 2) return false;
    const Tensor* b = ConstantTensor(graph_, p->inputs[1]);
    if (b == nullptr || b->rank() != 2 || b->dim(1) != c || !IsFloatingPoint(b->dtype())) return false;
    if (Rank(p->inputs[0]) != 2) return false;
    auto bv = ops::ReadDoubles(*b);
    if (!bv.ok()) return false;
    for (int64_t r = 0; r < b->dim(0); ++r)
      for (int64_t q = 0; q < c; ++q) (*bv)[r * c + q] *= a.s[q];
    auto bt = FloatTensor(b->dtype(), b->shape(), *bv);
    if (!bt) return false;
    if (add != nullptr) {
      const Tensor* bias = ConstantTensor(graph_, add->inputs[bias_input]);
      if (bias->rank() > 2 || (bias->size() != 1 && bias->size() != c) ||
          (bias->rank() >= 1 && bias->dim(bias->rank() - 1) != bias->size()) || bias->dtype() != b->dtype()) {
        return false;
      }
      auto v = ops::ReadDoubles(*bias);
      if (!v.ok()) return false;
      std::vector<double> nb(c);
      for (int64_t k = 0; k < c; ++k) nb[k] = (*v)[v->size() == 1 ? 0 : k] * a.s[k] + a.t[k];
      auto nt = FloatTensor(b->dtype(), {c}, nb);
      if (!nt) return false;
      p->inputs[1] = AddInitializer(absl::StrCat(p->inputs[1], "/folded"), *bt);
      add->inputs[bias_input] = AddInitializer(absl::StrCat(add->outputs[0], "/folded_bias"), *nt);
      Replace(bn_index, *add);
      return true;
    }
    auto tt = FloatTensor(b->dtype(), {c}, a.t);
    if (!tt) return false;
    p->inputs[1] = AddInitializer(absl::StrCat(p->inputs[1], "/folded"), *bt);
    // BN becomes the Add of its shift.
    Node& node = graph_.nodes[bn_index];
    Node shift;
    shift.name = node.name;
    shift.op_type = "Add";
    shift.opset = node.opset;
    shift.inputs = {node.inputs[0], AddInitializer(absl::StrCat(node.outputs[0], "/shift"), *tt)};
    shift.outputs = {node.outputs[0]};
    node = std::move(shift);
    return true;
  }

  bool FoldIntoConsumer(size_t bn_index, const Affine& a) {
    const Node& bn = graph_.nodes[bn_index];
    if (!ReadOnce(bn.outputs[0])) return false;
    Node* conv = nullptr;
    for (size_t j = bn_index + 1; j < graph_.nodes.size(); ++j) {
      Node& n = graph_.nodes[j];
      auto it = std::find(n.inputs.begin(), n.inputs.end(), bn.outputs[0]);
      if (removed_[j] || it == n.inputs.end()) continue;
      if (it == n.inputs.begin() && n.op_type == "Conv" && n.domain.empty()) conv = &n;
      break;  // the one reader
    }
    if (conv == nullptr || conv->GetInt("group", 1) != 1) return false;
    const std::string auto_pad = conv->GetString("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID" && !auto_pad.empty()) return false;
    for (int64_t p : conv->GetInts("pads"))
      if (p != 0) return false;
    const Tensor* w = ConstantTensor(graph_, conv->inputs.size() > 1 ? conv->inputs[1] : "");
    const int64_t c = static_cast<int64_t>(a.s.size());
    if (w == nullptr || w->rank() < 3 || w->dim(1) != c || !IsFloatingPoint(w->dtype())) return false;
    auto wv = ops::ReadDoubles(*w);
    if (!wv.ok()) return false;
    const int64_t m = w->dim(0);
    const int64_t inner = NumElements(Shape(w->shape().begin() + 2, w->shape().end()));
    std::vector<double> b(m, 0.0);
    if (conv->HasInput(2)) {
      auto v = ConstantDoubles(graph_, conv->inputs[2]);
      if (!v || static_cast<int64_t>(v->size()) != m) return false;
      b = *v;
    }
    for (int64_t o = 0; o < m; ++o) {
      for (int64_t ch = 0; ch < c; ++ch) {
        double* q = wv->data() + (o * c + ch) * inner;
        for (int64_t k = 0; k < inner; ++k) {
          b[o] += q[k] * a.t[ch];
          q[k] *= a.s[ch];
        }
      }
    }
    auto wt = FloatTensor(w->dtype(), w->shape(), *wv);
    auto bt = FloatTensor(w->dtype(), {m}, b);
    if (!wt || !bt) return false;
    conv->inputs.resize(3);
    conv->inputs[0] = bn.inputs[0];
    conv->inputs[1] = AddInitializer(absl::StrCat(conv->inputs[1], "/folded"), *wt);
    conv->inputs[2] = AddInitializer(absl::StrCat(conv->outputs[0], "/folded_bias"), *bt);
    removed_[bn_index] = true;
    return true;
  }

  static void SetFloat(Node& node, const std::string& name, float value) {
    for (Attribute& a : node.attributes) {
      if (a.name == name) {
        a.type = Attribute::Type::kFloat;
        a.f = value;
        return;
      }
    }
    Attribute a;
    a.name = name;
    a.type = Attribute::Type::kFloat;
    a.f = value;
    node.attributes.push_back(std::move(a));
  }

  Graph& graph_;
  NameGenerator names_;
  absl::flat_hash_map<std::string, int> reads_;
  absl::flat_hash_map<std::string, size_t> producers_;
  std::vector<bool> removed_;
  std::optional<ShapePropagation> shapes_;
};

}  // namespace

absl::StatusOr<bool> FoldBatchNorm(Graph& graph) { return Folder(graph).Run(); }

}  // namespace hepml::passes
