// eliminate-identities: removes Identity nodes and inference-mode Dropout
// (mask output not read, training_mode absent or constant false) by making
// their readers, subgraphs included, read the input directly. Keeps a node
// whose output is a graph output: that name is part of the model's interface.
// Leaves every other node alone.
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"

namespace hepml::passes {
namespace {

// Dropout in inference: ratio irrelevant; training_mode absent or constant false.
bool IsInferenceDropout(const Graph& graph, const Node& node, const absl::flat_hash_set<std::string>& reads) {
  if (node.op_type != "Dropout" || !node.domain.empty()) return false;
  if (node.HasOutput(1) && reads.contains(node.outputs[1])) return false;  // mask is used
  if (node.opset < 7 && node.GetInt("is_test", 0) == 0) return false;     // old training semantics
  if (node.HasInput(2)) {
    if (!IsConstant(graph, node.inputs[2])) return false;
    const Tensor& t = graph.initializers.at(node.inputs[2]);
    if (t.dtype() != DType::kBool || t.size() != 1 || t.data<bool>()[0]) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<bool> EliminateIdentities(Graph& graph) {
  bool changed = false;
  absl::flat_hash_set<std::string> reads = ReadNames(graph);
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& node = graph.nodes[i];
    bool identity = node.domain.empty() && node.op_type == "Identity";
    bool removable = (identity || IsInferenceDropout(graph, node, reads)) && node.HasInput(0) &&
                     node.HasOutput(0) && !IsGraphOutput(graph, node.outputs[0]);
    if (!removable) {
      kept.push_back(std::move(node));
      continue;
    }
    const std::string from = node.outputs[0], to = node.inputs[0];
    // Readers are later in topological order; rename in the remaining nodes.
    for (size_t j = i + 1; j < graph.nodes.size(); ++j) RenameUsesInNode(graph.nodes[j], from, to);
    changed = true;
  }
  graph.nodes = std::move(kept);
  return changed;
}

}  // namespace hepml::passes
