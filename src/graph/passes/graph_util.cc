#include "graph/passes/graph_util.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "ops/kernel_util.h"

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

bool IsGraphOutput(const Graph& graph, const std::string& name) {
  for (const ValueInfo& vi : graph.outputs)
    if (vi.name == name) return true;
  return false;
}

namespace {
void CountSubgraphReads(const Graph& graph, absl::flat_hash_map<std::string, int>& counts) {
  for (const Node& node : graph.nodes) {
    for (const Attribute& a : node.attributes) {
      std::vector<const Graph*> subs;
      if (a.g) subs.push_back(a.g.get());
      for (const auto& g : a.graphs) subs.push_back(g.get());
      for (const Graph* sub : subs)
        for (const std::string& name : ReadNames(*sub)) ++counts[name];
    }
  }
}
}  // namespace

absl::flat_hash_map<std::string, int> CountReads(const Graph& graph) {
  absl::flat_hash_map<std::string, int> counts;
  for (const Node& node : graph.nodes)
    for (const std::string& in : node.inputs)
      if (!in.empty()) ++counts[in];
  for (const ValueInfo& vi : graph.outputs) ++counts[vi.name];
  CountSubgraphReads(graph, counts);
  return counts;
}

absl::flat_hash_map<std::string, size_t> ProducerIndex(const Graph& graph) {
  absl::flat_hash_map<std::string, size_t> index;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    for (const std::string& out : graph.nodes[i].outputs)
      if (!out.empty()) index[out] = i;
  return index;
}

namespace {
void CollectNames(const Graph& graph, absl::flat_hash_set<std::string>& used) {
  for (const ValueInfo& vi : graph.inputs) used.insert(vi.name);
  for (const ValueInfo& vi : graph.outputs) used.insert(vi.name);
  for (const ValueInfo& vi : graph.value_info) used.insert(vi.name);
  for (const auto& [name, t] : graph.initializers) used.insert(name);
  for (const Node& node : graph.nodes) {
    used.insert(node.name);
    for (const std::string& s : node.inputs) used.insert(s);
    for (const std::string& s : node.outputs) used.insert(s);
    for (const Attribute& a : node.attributes) {
      if (a.g) CollectNames(*a.g, used);
      for (const auto& g : a.graphs) CollectNames(*g, used);
    }
  }
}
}  // namespace

NameGenerator::NameGenerator(const Graph& graph) { CollectNames(graph, used_); }

std::string NameGenerator::Fresh(const std::string& base) {
  std::string name = base;
  for (int i = 1; used_.contains(name); ++i) name = absl::StrCat(base, "_", i);
  used_.insert(name);
  return name;
}

const Tensor* ConstantTensor(const Graph& graph, const std::string& name) {
  if (name.empty() || !IsConstant(graph, name)) return nullptr;
  return &graph.initializers.at(name);
}

std::optional<double> ConstantScalar(const Graph& graph, const std::string& name) {
  const Tensor* t = ConstantTensor(graph, name);
  if (t == nullptr || t->size() != 1 || !IsFloatingPoint(t->dtype())) return std::nullopt;
  auto v = ops::ReadScalarDouble(*t);
  if (!v.ok()) return std::nullopt;
  return *v;
}

NodeIndex::NodeIndex(Graph& graph)
    : graph_(graph), reads_(CountReads(graph)), producers_(ProducerIndex(graph)), removed_(graph.nodes.size(), false) {
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    for (const std::string& in : graph.nodes[i].inputs)
      if (!in.empty()) readers_[in] = i;
}

int NodeIndex::Reads(const std::string& value) const {
  auto it = reads_.find(value);
  return it == reads_.end() ? 0 : it->second;
}

bool NodeIndex::ReadOnce(const std::string& value) const {
  return Reads(value) == 1 && !IsGraphOutput(graph_, value);
}

Node* NodeIndex::Producer(const std::string& value, size_t* index) {
  auto it = producers_.find(value);
  if (it == producers_.end() || removed_[it->second]) return nullptr;
  if (index) *index = it->second;
  return &graph_.nodes[it->second];
}

Node* NodeIndex::SoleReader(const std::string& value, size_t* index) {
  if (!ReadOnce(value)) return nullptr;
  auto it = readers_.find(value);  // null when the one read is in a subgraph
  if (it == readers_.end() || removed_[it->second]) return nullptr;
  const Node& n = graph_.nodes[it->second];
  if (std::find(n.inputs.begin(), n.inputs.end(), value) == n.inputs.end()) return nullptr;
  if (index) *index = it->second;
  return &graph_.nodes[it->second];
}

void NodeIndex::RenameUses(size_t after, const std::string& from, const std::string& to) {
  for (size_t j = after + 1; j < graph_.nodes.size(); ++j) RenameUsesInNode(graph_.nodes[j], from, to);
  reads_[to] += Reads(from);
  reads_.erase(from);
}

void NodeIndex::Compact() {
  std::vector<Node> kept;
  kept.reserve(graph_.nodes.size());
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    if (!removed_[i]) kept.push_back(std::move(graph_.nodes[i]));
  graph_.nodes = std::move(kept);
  removed_.assign(graph_.nodes.size(), false);
  producers_ = ProducerIndex(graph_);
  reads_ = CountReads(graph_);
  readers_.clear();
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    for (const std::string& in : graph_.nodes[i].inputs)
      if (!in.empty()) readers_[in] = i;
}

const std::string* OtherInput(const Node& node, const std::string& value) {
  if (node.inputs.size() != 2) return nullptr;
  if (node.inputs[0] == value) return &node.inputs[1];
  if (node.inputs[1] == value) return &node.inputs[0];
  return nullptr;
}

}  // namespace hepml::passes
