// eliminate-dead-nodes: removes nodes none of whose outputs is read (by a
// later node, a subgraph or a graph output), and initializers nothing reads.
// Leaves graph inputs and outputs, and subgraphs' contents, untouched.
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"

namespace hepml::passes {

absl::StatusOr<bool> EliminateDeadNodes(Graph& graph) {
  bool changed = false;
  absl::flat_hash_set<std::string> live;
  for (const ValueInfo& vi : graph.outputs) live.insert(vi.name);
  std::vector<bool> keep(graph.nodes.size(), false);
  // Backwards: a node is live if any output is live; then its reads are live.
  for (size_t i = graph.nodes.size(); i-- > 0;) {
    const Node& node = graph.nodes[i];
    for (const std::string& out : node.outputs) keep[i] = keep[i] || (!out.empty() && live.contains(out));
    if (!keep[i]) continue;
    for (const std::string& in : node.inputs)
      if (!in.empty()) live.insert(in);
    for (const Attribute& a : node.attributes) {
      std::vector<const Graph*> subs;
      if (a.g) subs.push_back(a.g.get());
      for (const auto& g : a.graphs) subs.push_back(g.get());
      for (const Graph* sub : subs)
        for (const std::string& name : ReadNames(*sub)) live.insert(name);
    }
  }
  std::vector<Node> nodes;
  nodes.reserve(graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (keep[i]) nodes.push_back(std::move(graph.nodes[i]));
    else changed = true;
  }
  graph.nodes = std::move(nodes);
  for (auto it = graph.initializers.begin(); it != graph.initializers.end();) {
    bool is_input = false;
    for (const ValueInfo& vi : graph.inputs) is_input |= vi.name == it->first;
    if (!is_input && !live.contains(it->first)) {
      it = graph.initializers.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  return changed;
}

}  // namespace hepml::passes
