// fuse-gelu: replaces the exact (erf) GELU that exporters write as
// elementwise nodes,
//     y = Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)      (PyTorch 1.13)
// with one Gelu node (approximate = "none"). Also accepted: Mul by 1/sqrt 2
// instead of Div by sqrt 2, 0.5 applied to x first (Mul(Mul(x, 0.5), ...)),
// and either input order of Add and Mul. Constants must be one-element
// floating-point initializers within 1e-5 (relative) of sqrt 2, 1/sqrt 2, 1
// and 0.5.
//
// Gelu is an opset 20 operator: the fused node's opset field is set to
// max(20, the pattern's opset) so that the operator table finds its row
// whatever opset the model imports (the Session runs the graph, not the
// model's opset_import). Intermediate values must be read only inside the
// pattern and not be graph outputs. Leaves the tanh approximation and every
// other node alone.
#include <cmath>

#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"

namespace hepml::passes {
namespace {

bool Near(std::optional<double> v, double want) {
  return v && std::fabs(*v - want) <= 1e-5 * std::fabs(want);
}

bool Is(const Node* n, const char* op) { return n != nullptr && n->domain.empty() && n->op_type == op && n->inputs.size() == 2; }

class GeluFuser {
 public:
  explicit GeluFuser(Graph& graph) : graph_(graph), index_(graph) {}

  bool Run() {
    bool changed = false;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (!index_.removed(i) && graph_.nodes[i].domain.empty() && graph_.nodes[i].op_type == "Erf") changed |= TryFuse(i);
    }
    index_.Compact();
    return changed;
  }

 private:
  std::optional<double> Scalar(const std::string& v) const { return ConstantScalar(graph_, v); }

  bool TryFuse(size_t erf_index) {
    const Node& erf = graph_.nodes[erf_index];
    if (erf.inputs.size() != 1 || erf.outputs.size() != 1) return false;
    // t = x / sqrt2 or x * (1/sqrt2)
    size_t ti = 0;
    Node* t = index_.Producer(erf.inputs[0], &ti);
    if (t == nullptr || !index_.ReadOnce(erf.inputs[0])) return false;
    std::string x;
    if (Is(t, "Div") && Near(Scalar(t->inputs[1]), std::sqrt(2.0))) {
      x = t->inputs[0];
    } else if (Is(t, "Mul")) {
      for (int side = 0; side < 2 && x.empty(); ++side)
        if (Near(Scalar(t->inputs[1 - side]), std::sqrt(0.5))) x = t->inputs[side];
    }
    if (x.empty()) return false;
    // a = erf + 1
    size_t ai = 0, mi = 0, yi = 0;
    Node* a = index_.SoleReader(erf.outputs[0], &ai);
    if (!Is(a, "Add")) return false;
    const std::string* one = OtherInput(*a, erf.outputs[0]);
    if (one == nullptr || !Near(Scalar(*one), 1.0)) return false;
    // m = u * a, u = x or x * 0.5
    Node* m = index_.SoleReader(a->outputs[0], &mi);
    if (!Is(m, "Mul")) return false;
    const std::string* u = OtherInput(*m, a->outputs[0]);
    if (u == nullptr) return false;
    std::vector<size_t> pattern = {ti, erf_index, ai};
    size_t last = mi;
    if (*u == x) {
      Node* y = index_.SoleReader(m->outputs[0], &yi);
      if (!Is(y, "Mul")) return false;
      const std::string* half = OtherInput(*y, m->outputs[0]);
      if (half == nullptr || !Near(Scalar(*half), 0.5)) return false;
      pattern.push_back(mi);
      last = yi;
    } else {
      size_t hi = 0;
      Node* h = index_.Producer(*u, &hi);
      if (!Is(h, "Mul") || !index_.ReadOnce(*u)) return false;
      const std::string* half = OtherInput(*h, x);
      if (half == nullptr || !Near(Scalar(*half), 0.5)) return false;
      pattern.push_back(hi);
    }
    Node& out = graph_.nodes[last];
    Node gelu;
    gelu.name = out.name;
    gelu.op_type = "Gelu";
    gelu.opset = std::max(20, out.opset);
    gelu.inputs = {x};
    gelu.outputs = {out.outputs[0]};
    out = std::move(gelu);
    for (size_t p : pattern) index_.Remove(p);
    return true;
  }

  Graph& graph_;
  NodeIndex index_;
};

}  // namespace

absl::StatusOr<bool> FuseGelu(Graph& graph) { return GeluFuser(graph).Run(); }

}  // namespace hepml::passes
