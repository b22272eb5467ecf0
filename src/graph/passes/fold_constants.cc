// fold-constants: evaluates, ahead of time, every node whose inputs are all
// constants (initializers the caller cannot override, or outputs of nodes
// folded before it) and replaces it by initializers holding its outputs.
// Constant nodes become initializers this way. Leaves alone: nodes with
// subgraphs, random operators (their outputs differ per run), nodes whose
// outputs are not plain tensors, and outputs larger than kMaxFoldedBytes (a
// ConstantOfShape of a huge shape stays a node rather than bloating memory).
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"
#include "ops/evaluate.h"

namespace hepml::passes {
namespace {

constexpr size_t kMaxFoldedBytes = size_t{64} << 20;

bool IsNondeterministic(const Node& node) {
  static const absl::flat_hash_set<std::string> kRandom = {
      "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Bernoulli", "Multinomial", "Dropout"};
  return node.domain.empty() && kRandom.contains(node.op_type);
}

}  // namespace

absl::StatusOr<bool> FoldConstants(Graph& graph) {
  bool changed = false;
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size());
  for (Node& node : graph.nodes) {
    bool foldable = !HasSubgraph(node) && !IsNondeterministic(node);
    std::vector<Value> values;
    std::vector<const Value*> inputs;
    values.reserve(node.inputs.size());
    for (const std::string& in : node.inputs) {
      if (!foldable) break;
      if (in.empty()) {
        values.emplace_back();
        continue;
      }
      if (!IsConstant(graph, in)) {
        foldable = false;
        break;
      }
      values.push_back(Value::FromTensor(graph.initializers.at(in)));
    }
    if (foldable) {
      for (size_t i = 0; i < node.inputs.size(); ++i) inputs.push_back(node.inputs[i].empty() ? nullptr : &values[i]);
      auto outputs = ops::EvaluateNode(node, inputs);
      // A node that fails here (bad attributes, or a kernel the table lacks)
      // stays: the Session reports the problem where it runs.
      bool ok = outputs.ok();
      size_t bytes = 0;
      if (ok) {
        for (size_t i = 0; i < outputs->size(); ++i) {
          const Value& v = (*outputs)[i];
          if (!node.HasOutput(i)) continue;
          if (!v.is_tensor() || !v.tensor.defined()) ok = false;
          else bytes += v.tensor.nbytes();
        }
      }
      if (ok && bytes <= kMaxFoldedBytes) {
        for (size_t i = 0; i < outputs->size(); ++i) {
          if (node.HasOutput(i)) graph.initializers[node.outputs[i]] = std::move((*outputs)[i].tensor);
        }
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
