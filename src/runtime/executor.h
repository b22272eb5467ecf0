// Execution plans: a Graph resolved against the operator table, with values
// numbered into slots, kernels prepared, and each value's last use known so
// intermediate tensors are released as soon as nothing reads them.
//
// A plan is built once (Session creation) and is immutable afterwards; any
// number of threads may execute one plan at once, each with its own Frame.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include <chrono>

#include "graph/graph.h"
#include "hepml/session.h"
#include "oneapi/tbb/task_arena.h"
#include "ops/op_registry.h"
#include "runtime/memory_plan.h"


namespace hepml {

struct GraphPlan;

struct NodePlan {
  const Node* node = nullptr;
  const ops::OpDef* op = nullptr;
  std::unique_ptr<ops::KernelState> state;
  std::vector<int> inputs;   // slot per input, -1 when omitted
  std::vector<int> outputs;  // slot per output, -1 when unnamed
  std::vector<int> release;  // slots last read by this node
  absl::flat_hash_map<std::string, std::unique_ptr<GraphPlan>> subgraphs;  // by attribute
};

struct GraphPlan {
  const Graph* graph = nullptr;
  int num_slots = 0;
  absl::flat_hash_map<std::string, int> slots;
  std::vector<std::pair<int, Value>> constants;        // initializers
  // Per slot: its initializer in `constants`, or null. A frame does not copy
  // the initializers into its slots; a slot without a value reads this.
  std::vector<const Value*> constant_of_slot;
  std::vector<std::pair<int, std::string>> outer;      // read from the enclosing frame
  std::vector<int> input_slots;                        // graph inputs in order
  std::vector<int> output_slots;                       // graph outputs in order
  std::vector<int> output_of_slot;  // per slot: its first position in output_slots, or -1
  std::vector<NodePlan> nodes;
  // True if some node has a subgraph (If/Loop/Scan...): memory is then not
  // planned, since aliasing through branches may depend on data.
  bool has_control_flow = false;
};

// Builds the plan of `graph` (and of its subgraphs). Fails listing every node
// whose operator (at its opset) hepml lacks, or whose kernel rejects its
// attributes or constant inputs.
absl::StatusOr<std::unique_ptr<GraphPlan>> BuildPlan(const Graph& graph);

// Storage for the graph outputs of one slice of a batch (batch_split.h):
// rows of the whole batch's outputs.
class SliceOutputs {
 public:
  virtual ~SliceOutputs() = default;
  // Memory for graph output `output` of this slice, of `shape` (axis 0: the
  // slice's rows). May throw std::bad_alloc.
  virtual Tensor Allocate(size_t output, DType dtype, const Shape& shape) = 0;
};

// Execution environment shared by all frames of one Run call.
struct ExecutionContext {
  oneapi::tbb::task_arena* arena = nullptr;  // null: run serially on the caller
  int concurrency = 1;
  // When set, every node execution is appended (not synchronised: one Run
  // call owns it). Times are relative to `start`.
  RunProfile* profile = nullptr;
  std::chrono::steady_clock::time_point start;
  // Planned memory for the top-level graph's tensors (see memory_plan.h);
  // null: each tensor gets its own heap buffer.
  RunAllocator* allocator = nullptr;
  // Set when this frame runs one slice of a batch: the top-level graph's
  // outputs are allocated there.
  SliceOutputs* slice_outputs = nullptr;
};

// The value of `slot` in a frame of `plan`: the frame's own, else the
// initializer the plan holds for it (not copied into the frame).
inline const Value& SlotValue(const GraphPlan& plan, const std::vector<Value>& slots, int slot) {
  const Value& v = slots[slot];
  if (v.kind == Value::Kind::kTensor && !v.tensor.defined()) {
    if (const Value* c = plan.constant_of_slot[slot]) return *c;
  }
  return v;
}

// Runs `plan` with `inputs` bound to its graph inputs (an undefined Value
// keeps the initializer default) and returns its graph outputs.
// `parent_slots`/`parent_plan` resolve names of the enclosing graph.
absl::StatusOr<std::vector<Value>> ExecutePlan(const GraphPlan& plan, std::vector<Value> inputs,
                                               const ExecutionContext& exec,
                                               const GraphPlan* parent_plan = nullptr,
                                               const std::vector<Value>* parent_slots = nullptr,
                                               int depth = 0);

}  // namespace hepml
