// fuse-edge-features: the edge features of an EdgeConv block (ParticleNet,
// DGCNN) as exporters write them,
//
//   Xe = Expand(Unsqueeze(X, [-1]), [1, 1, 1, K])       X   [N, C, P]
//   Ie = Expand(Unsqueeze(Idx, [1]), [1, C, 1, 1])      Idx [N, P, K] int64
//   Y  = Concat(Xe, Sub(GatherElements(Xe, Ie, axis=2), Xe), axis=1)
//
// becomes Y = EdgeFeatures(X, Idx) (ai.hepml, see src/ops/fused.cc), which
// writes [N, 2C, P, K] directly: neither expansion nor the gathered and
// subtracted tensors are materialised. The arithmetic is the same (one
// float subtraction per element). Requires, proved by shape propagation: X
// float32 of rank 3 with a known C, Idx int64 of rank 3 whose dims are X's
// N, X's P and K (the Expand shapes are the constants fold-shape-subgraphs
// leaves, with 1 for dims kept). The fused node takes the Concat's output
// name and place; the nodes it replaces go when nothing else reads them
// (eliminate-dead-nodes). Leaves alone every other Gather/Expand/Concat, and
// the pattern with other axes, shapes or types.
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"
#include "graph/passes/shape_propagation.h"
#include "ops/kernel_util.h"

namespace hepml::passes {
namespace {

constexpr char kHepmlDomain[] = "ai.hepml";

bool Is(const Node* n, const char* op, size_t inputs) {
  return n != nullptr && n->domain.empty() && n->op_type == op && n->inputs.size() == inputs &&
         n->outputs.size() == 1;
}

// The constant int64 values of input `i` of `n`, or nullopt.
std::optional<std::vector<int64_t>> ConstInts(const Graph& graph, const Node& n, size_t i) {
  if (!n.HasInput(i)) return std::nullopt;
  const Tensor* t = ConstantTensor(graph, n.inputs[i]);
  if (t == nullptr || t->dtype() != DType::kInt64 || t->rank() != 1) return std::nullopt;
  const int64_t* p = t->data<int64_t>();
  return std::vector<int64_t>(p, p + t->size());
}

// The axes of an Unsqueeze (attribute before opset 13, input after) if it
// inserts exactly one axis into a rank-3 value, normalised to [0, 4).
std::optional<int64_t> UnsqueezeAxis(const Graph& graph, const Node& n) {
  std::vector<int64_t> axes;
  if (n.opset < 13) {
    axes = n.GetInts("axes");
  } else {
    auto a = ConstInts(graph, n, 1);
    if (!a) return std::nullopt;
    axes = *a;
  }
  if (axes.size() != 1 || axes[0] < -4 || axes[0] > 3) return std::nullopt;
  return axes[0] < 0 ? axes[0] + 4 : axes[0];
}

class EdgeFeaturesFuser {
 public:
  explicit EdgeFeaturesFuser(Graph& graph) : graph_(graph), index_(graph) {}

  bool Run() {
    bool changed = false;
    const ShapePropagation shapes = ShapePropagation::Run(graph_);
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (!index_.removed(i)) changed |= Fuse(i, shapes);
    }
    index_.Compact();
    return changed;
  }

 private:
  bool Fuse(size_t concat_index, const ShapePropagation& shapes) {
    Node& concat = graph_.nodes[concat_index];
    if (!concat.domain.empty() || concat.op_type != "Concat" || concat.inputs.size() != 2 ||
        concat.outputs.size() != 1) {
      return false;
    }
    const int64_t concat_axis = concat.GetInt("axis", 0);
    if (concat_axis != 1 && concat_axis != -3) return false;
    const std::string& xe_name = concat.inputs[0];
    Node* sub = index_.Producer(concat.inputs[1]);
    if (!Is(sub, "Sub", 2) || sub->inputs[1] != xe_name) return false;
    Node* gather = index_.Producer(sub->inputs[0]);
    if (!Is(gather, "GatherElements", 2) || gather->inputs[0] != xe_name) return false;
    const int64_t gather_axis = gather->GetInt("axis", 0);
    if (gather_axis != 2 && gather_axis != -2) return false;

    // Xe = Expand(Unsqueeze(X, [3]), [1, 1, 1, K]).
    Node* x_expand = index_.Producer(xe_name);
    if (!Is(x_expand, "Expand", 2)) return false;
    auto x_target = ConstInts(graph_, *x_expand, 1);
    if (!x_target || x_target->size() != 4 || (*x_target)[0] != 1 || (*x_target)[1] != 1 || (*x_target)[2] != 1) {
      return false;
    }
    const int64_t k = (*x_target)[3];
    Node* x_unsq = index_.Producer(x_expand->inputs[0]);
    if (x_unsq == nullptr || !x_unsq->domain.empty() || x_unsq->op_type != "Unsqueeze" || x_unsq->outputs.size() != 1 ||
        UnsqueezeAxis(graph_, *x_unsq) != 3) {
      return false;
    }
    const std::string x_name = x_unsq->inputs[0];

    // Ie = Expand(Unsqueeze(Idx, [1]), [1, C, 1, 1]).
    Node* i_expand = index_.Producer(gather->inputs[1]);
    if (!Is(i_expand, "Expand", 2)) return false;
    auto i_target = ConstInts(graph_, *i_expand, 1);
    if (!i_target || i_target->size() != 4 || (*i_target)[0] != 1 || (*i_target)[2] != 1 || (*i_target)[3] != 1) {
      return false;
    }
    const int64_t c = (*i_target)[1];
    Node* i_unsq = index_.Producer(i_expand->inputs[0]);
    if (i_unsq == nullptr || !i_unsq->domain.empty() || i_unsq->op_type != "Unsqueeze" || i_unsq->outputs.size() != 1 ||
        UnsqueezeAxis(graph_, *i_unsq) != 1) {
      return false;
    }
    const std::string idx_name = i_unsq->inputs[0];

    // Types and dims: X float32 [N, C, P], Idx int64 [N, P, K].
    const TypeInfo& x = shapes.Type(x_name);
    const TypeInfo& idx = shapes.Type(idx_name);
    if (x.kind != TypeInfo::Kind::kTensor || idx.kind != TypeInfo::Kind::kTensor) return false;
    if (x.dtype != DType::kFloat32 || idx.dtype != DType::kInt64) return false;
    if (!x.has_shape || !idx.has_shape || x.shape.size() != 3 || idx.shape.size() != 3) return false;
    if (!x.shape[1].known() || x.shape[1].value != c) return false;
    if (!idx.shape[2].known() || idx.shape[2].value != k) return false;
    if (!SymbolicInt::FromDim(idx.shape[0]).SameAs(x.shape[0])) return false;
    if (!SymbolicInt::FromDim(idx.shape[1]).SameAs(x.shape[2])) return false;

    Node fused;
    fused.name = concat.name;
    fused.op_type = "EdgeFeatures";
    fused.domain = kHepmlDomain;
    fused.opset = 1;
    fused.inputs = {x_name, idx_name};
    fused.outputs = {concat.outputs[0]};
    concat = std::move(fused);
    return true;
  }

  Graph& graph_;
  NodeIndex index_;
};

}  // namespace

absl::StatusOr<bool> FuseEdgeFeatures(Graph& graph) { return EdgeFeaturesFuser(graph).Run(); }

}  // namespace hepml::passes
