#include "runtime/executor.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "oneapi/tbb/blocked_range.h"
#include "oneapi/tbb/parallel_for.h"
#include "ops/kernel_context.h"

namespace hepml {
namespace {

// Names a graph (with its subgraphs) reads but does not define.
void FreeNames(const Graph& graph, absl::flat_hash_set<std::string>& out) {
  absl::flat_hash_set<std::string> local;
  for (const ValueInfo& vi : graph.inputs) local.insert(vi.name);
  for (const auto& [n, t] : graph.initializers) local.insert(n);
  for (const Node& node : graph.nodes)
    for (const std::string& o : node.outputs) local.insert(o);
  absl::flat_hash_set<std::string> reads;
  for (const Node& node : graph.nodes) {
    for (const std::string& i : node.inputs)
      if (!i.empty()) reads.insert(i);
    for (const Attribute& a : node.attributes) {
      if (a.g) FreeNames(*a.g, reads);
      for (const auto& g : a.graphs) FreeNames(*g, reads);
    }
  }
  for (const ValueInfo& vi : graph.outputs) reads.insert(vi.name);
  for (const std::string& r : reads)
    if (!local.contains(r)) out.insert(r);
}

// Appends to `missing` one line per node (here and in subgraphs) whose
// operator hepml lacks.
void CollectMissing(const Graph& graph, std::vector<std::string>& missing) {
  for (const Node& node : graph.nodes) {
    if (!ops::OpRegistry::Global().Find(node.domain, node.op_type, node.opset)) {
      missing.push_back(absl::StrCat(node.op_type, " (", node.DomainName(), " opset ", node.opset,
                                     ") at node ", node.Describe()));
    }
    for (const Attribute& a : node.attributes) {
      if (a.g) CollectMissing(*a.g, missing);
      for (const auto& g : a.graphs) CollectMissing(*g, missing);
    }
  }
}

absl::StatusOr<std::unique_ptr<GraphPlan>> BuildPlanImpl(const Graph& graph) {
  auto plan = std::make_unique<GraphPlan>();
  plan->graph = &graph;
  auto slot_of = [&](const std::string& name) {
    auto [it, inserted] = plan->slots.emplace(name, plan->num_slots);
    if (inserted) ++plan->num_slots;
    return it->second;
  };
  for (const ValueInfo& vi : graph.inputs) plan->input_slots.push_back(slot_of(vi.name));
  for (const auto& [name, t] : graph.initializers) plan->constants.emplace_back(slot_of(name), Value::FromTensor(t));
  for (const Node& node : graph.nodes)
    for (const std::string& o : node.outputs)
      if (!o.empty()) slot_of(o);
  absl::flat_hash_set<std::string> free;
  FreeNames(graph, free);
  for (const std::string& name : free) plan->outer.emplace_back(slot_of(name), name);
  for (const ValueInfo& vi : graph.outputs) plan->output_slots.push_back(slot_of(vi.name));

  // Last reader of every slot; graph outputs, constants and outer values stay.
  std::vector<int> last_use(plan->num_slots, -1);
  absl::flat_hash_set<int> keep;
  for (int s : plan->output_slots) keep.insert(s);
  for (const auto& [s, v] : plan->constants) keep.insert(s);
  for (const auto& [s, n] : plan->outer) keep.insert(s);

  plan->nodes.reserve(graph.nodes.size());
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& node = graph.nodes[n];
    NodePlan np;
    np.node = &node;
    np.op = ops::OpRegistry::Global().Find(node.domain, node.op_type, node.opset);
    for (const std::string& in : node.inputs) {
      int s = in.empty() ? -1 : slot_of(in);
      np.inputs.push_back(s);
      if (s >= 0) last_use[s] = static_cast<int>(n);
    }
    for (const std::string& out : node.outputs) np.outputs.push_back(out.empty() ? -1 : slot_of(out));
    for (const Attribute& a : node.attributes) {
      if (!a.g) continue;
      auto sub = BuildPlanImpl(*a.g);
      if (!sub.ok()) return sub.status();
      for (const auto& [s, name] : (*sub)->outer) {
        auto it = plan->slots.find(name);
        if (it != plan->slots.end()) last_use[it->second] = static_cast<int>(n);
      }
      np.subgraphs[a.name] = std::move(*sub);
      plan->has_control_flow = true;
    }
    if (np.op && np.op->prepare) {
      ops::PrepareContext pctx{node, node.opset, {}};
      for (const std::string& in : node.inputs) {
        auto it = graph.initializers.find(in);
        pctx.constant_inputs.push_back(it == graph.initializers.end() ? nullptr : &it->second);
      }
      auto state = np.op->prepare(pctx);
      if (!state.ok()) {
        return absl::Status(state.status().code(),
                            absl::StrCat(node.Describe(), ": ", state.status().message()));
      }
      np.state = std::move(*state);
    }
    plan->nodes.push_back(std::move(np));
  }
  for (int s = 0; s < plan->num_slots; ++s) {
    if (last_use[s] >= 0 && !keep.contains(s)) plan->nodes[last_use[s]].release.push_back(s);
  }
  plan->output_of_slot.assign(plan->num_slots, -1);
  for (size_t k = plan->output_slots.size(); k-- > 0;) plan->output_of_slot[plan->output_slots[k]] = static_cast<int>(k);
  plan->constant_of_slot.assign(plan->num_slots, nullptr);
  for (const auto& [s, v] : plan->constants) plan->constant_of_slot[s] = &v;
  return plan;
}

class KernelContextImpl final : public ops::KernelContext {
 public:
  KernelContextImpl(const NodePlan& np, std::vector<Value>& slots, const GraphPlan& plan,
                    const ExecutionContext& exec, int depth)
      : np_(np), slots_(slots), plan_(plan), exec_(exec), depth_(depth) {}

