// fold-shape-subgraphs: folds the shape arithmetic exporters write around
// Reshape and Expand (Shape -> Gather -> Unsqueeze -> Concat ...) using the
// static dims that shape propagation (shape_propagation.h) proves:
//  - a node whose outputs are small integer tensors known element by element
//    (e.g. Gather(Shape(x), 1) where x is [batch, 32]) becomes initializers;
//  - Reshape whose shape input is known up to dims it copies from its data
//    input at the same position (allowzero = 0) gets a constant shape with 0
//    for those: [batch, 32, 4, 16] of data [batch, 32, 64] is [0, 32, 4, 16];
//  - Expand whose shape input is known up to dims equal to its data's gets a
//    constant shape with 1 for those (bidirectional broadcast keeps the data's
//    dim);
//  - Reshape and Expand that return their data unchanged (Expand to ones,
//    Reshape to the data's own dims) are bypassed.
// The shape subgraphs these leave unread are removed by eliminate-dead-nodes.
// Leaves alone: values that depend on a dynamic dim in any other way, nodes
// with subgraphs, random operators, and graph outputs' producers' names.
#include "absl/strings/str_cat.h"
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"
#include "graph/passes/shape_propagation.h"

namespace hepml::passes {
namespace {

bool IsRandom(const Node& node) {
  static const absl::flat_hash_set<std::string> kRandom = {
      "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Bernoulli", "Multinomial"};
  return node.domain.empty() && kRandom.contains(node.op_type);
}

// The shape input of Reshape as a constant, or nullopt if some element is
// neither a number nor the data's dim at its position.
std::optional<std::vector<int64_t>> ReshapeTarget(const Node& node, const ShapePropagation& shapes) {
  if (node.opset < 5 || !node.HasInput(1)) return std::nullopt;
  if (node.opset >= 14 && node.GetInt("allowzero", 0) != 0) return std::nullopt;
  const ValueFacts* target = shapes.Find(node.inputs[1]);
  if (target == nullptr || !target->value) return std::nullopt;
  const TypeInfo& data = shapes.Type(node.inputs[0]);
  std::vector<int64_t> out;
  for (size_t k = 0; k < target->value->size(); ++k) {
    const SymbolicInt& s = (*target->value)[k];
    if (s.known()) {
      out.push_back(*s.number);
    } else if (!s.symbol.empty() && data.has_shape && k < data.shape.size() && s.SameAs(data.shape[k])) {
      out.push_back(0);  // copy the data's dim
    } else {
      return std::nullopt;
    }
  }
  return out;
}

// The shape input of Expand as a constant, or nullopt.
std::optional<std::vector<int64_t>> ExpandTarget(const Node& node, const ShapePropagation& shapes) {
  if (!node.HasInput(1)) return std::nullopt;
  const ValueFacts* target = shapes.Find(node.inputs[1]);
  const TypeInfo& data = shapes.Type(node.inputs[0]);
  if (target == nullptr || !target->value || !data.has_shape) return std::nullopt;
  const auto& v = *target->value;
  const size_t offset = v.size() >= data.shape.size() ? v.size() - data.shape.size() : 0;
  std::vector<int64_t> out;
  for (size_t k = 0; k < v.size(); ++k) {
    const SymbolicInt& s = v[k];
    const bool aligned = v.size() < data.shape.size() || k >= offset;
    const size_t dk = v.size() < data.shape.size() ? k + data.shape.size() - v.size() : k - offset;
    if (aligned && s.SameAs(data.shape[dk])) out.push_back(1);
    else if (s.known()) out.push_back(*s.number);
    else return std::nullopt;
  }
  return out;
}

// True if Reshape/Expand with the constant `target` (as ReshapeTarget and
// ExpandTarget give it) returns its data unchanged.
bool IsNoOp(const Node& node, const std::vector<int64_t>& target, const ShapePropagation& shapes) {
  const TypeInfo& data = shapes.Type(node.inputs[0]);
  if (!data.has_shape) return false;
  if (node.op_type == "Expand") {
    if (target.size() > data.shape.size()) return false;
    for (int64_t d : target)
      if (d != 1) return false;
    return true;
  }
  // Reshape: same rank, each dim copied (0) or the data's own known dim.
  if (target.size() != data.shape.size()) return false;
  for (size_t k = 0; k < target.size(); ++k) {
    const bool copy = target[k] == 0 && !(node.opset >= 14 && node.GetInt("allowzero", 0) != 0);
    if (!copy && !(data.shape[k].known() && data.shape[k].value == target[k])) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<bool> FoldShapeSubgraphs(Graph& graph) {
  const ShapePropagation shapes = ShapePropagation::Run(graph);
  NameGenerator names(graph);
  bool changed = false;
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& node = graph.nodes[i];
    // 1. Every output known: the node becomes initializers.
    bool all_known = !node.outputs.empty() && !HasSubgraph(node) && !IsRandom(node);
    std::vector<Tensor> values;
    for (size_t k = 0; k < node.outputs.size() && all_known; ++k) {
      if (node.outputs[k].empty()) continue;
      const ValueFacts* f = shapes.Find(node.outputs[k]);
      std::optional<Tensor> t = f ? f->AsTensor() : std::nullopt;
      if (!t) all_known = false;
      else values.push_back(*t);
    }
    if (all_known) {
      size_t v = 0;
      for (const std::string& out : node.outputs)
        if (!out.empty()) graph.initializers[out] = values[v++];
      changed = true;
      continue;
    }
    // 2. Reshape / Expand with a shape known up to the data's own dims.
    if (node.domain.empty() && (node.op_type == "Reshape" || node.op_type == "Expand") && node.HasInput(1)) {
      auto target = node.op_type == "Reshape" ? ReshapeTarget(node, shapes) : ExpandTarget(node, shapes);
      if (target && !IsConstant(graph, node.inputs[1])) {
        const std::string name = names.Fresh(absl::StrCat(node.outputs[0], "/shape"));
        graph.initializers[name] = Tensor::FromVector<int64_t>({static_cast<int64_t>(target->size())}, *target);
        node.inputs[1] = name;
        changed = true;
      }
      if (target && IsNoOp(node, *target, shapes) && !IsGraphOutput(graph, node.outputs[0])) {
        // Readers are later in topological order.
        for (size_t j = i + 1; j < graph.nodes.size(); ++j) RenameUsesInNode(graph.nodes[j], node.outputs[0], node.inputs[0]);
        changed = true;
        continue;
      }
    }
    kept.push_back(std::move(node));
  }
  graph.nodes = std::move(kept);
  return changed;
}

}  // namespace hepml::passes
