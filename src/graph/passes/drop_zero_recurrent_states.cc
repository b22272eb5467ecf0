// drop-zero-recurrent-states: removes the initial_h / initial_c inputs of
// LSTM, GRU and RNN nodes that are all zeros, the operators' default when
// the input is omitted. Exporters write them as ConstantOfShape(0) of a shape
// built from Shape(X) (PyTorch: [num_directions, batch, hidden_size]); once
// omitted, that shape arithmetic is dead and goes with eliminate-dead-nodes,
// and the batch no longer flows through a Shape node (the batch-parallel
// execution can then split the graph, see runtime/batch_split.h).
//
// An input is dropped when it is a ConstantOfShape whose value is absent or
// one zero, or a constant tensor of zeros, and its shape, where it is known
// statically, is the state's: rank 3, num_directions and hidden_size in
// their places and the batch dim equal to X's when both are numbers. A shape
// that contradicts it stays, so the kernel still reports it. Leaves every
// other input and node alone.
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"
#include "graph/passes/shape_propagation.h"

namespace hepml::passes {
namespace {

bool AllZero(const Tensor& t) {
  if (t.dtype() == DType::kString) return false;
  const auto* p = static_cast<const uint8_t*>(t.raw_data());
  // -0.0 has its sign bit set: not dropped (same result, but keep it simple).
  for (size_t i = 0; i < t.nbytes(); ++i)
    if (p[i] != 0) return false;
  return true;
}

// True when `value` is known to be all zeros.
bool IsZeros(const Graph& graph, NodeIndex& index, const std::string& value) {
  if (const Tensor* t = ConstantTensor(graph, value)) return AllZero(*t);
  const Node* producer = index.Producer(value);
  if (producer == nullptr || !producer->domain.empty() || producer->op_type != "ConstantOfShape") return false;
  const Tensor* fill = producer->GetTensor("value");
  return fill == nullptr || (fill->size() == 1 && AllZero(*fill));
}

int64_t Directions(const Node& node) { return node.GetString("direction", "forward") == "bidirectional" ? 2 : 1; }

// False when the state's shape is known to differ from what the operator
// expects (then the kernel reports it).
bool ShapeFits(const ShapePropagation& shapes, const Node& node, const std::string& state) {
  const TypeInfo& t = shapes.Type(state);
  if (!t.has_shape) return true;
  if (t.shape.size() != 3) return false;
  const bool seq_major = node.GetInt("layout", 0) == 0;
  const Dim& dirs = t.shape[seq_major ? 0 : 1];
  const Dim& batch = t.shape[seq_major ? 1 : 0];
  const Dim& hidden = t.shape[2];
  if (dirs.known() && dirs.value != Directions(node)) return false;
  if (hidden.known() && hidden.value != node.GetInt("hidden_size", -1)) return false;
  const TypeInfo& x = shapes.Type(node.inputs[0]);
  if (batch.known() && x.has_shape && x.shape.size() == 3) {
    const Dim& xb = x.shape[seq_major ? 1 : 0];
    if (xb.known() && xb.value != batch.value) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<bool> DropZeroRecurrentStates(Graph& graph) {
  bool any = false;
  for (const Node& node : graph.nodes) {
    any |= node.domain.empty() && (node.op_type == "LSTM" || node.op_type == "GRU" || node.op_type == "RNN");
  }
  if (!any) return false;
  const ShapePropagation shapes = ShapePropagation::Run(graph);
  NodeIndex index(graph);
  bool changed = false;
  for (Node& node : graph.nodes) {
    if (!node.domain.empty() || (node.op_type != "LSTM" && node.op_type != "GRU" && node.op_type != "RNN")) continue;
    if (!node.HasInput(0)) continue;
    // initial_h is input 5; LSTM's initial_c is input 6.
    const size_t last = node.op_type == "LSTM" ? 6 : 5;
    for (size_t i = 5; i <= last && i < node.inputs.size(); ++i) {
      if (node.inputs[i].empty() || !IsZeros(graph, index, node.inputs[i]) ||
          !ShapeFits(shapes, node, node.inputs[i])) {
        continue;
      }
      node.inputs[i].clear();
      changed = true;
    }
    while (!node.inputs.empty() && node.inputs.back().empty()) node.inputs.pop_back();
  }
  return changed;
}

}  // namespace hepml::passes
