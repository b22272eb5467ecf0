// cancel-transpose-reshape: removes or merges data-movement nodes that undo
// or repeat each other:
//   Transpose(p) with p the identity                  -> removed
//   Transpose(p1) -> Transpose(p2)                    -> Transpose(p1[p2[i]]),
//                                                        removed if that is the identity
//   Reshape/Flatten/Squeeze/Unsqueeze -> Reshape(s)   -> Reshape(s) of the first's input
//     (s constant, without 0 entries unless allowzero: only the element count matters)
//   Unsqueeze(a) -> Squeeze(a), Squeeze(a) -> Unsqueeze(a) -> removed
//   Unsqueeze(a1) -> Unsqueeze(a2)                    -> one Unsqueeze
// A removed node's readers (subgraphs included) read its input instead; a
// node whose output is a graph output is kept (its name is the interface).
// A merged first node goes when nothing else reads it (its output read once).
// Ranks come from the nodes' own attributes or shape propagation; nodes whose
// axes cannot be normalised (unknown rank, non-constant axes) are left alone.
#include <algorithm>
#include <numeric>
#include <optional>

#include "absl/strings/str_cat.h"
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"
#include "graph/passes/shape_propagation.h"
#include "ops/kernel_util.h"

namespace hepml::passes {
namespace {

bool IsOp(const Node* n, const char* op) { return n != nullptr && n->domain.empty() && n->op_type == op; }

class Canceller {
 public:
  explicit Canceller(Graph& graph)
      : graph_(graph), index_(graph), names_(graph), shapes_(ShapePropagation::Run(graph)) {}

  bool Run() {
    bool changed = false;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (index_.removed(i)) continue;
      Node& n = graph_.nodes[i];
      if (!n.domain.empty() || n.inputs.empty() || n.outputs.size() != 1 || n.inputs[0].empty()) continue;
      if (n.op_type == "Transpose") changed |= Transpose(i);
      else if (n.op_type == "Reshape") changed |= Reshape(i);
      else if (n.op_type == "Squeeze" || n.op_type == "Unsqueeze") changed |= SqueezePair(i);
    }
    index_.Compact();
    return changed;
  }

 private:
  int Rank(const std::string& value) const { return shapes_.Rank(value); }

  // Readers of node i's output read `to` instead; node i goes.
  bool Bypass(size_t i, const std::string& to) {
    Node& n = graph_.nodes[i];
    if (IsGraphOutput(graph_, n.outputs[0])) return false;
    index_.RenameUses(i, n.outputs[0], to);
    index_.Remove(i);
    return true;
  }

  // Node i now reads `x` instead of its producer p's output; p goes if unread.
  void Skip(size_t i, size_t p_index, const std::string& x) {
    Node& n = graph_.nodes[i];
    const bool sole = index_.ReadOnce(n.inputs[0]);
    n.inputs[0] = x;
    // p's read of x moves to n when p goes; else x has one more reader.
    if (sole) index_.Remove(p_index);
    else index_.AddRead(x);
  }

  // perm of a Transpose, default (reversed dims) resolved with `rank`.
  std::optional<std::vector<int64_t>> Perm(const Node& t, int rank) const {
    std::vector<int64_t> p = t.GetInts("perm");
    if (p.empty()) {
      if (rank < 0) return std::nullopt;
      p.resize(rank);
      std::iota(p.rbegin(), p.rend(), 0);
    }
    std::vector<int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    for (size_t k = 0; k < sorted.size(); ++k)
      if (sorted[k] != static_cast<int64_t>(k)) return std::nullopt;
    return p;
  }

  static bool IsIdentity(const std::vector<int64_t>& p) {
    for (size_t k = 0; k < p.size(); ++k)
      if (p[k] != static_cast<int64_t>(k)) return false;
    return true;
  }

  bool Transpose(size_t i) {
    Node& t2 = graph_.nodes[i];
    size_t pi = 0;
    Node* t1 = index_.Producer(t2.inputs[0], &pi);
    if (IsOp(t1, "Transpose") && !t1->inputs.empty()) {
      int rank = Rank(t1->inputs[0]);
      if (rank < 0 && t1->HasAttribute("perm")) rank = static_cast<int>(t1->GetInts("perm").size());
      auto p1 = Perm(*t1, rank);
      auto p2 = Perm(t2, p1 ? static_cast<int>(p1->size()) : rank);
      if (p1 && p2 && p1->size() == p2->size()) {
        std::vector<int64_t> q(p2->size());
        for (size_t k = 0; k < q.size(); ++k) q[k] = (*p1)[(*p2)[k]];
        const std::string x = t1->inputs[0];
        if (IsIdentity(q)) {
          const bool sole = index_.ReadOnce(t2.inputs[0]);
          if (!Bypass(i, x)) return false;
          if (sole) index_.Remove(pi);
          return true;
        }
        if (!index_.ReadOnce(t2.inputs[0])) return false;
        SetInts(t2, "perm", q);
        Skip(i, pi, x);
        return true;
      }
    }
    auto p = Perm(t2, Rank(t2.inputs[0]));
    if (p && IsIdentity(*p)) return Bypass(i, t2.inputs[0]);
    return false;
  }

