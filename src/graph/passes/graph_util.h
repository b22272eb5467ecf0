// Helpers shared by passes: who reads a value, renaming uses, constants.
#pragma once

#include <optional>
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

bool IsGraphOutput(const Graph& graph, const std::string& name);

// How many times each value is read: once per node input slot, once per
// graph output, and once per subgraph that names it (a value absent from the
// map is not read).
absl::flat_hash_map<std::string, int> CountReads(const Graph& graph);

// Index in graph.nodes of the node producing each value.
absl::flat_hash_map<std::string, size_t> ProducerIndex(const Graph& graph);

// Value names not yet used in a graph (or its subgraphs), for nodes and
// initializers a pass adds.
class NameGenerator {
 public:
  explicit NameGenerator(const Graph& graph);
  // `base` if unused, else `base` + "_1", "_2", ...; the name is then taken.
  std::string Fresh(const std::string& base);

 private:
  absl::flat_hash_set<std::string> used_;
};

// Who produces and who reads each value, for passes that match chains of
// nodes and replace them. Nodes are removed by marking; Compact() drops the
// marked ones. Built once: a pass that rewires values must keep it in step
// (SetProducer) or not rely on the changed entries.
class NodeIndex {
 public:
  explicit NodeIndex(Graph& graph);

  Graph& graph() { return graph_; }
  // Number of reads (see CountReads).
  int Reads(const std::string& value) const;
  // Read exactly once and not a graph output: the value may disappear when
  // its one reader is fused with its producer.
  bool ReadOnce(const std::string& value) const;
  // The live node producing `value` (null for inputs and initializers);
  // *index receives its position when non-null.
  Node* Producer(const std::string& value, size_t* index = nullptr);
  // The one live node reading `value` when ReadOnce(value), else null.
  Node* SoleReader(const std::string& value, size_t* index = nullptr);
  void SetProducer(const std::string& value, size_t index) { producers_[value] = index; }
  // Makes the nodes after position `after` read `to` where they read `from`
  // (subgraphs included), counting the moved reads for `to`.
  void RenameUses(size_t after, const std::string& from, const std::string& to);
  // Counts one more read of `value` (a node now reads it). Read counts may
  // over-count (removed nodes' reads stay counted), never under-count.
  void AddRead(const std::string& value) { ++reads_[value]; }

  bool removed(size_t i) const { return removed_[i]; }
  void Remove(size_t i) { removed_[i] = true; }
  // Drops removed nodes from the graph (keeping order). Invalidates indices.
  void Compact();

 private:
  Graph& graph_;
  absl::flat_hash_map<std::string, int> reads_;
  absl::flat_hash_map<std::string, size_t> producers_;
  absl::flat_hash_map<std::string, size_t> readers_;  // the last reader of each value
  std::vector<bool> removed_;
};

// For a two-input node that reads `value`, the other input (null if the
// node does not read it).
const std::string* OtherInput(const Node& node, const std::string& value);

// A constant (see IsConstant) as a tensor, or null.
const Tensor* ConstantTensor(const Graph& graph, const std::string& name);
// The single value of a one-element float-type constant, or nullopt.
std::optional<double> ConstantScalar(const Graph& graph, const std::string& name);

}  // namespace hepml::passes
