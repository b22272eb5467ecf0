// Helpers shared by passes: who reads a value, renaming uses, constants.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "graph/graph.h"

namespace hepml::passes {

// Every name read by the graph's nodes (subgraph free names included) and by
// its outputs.
absl::flat_hash_set<std::string> ReadNames(const Graph& graph);

// Replaces every read of `from` by `to` in the graph's nodes and subgraphs.
void RenameUses(Graph& graph, const std::string& from, const std::string& to);
// The same for one node (its inputs and its subgraphs).
void RenameUsesInNode(Node& node, const std::string& from, const std::string& to);

// True if `name` is an initializer the caller cannot override (an initializer
// that is also a graph input is only a default).
bool IsConstant(const Graph& graph, const std::string& name);

bool HasSubgraph(const Node& node);

}  // namespace hepml::passes