  bool Reshape(size_t i) {
    Node& r = graph_.nodes[i];
    if (r.opset < 5 || !r.HasInput(1)) return false;
    const Tensor* shape = ConstantTensor(graph_, r.inputs[1]);
    if (shape == nullptr) return false;
    auto dims = ops::ReadInt64s(*shape);
    if (!dims.ok()) return false;
    const bool allowzero = r.opset >= 14 && r.GetInt("allowzero", 0) != 0;
    if (!allowzero && std::find(dims->begin(), dims->end(), 0) != dims->end()) return false;
    bool changed = false;
    for (;;) {  // through a chain of shape-only nodes
      size_t pi = 0;
      Node* p = index_.Producer(r.inputs[0], &pi);
      if (p == nullptr || !p->domain.empty() || p->inputs.empty() || p->inputs[0].empty() ||
          !index_.ReadOnce(r.inputs[0])) {
        return changed;
      }
      if (!(p->op_type == "Reshape" || p->op_type == "Flatten" || p->op_type == "Squeeze" || p->op_type == "Unsqueeze")) {
        return changed;
      }
      Skip(i, pi, p->inputs[0]);
      changed = true;
    }
  }

  // Axes of a Squeeze/Unsqueeze as written (attribute before opset 13,
  // constant input from 13); nullopt when absent or not constant.
  std::optional<std::vector<int64_t>> RawAxes(const Node& n) const {
    if (n.opset < 13) {
      if (!n.HasAttribute("axes")) return std::nullopt;
      return n.GetInts("axes");
    }
    const Tensor* t = ConstantTensor(graph_, n.inputs.size() > 1 ? n.inputs[1] : "");
    if (t == nullptr) return std::nullopt;
    auto v = ops::ReadInt64s(*t);
    if (!v.ok() || v->empty()) return std::nullopt;
    return *v;
  }

  // `axes` normalised against `rank` and sorted; nullopt if out of range.
  static std::optional<std::vector<int64_t>> Normalized(const std::vector<int64_t>& axes, int rank) {
    if (rank < 0) return std::nullopt;
    auto norm = ops::NormalizeAxes(axes, rank);
    if (!norm.ok()) return std::nullopt;
    std::sort(norm->begin(), norm->end());
    return *norm;
  }

  bool SqueezePair(size_t i) {
    Node& second = graph_.nodes[i];
    size_t pi = 0;
    Node* first = index_.Producer(second.inputs[0], &pi);
    if (first == nullptr || !first->domain.empty() || first->inputs.empty() || first->inputs[0].empty()) return false;
    if (first->op_type != "Squeeze" && first->op_type != "Unsqueeze") return false;
    auto raw1 = RawAxes(*first);
    auto raw2 = RawAxes(second);
    if (!raw1 || !raw2) return false;
    const std::string x = first->inputs[0];
    const std::string mid = second.inputs[0];
    const int n1 = static_cast<int>(raw1->size()), n2 = static_cast<int>(raw2->size());
    int x_rank = Rank(x);
    const int mid_rank = Rank(mid);
    const bool unsq1 = first->op_type == "Unsqueeze", unsq2 = second.op_type == "Unsqueeze";
    if (x_rank < 0 && mid_rank >= 0) x_rank = unsq1 ? mid_rank - n1 : mid_rank + n1;
    if (x_rank < 0) return false;
    if (unsq1 != unsq2) {
      // Unsqueeze(a) -> Squeeze(a) and Squeeze(a) -> Unsqueeze(a) name the
      // same positions of the higher-rank tensor (the middle value, or x):
      // the second puts back exactly what the first changed.
      const int high = unsq1 ? x_rank + n1 : x_rank;
      auto a1 = Normalized(*raw1, high);
      auto a2 = Normalized(*raw2, high);
      if (!a1 || !a2 || *a1 != *a2) return false;
      const bool sole = index_.ReadOnce(mid);
      if (!Bypass(i, x)) return false;
      if (sole) index_.Remove(pi);
      return true;
    }
    if (!unsq1 || !index_.ReadOnce(mid)) return false;
    // Unsqueeze(a1) -> Unsqueeze(a2): one Unsqueeze of the final positions.
    const int r1 = x_rank + n1, r2 = r1 + n2;
    auto a1 = Normalized(*raw1, r1);
    auto a2 = Normalized(*raw2, r2);
    if (!a1 || !a2) return false;
    // Final positions the second does not insert hold the middle dims in order.
    std::vector<int64_t> merged = *a2;
    int64_t mid_pos = 0;
    for (int64_t f = 0; f < r2; ++f) {
      if (std::binary_search(a2->begin(), a2->end(), f)) continue;
      if (std::binary_search(a1->begin(), a1->end(), mid_pos)) merged.push_back(f);
      ++mid_pos;
    }
    std::sort(merged.begin(), merged.end());
    if (second.opset < 13) {
      SetInts(second, "axes", merged);
    } else {
      const std::string name = names_.Fresh(absl::StrCat(second.outputs[0], "/axes"));
      graph_.initializers[name] = Tensor::FromVector<int64_t>({static_cast<int64_t>(merged.size())}, merged);
      second.inputs[1] = name;
    }
    Skip(i, pi, x);
    return true;
  }

  static void SetInts(Node& node, const std::string& name, const std::vector<int64_t>& v) {
    for (Attribute& a : node.attributes) {
      if (a.name == name) {
        a.type = Attribute::Type::kInts;
        a.ints = v;
        return;
      }
    }
    Attribute a;
    a.name = name;
    a.type = Attribute::Type::kInts;
    a.ints = v;
    node.attributes.push_back(std::move(a));
  }

  Graph& graph_;
  NodeIndex index_;
  NameGenerator names_;
  const ShapePropagation shapes_;
};

}  // namespace

absl::StatusOr<bool> CancelTransposeReshape(Graph& graph) { return Canceller(graph).Run(); }

}  // namespace hepml::passes
