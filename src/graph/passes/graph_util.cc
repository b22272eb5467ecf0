#include "graph/passes/graph_util.h"

namespace hepml::passes {
namespace {

void CollectReads(const Graph& graph, absl::flat_hash_set<std::string>& out) {
  for (const Node& node : graph.nodes) {
    for (const std::string& in : node.inputs)
      if (!in.empty()) out.insert(in);
    for (const Attribute& a : node.attributes) {
      if (a.g) CollectReads(*a.g, out);
      for (const auto& g : a.graphs) CollectReads(*g, out);
    }
  }
  for (const ValueInfo& vi : graph.outputs) out.insert(vi.name);
}

}  // namespace

absl::flat_hash_set<std::string> ReadNames(const Graph& graph) {
  absl::flat_hash_set<std::string> out;
  CollectReads(graph, out);
  return out;
}

void RenameUsesInNode(Node& node, const std::string& from, const std::string& to);

namespace {
void RenameIn(Graph& graph, const std::string& from, const std::string& to, bool is_subgraph) {
  for (Node& node : graph.nodes) RenameUsesInNode(node, from, to);
  // A subgraph output may name an enclosing value directly; its binding to
  // the parent is positional, so renaming it is safe.
  if (is_subgraph) {
    for (ValueInfo& vi : graph.outputs)
      if (vi.name == from) vi.name = to;
  }
}
}  // namespace

void RenameUses(Graph& graph, const std::string& from, const std::string& to) {
  RenameIn(graph, from, to, false);
}

void RenameUsesInNode(Node& node, const std::string& from, const std::string& to) {
  for (std::string& in : node.inputs)
    if (in == from) in = to;
  for (Attribute& a : node.attributes) {
    if (a.g) RenameIn(*a.g, from, to, true);
    for (auto& g : a.graphs) RenameIn(*g, from, to, true);
  }
}

bool IsConstant(const Graph& graph, const std::string& name) {
  if (!graph.IsInitializer(name)) return false;
  for (const ValueInfo& vi : graph.inputs)
    if (vi.name == name) return false;
  return true;
}

bool HasSubgraph(const Node& node) {
  for (const Attribute& a : node.attributes)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

}  // namespace hepml::passes