  const Node& node() const override { return *np_.node; }
  int opset() const override { return np_.node->opset; }
  size_t num_inputs() const override { return np_.inputs.size(); }
  bool HasInput(size_t i) const override {
    return i < np_.inputs.size() && np_.inputs[i] >= 0;
  }
  const Tensor& Input(size_t i) const override { return SlotValue(plan_, slots_, np_.inputs[i]).tensor; }
  const Value& InputValue(size_t i) const override { return SlotValue(plan_, slots_, np_.inputs[i]); }
  size_t num_outputs() const override { return np_.outputs.size(); }
  bool HasOutput(size_t i) const override {
    return i < np_.outputs.size() && np_.outputs[i] >= 0;
  }
  Tensor* Output(size_t i, DType dtype, Shape shape) override {
    Value& v = OutputSlot(i);
    if (depth_ == 0 && exec_.slice_outputs != nullptr && dtype != DType::kString && HasOutput(i) &&
        plan_.output_of_slot[np_.outputs[i]] >= 0) {
      v = Value::FromTensor(exec_.slice_outputs->Allocate(plan_.output_of_slot[np_.outputs[i]], dtype, shape));
    } else if (depth_ == 0 && exec_.allocator != nullptr && dtype != DType::kString) {
      v = Value::FromTensor(exec_.allocator->Allocate(dtype, std::move(shape)));
    } else {
      v = Value::FromTensor(Tensor::Empty(dtype, std::move(shape)));
    }
    return &v.tensor;
  }
  void SetOutput(size_t i, Tensor tensor) override { OutputSlot(i) = Value::FromTensor(std::move(tensor)); }
  void SetOutputValue(size_t i, Value value) override { OutputSlot(i) = std::move(value); }
  const ops::KernelState* state() const override { return np_.state.get(); }

  absl::StatusOr<std::vector<Value>> RunSubgraph(const std::string& attr,
                                                 std::vector<Value> inputs) override {
    auto it = np_.subgraphs.find(attr);
    if (it == np_.subgraphs.end()) return Error("has no subgraph attribute '", attr, "'");
    return ExecutePlan(*it->second, std::move(inputs), exec_, &plan_, &slots_, depth_ + 1);
  }

