#include "graph/verifier.h"

#include <deque>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace hepml {
namespace {

// Appends the names `graph` (with its subgraphs) reads but does not define.
void CollectFreeNames(const Graph& graph, std::vector<std::string>& out) {
  absl::flat_hash_set<std::string> local;
  for (const ValueInfo& vi : graph.inputs) local.insert(vi.name);
  for (const auto& [n, t] : graph.initializers) local.insert(n);
  for (const Node& node : graph.nodes)
    for (const std::string& o : node.outputs) local.insert(o);
  std::vector<std::string> reads;
  for (const Node& node : graph.nodes) {
    for (const std::string& i : node.inputs)
      if (!i.empty()) reads.push_back(i);
    for (const Attribute& a : node.attributes) {
      if (a.g) CollectFreeNames(*a.g, reads);
      for (const auto& g : a.graphs) CollectFreeNames(*g, reads);
    }
  }
  for (const ValueInfo& vi : graph.outputs) reads.push_back(vi.name);
  for (std::string& r : reads)
    if (!local.contains(r)) out.push_back(std::move(r));
}

}  // namespace

absl::Status VerifyAndSortGraph(Graph& graph, const absl::flat_hash_set<std::string>& outer_scope) {
  absl::flat_hash_set<std::string> available;  // defined before any node runs
  for (const ValueInfo& vi : graph.inputs) available.insert(vi.name);
  for (const auto& [name, t] : graph.initializers) available.insert(name);

  // Which node produces each value.
  absl::flat_hash_map<std::string, size_t> producer;
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    for (const std::string& out : graph.nodes[n].outputs) {
      if (out.empty()) continue;
      auto [it, inserted] = producer.emplace(out, n);
      if (!inserted) {
        return absl::InvalidArgumentError(
            absl::StrCat("node ", graph.nodes[n].Describe(), ": value '", out,
                         "' is already produced by node ", graph.nodes[it->second].Describe()));
      }
      if (available.contains(out) && !graph.IsInitializer(out)) {
        return absl::InvalidArgumentError(absl::StrCat("node ", graph.nodes[n].Describe(),
                                                       ": output '", out,
                                                       "' redefines a graph input"));
      }
    }
  }

  // Names a node reads implicitly: the free names of its subgraphs.
  auto implicit_inputs = [](const Node& node, std::vector<std::string>& out) {
    for (const Attribute& a : node.attributes) {
      if (a.g) CollectFreeNames(*a.g, out);
      for (const auto& g : a.graphs) CollectFreeNames(*g, out);
    }
  };

  // Kahn's algorithm over node dependencies, stable with respect to file order.
  const size_t n_nodes = graph.nodes.size();
  std::vector<int> pending(n_nodes, 0);
  std::vector<std::vector<size_t>> consumers(n_nodes);
  for (size_t n = 0; n < n_nodes; ++n) {
    const Node& node = graph.nodes[n];
    std::vector<std::string> reads(node.inputs.begin(), node.inputs.end());
    implicit_inputs(node, reads);
    absl::flat_hash_set<size_t> deps;
    for (const std::string& in : reads) {
      if (in.empty() || available.contains(in)) continue;
      auto it = producer.find(in);
      if (it != producer.end()) {
        if (it->second == n) {
          return absl::InvalidArgumentError(absl::StrCat(
              "node ", node.Describe(), ": reads its own output '", in, "' (cycle)"));
        }
        deps.insert(it->second);
        continue;
      }
      if (outer_scope.contains(in)) continue;
      return absl::InvalidArgumentError(absl::StrCat("node ", node.Describe(), ": input '", in,
                                                     "' is not produced by any node, graph "
                                                     "input or initializer"));
    }
    pending[n] = static_cast<int>(deps.size());
    for (size_t d : deps) consumers[d].push_back(n);
  }
  std::deque<size_t> ready;
  for (size_t n = 0; n < n_nodes; ++n)
    if (pending[n] == 0) ready.push_back(n);
  std::vector<size_t> order;
  order.reserve(n_nodes);
  while (!ready.empty()) {
    size_t n = ready.front();
    ready.pop_front();
    order.push_back(n);
    for (size_t c : consumers[n])
      if (--pending[c] == 0) ready.push_back(c);
  }
  if (order.size() != n_nodes) {
    for (size_t n = 0; n < n_nodes; ++n) {
      if (pending[n] > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "graph '", graph.name, "' has a cycle through node ", graph.nodes[n].Describe()));
      }
    }
  }
  bool sorted = true;
  for (size_t i = 0; i < order.size(); ++i) sorted &= order[i] == i;
  if (!sorted) {
    std::vector<Node> nodes;
    nodes.reserve(n_nodes);
    for (size_t n : order) nodes.push_back(std::move(graph.nodes[n]));
    graph.nodes = std::move(nodes);
  }

  // Graph outputs must be defined.
  for (const ValueInfo& vi : graph.outputs) {
    if (!available.contains(vi.name) && !producer.contains(vi.name) &&
        !outer_scope.contains(vi.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", vi.name, "' is not produced by any node"));
    }
  }

  // Subgraphs see everything this graph defines plus the outer scope.
  absl::flat_hash_set<std::string> inner_scope = outer_scope;
  for (const std::string& v : available) inner_scope.insert(v);
  for (const auto& [v, n] : producer) inner_scope.insert(v);
  for (Node& node : graph.nodes) {
    for (Attribute& a : node.attributes) {
      std::vector<Graph*> subs;
      if (a.g) subs.push_back(a.g.get());
      for (auto& g : a.graphs) subs.push_back(g.get());
      for (Graph* sub : subs) {
        absl::Status st = VerifyAndSortGraph(*sub, inner_scope);
        if (!st.ok()) {
          return absl::Status(st.code(), absl::StrCat("in subgraph '", a.name, "' of node ",
                                                      node.Describe(), ": ", st.message()));
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace hepml