  void ParallelFor(int64_t begin, int64_t end, int64_t grain,
                   const std::function<void(int64_t, int64_t)>& fn) const override {
    if (end <= begin) return;
    grain = std::max<int64_t>(grain, 1);
    if (exec_.arena == nullptr || exec_.concurrency <= 1 || end - begin <= grain) {
      fn(begin, end);
      return;
    }
    // Already inside the arena (Run entered it): parallel_for uses its threads.
    oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<int64_t>(begin, end, grain),
                              [&](const oneapi::tbb::blocked_range<int64_t>& r) { fn(r.begin(), r.end()); });
  }

  // Slots not yet produced by the kernel, to check afterwards.
  bool OutputsComplete(size_t* missing) const {
    for (size_t i = 0; i < np_.outputs.size(); ++i) {
      if (np_.outputs[i] < 0) continue;
      const Value& v = slots_[np_.outputs[i]];
      if (v.kind == Value::Kind::kTensor && !v.tensor.defined()) {
        *missing = i;
        return false;
      }
    }
    return true;
  }

 private:
  Value& OutputSlot(size_t i) {
    static thread_local Value sink;  // unnamed outputs are dropped
    if (!HasOutput(i)) {
      sink = Value();
      return sink;
    }
    return slots_[np_.outputs[i]];
  }

  const NodePlan& np_;
  std::vector<Value>& slots_;
  const GraphPlan& plan_;
  const ExecutionContext& exec_;
  int depth_;
};

// Slot vectors reused per thread: constructing and destroying a frame's
// values costs more than the arithmetic of a small model. A frame borrows
// a vector for the duration of ExecutePlan (nested frames of subgraphs
// borrow others) and clears every value before giving it back, so nothing
// it held (e.g. planned memory) outlives the call.
class FrameSlots {
 public:
  explicit FrameSlots(int n) {
    std::vector<std::vector<Value>>& pool = Pool();
    if (!pool.empty()) {
      slots_ = std::move(pool.back());
      pool.pop_back();
    }
    slots_.resize(n);
  }
  ~FrameSlots() {
    for (Value& v : slots_) {
      if (v.kind != Value::Kind::kTensor || v.tensor.defined()) v.Clear();
    }
    if (slots_.capacity() <= kMaxPooledSlots) Pool().push_back(std::move(slots_));
  }
  FrameSlots(const FrameSlots&) = delete;
  FrameSlots& operator=(const FrameSlots&) = delete;
  std::vector<Value>& get() { return slots_; }

 private:
  static constexpr size_t kMaxPooledSlots = 1 << 16;
  static std::vector<std::vector<Value>>& Pool() {
    thread_local std::vector<std::vector<Value>> pool;
    return pool;
  }
  std::vector<Value> slots_;
};

absl::Status NodeError(const Node& node, const absl::Status& st) {
  if (absl::StartsWith(st.message(), node.Describe())) return st;
  return absl::Status(st.code(), absl::StrCat(node.Describe(), ": ", st.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<GraphPlan>> BuildPlan(const Graph& graph) {
  std::vector<std::string> missing;
  CollectMissing(graph, missing);
  if (!missing.empty()) {
    return absl::UnimplementedError(absl::StrCat("hepml lacks ", missing.size(), " operator",
                                                 missing.size() == 1 ? "" : "s", " of this model: ",
                                                 absl::StrJoin(missing, "; ")));
  }
  return BuildPlanImpl(graph);
}

absl::StatusOr<std::vector<Value>> ExecutePlan(const GraphPlan& plan, std::vector<Value> inputs,
                                               const ExecutionContext& exec,
                                               const GraphPlan* parent_plan,
                                               const std::vector<Value>* parent_slots, int depth) {
  FrameSlots frame(plan.num_slots);
  std::vector<Value>& slots = frame.get();  // initializers are read from the plan (SlotValue)
  for (const auto& [s, name] : plan.outer) {
    if (parent_plan == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("value '", name, "' is not defined"));
    }
    auto it = parent_plan->slots.find(name);
    if (it == parent_plan->slots.end()) {
      return absl::InvalidArgumentError(absl::StrCat("value '", name, "' is not defined in the enclosing graph"));
    }
    slots[s] = SlotValue(*parent_plan, *parent_slots, it->second);
  }
  if (inputs.size() > plan.input_slots.size()) {
    return absl::InvalidArgumentError(absl::StrCat("graph '", plan.graph->name, "' takes ",
                                                   plan.input_slots.size(), " inputs, got ", inputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    Value& in = inputs[i];
    if (in.kind == Value::Kind::kTensor && !in.tensor.defined()) continue;  // keep the default
    slots[plan.input_slots[i]] = std::move(in);
  }
  for (const NodePlan& np : plan.nodes) {
    const Node& node = *np.node;
    if (np.op->types != ops::kAllTypes && !np.inputs.empty() && np.inputs[0] >= 0) {
      const Value& in0 = SlotValue(plan, slots, np.inputs[0]);
      if (in0.kind == Value::Kind::kTensor && in0.tensor.defined() &&
          !(np.op->types & ops::Bit(in0.tensor.dtype()))) {
        return absl::InvalidArgumentError(absl::StrCat(
            node.Describe(), ": input '", node.inputs[0], "' has type ", DTypeName(in0.tensor.dtype()),
            "; ", node.op_type, " takes ", ops::DTypeSetToString(np.op->types)));
      }
    }
    for (size_t i = 0; i < np.inputs.size(); ++i) {
      if (np.inputs[i] < 0) continue;
      const Value& v = SlotValue(plan, slots, np.inputs[i]);
      if (v.kind == Value::Kind::kTensor && !v.tensor.defined()) {
        return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": input '", node.inputs[i],
                                                       "' has no value (a graph input not fed?)"));
      }
    }
    KernelContextImpl ctx(np, slots, plan, exec, depth);
    const auto t0 = exec.profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    if (depth == 0 && exec.allocator) exec.allocator->set_step(static_cast<int>(&np - plan.nodes.data()));
    absl::Status st;
    try {
      st = np.op->compute(ctx);
    } catch (const std::bad_alloc&) {
      st = absl::ResourceExhaustedError("out of memory allocating an output (its size comes from the input data?)");
    }
    if (exec.profile) {
      const auto t1 = std::chrono::steady_clock::now();
      exec.profile->events.push_back(ProfileEvent{
          node.name.empty() ? node.Describe() : node.name,
          node.domain.empty() ? node.op_type : absl::StrCat(node.domain, ".", node.op_type), depth,
          std::chrono::duration_cast<std::chrono::nanoseconds>(t0 - exec.start).count(),
          std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()});
    }
    if (!st.ok()) return NodeError(node, st);
    size_t missing = 0;
    if (!ctx.OutputsComplete(&missing)) {
      return absl::InternalError(absl::StrCat(node.Describe(), ": kernel did not produce output ", missing,
                                              " ('", node.outputs[missing], "')"));
    }
    for (int s : np.release) slots[s].Clear();
  }
  // Values released by graph end (outputs are kept) belong to the last step.
  if (depth == 0 && exec.allocator) exec.allocator->set_step(static_cast<int>(plan.nodes.size()));
  std::vector<Value> outputs;
  outputs.reserve(plan.output_slots.size());
  for (size_t i = 0; i < plan.output_slots.size(); ++i) {
    const Value& v = SlotValue(plan, slots, plan.output_slots[i]);
    if (v.kind == Value::Kind::kTensor && !v.tensor.defined()) {
      return absl::InvalidArgumentError(absl::StrCat("graph output '", plan.graph->outputs[i].name,
                                                     "' has no value"));
    }
    outputs.push_back(v);
  }
  return outputs;
}

}  // namespace hepml
