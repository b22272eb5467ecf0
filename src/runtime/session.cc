#include "hepml/session.h"

#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/graph.h"
#include "onnx/importer.h"
#include "graph/passes/pass.h"
#include "runtime/batch_split.h"
#include "runtime/executor.h"

namespace hepml {

class Session::Impl {
 public:
  Model model;
  std::unique_ptr<GraphPlan> plan;
  std::vector<TensorInfo> inputs, outputs;
  std::vector<PassInfo> passes;
  size_t weight_bytes = 0;  // initializers after the passes
  absl::flat_hash_map<std::string, size_t> input_index;   // name -> graph input position
  absl::flat_hash_map<std::string, size_t> output_index;  // name -> graph output position
  std::unique_ptr<oneapi::tbb::task_arena> own_arena;
  std::unique_ptr<MemoryPlanner> memory;
  std::unique_ptr<CrewSlices> crew;  // null: slices run by a parallel_for
  ExecutionContext exec;
  BatchSplitInfo batch_split;
  bool split_batches = false;  // batch_split on and the graph separable
  int64_t min_rows_per_slice = 1;

  std::vector<bool> input_is_initializer;  // per graph input position

  // Which graph inputs a call fed (by position).
  using Fed = absl::InlinedVector<bool, 8>;

  absl::Status Init(const SessionOptions& options);
  // The graph input position of input `name`, given as the `k`th of a call
  // (callers usually give the inputs in the graph's order: then no lookup).
  absl::Status CheckInput(const std::string& name, size_t k, const Value& value, size_t* position) const;
  // Binds named inputs (pairs of a name and what `to_value` makes a Value
  // of) to their graph input positions in `bound`; an error names an
  // unknown, repeated or missing input, or one of the wrong type or shape.
  template <typename Named, typename ToValue>
  absl::Status Bind(const Named& named, ToValue to_value, std::vector<Value>& bound, Fed& fed) const;
  // The rows of a call whose fed values all are tensors with the same
  // axis 0 and none overrides an initializer; -1 otherwise.
  int64_t SplittableBatch(const std::vector<Value>& bound, const Fed& fed) const;
  // Runs the graph on bound inputs (Bind).
  absl::StatusOr<std::vector<Value>> Run(std::vector<Value> bound, const Fed& fed,
                                         const std::vector<std::string>& output_names,
                                         RunProfile* profile) const;
};

namespace {

TensorInfo MakeInfo(const ValueInfo& vi) {
  TensorInfo info;
  info.name = vi.name;
  const TypeInfo* t = &vi.type;
  if (t->kind == TypeInfo::Kind::kSequence) info.kind = "sequence";
  if (t->kind == TypeInfo::Kind::kOptional) info.kind = "optional";
  while ((t->kind == TypeInfo::Kind::kSequence || t->kind == TypeInfo::Kind::kOptional) && t->element) {
    t = t->element.get();
  }
  info.dtype = t->dtype;
  info.has_shape = t->has_shape;
  for (const Dim& d : t->shape) {
    info.shape.push_back(d.known() ? d.value : -1);
    info.dim_names.push_back(d.param);
  }
  return info;
}

}  // namespace

absl::Status Session::Impl::Init(const SessionOptions& options) {
  for (size_t i = 0; i < model.graph.inputs.size(); ++i) {
    const ValueInfo& vi = model.graph.inputs[i];
    input_index[vi.name] = i;
    input_is_initializer.push_back(model.graph.IsInitializer(vi.name));
    if (!input_is_initializer.back()) inputs.push_back(MakeInfo(vi));
  }
  for (size_t i = 0; i < model.graph.outputs.size(); ++i) {
    output_index[model.graph.outputs[i].name] = i;
    outputs.push_back(MakeInfo(model.graph.outputs[i]));
  }
  // The precision pass is not in the default pipeline, but its name may be
  // disabled like theirs.
  std::set<std::string> disabled_default = options.disabled_passes, disabled_precision;
  if (disabled_default.erase(passes::kMixedPrecisionPass)) disabled_precision.insert(passes::kMixedPrecisionPass);
  auto run_passes = [&](const passes::PassManager& pm, const std::set<std::string>& disabled) -> absl::Status {
    auto reports = pm.Run(model.graph, disabled);
    if (!reports.ok()) return reports.status();
    for (const passes::PassReport& r : *reports) passes.push_back({r.name, r.milliseconds, r.changed, r.skipped});
    return absl::OkStatus();
  };
  if (options.optimize) HEPML_RETURN_IF_ERROR(run_passes(passes::PassManager::Default(), disabled_default));
  if (options.precision != Precision::kFloat32) {
    const DType target = options.precision == Precision::kFloat16 ? DType::kFloat16 : DType::kBFloat16;
    passes::PassManager precision;
    precision.Add({passes::kMixedPrecisionPass,
                   [target](Graph& graph) { return passes::ConvertToMixedPrecision(graph, target); }});
    HEPML_RETURN_IF_ERROR(run_passes(precision, disabled_precision));
  }
  ForEachGraph(model.graph, [&](const Graph& g, int) {
    for (const auto& [name, t] : g.initializers) weight_bytes += t.nbytes();
  });
  auto built = BuildPlan(model.graph);
  if (!built.ok()) return built.status();
  plan = std::move(*built);
  memory = std::make_unique<MemoryPlanner>(options.plan_memory && !plan->has_control_flow);
  batch_split = AnalyzeBatchSplit(model.graph);
  split_batches = options.batch_split && batch_split.separable;
  min_rows_per_slice = options.batch_split_min_rows > 0 ? options.batch_split_min_rows : batch_split.min_rows_per_slice;
  if (options.arena != nullptr) {
    exec.arena = options.arena;
    exec.concurrency = options.arena->max_concurrency();
  } else {
    int threads = options.num_threads > 0 ? options.num_threads
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    exec.concurrency = threads;
    if (threads > 1) {
      own_arena = std::make_unique<oneapi::tbb::task_arena>(threads);
      exec.arena = own_arena.get();
    }
  }
  const int spin_us = options.slice_spin_us >= 0 ? options.slice_spin_us : (own_arena ? 50 : 0);
  if (split_batches && exec.arena != nullptr && spin_us > 0) {
    crew = std::make_unique<CrewSlices>(std::chrono::microseconds(spin_us), *plan, *memory, exec.concurrency);
  }
  return absl::OkStatus();
}

absl::Status Session::Impl::CheckInput(const std::string& name, size_t k, const Value& value,
                                       size_t* position) const {
  if (k < model.graph.inputs.size() && model.graph.inputs[k].name == name) {
    *position = k;
  } else {
    auto it = input_index.find(name);
    if (it == input_index.end()) {
      std::vector<std::string> names;
      for (const TensorInfo& info : inputs) names.push_back(info.name);
      return absl::InvalidArgumentError(absl::StrCat("unknown input '", name, "'; the model's inputs are: ",
                                                     absl::StrJoin(names, ", ")));
    }
    *position = it->second;
  }
  const TypeInfo& type = model.graph.inputs[*position].type;
  if (type.kind != TypeInfo::Kind::kTensor || value.kind != Value::Kind::kTensor) return absl::OkStatus();
  const Tensor& t = value.tensor;
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat("input '", name, "' is an undefined tensor"));
  if (type.dtype != DType::kUndefined && t.dtype() != type.dtype) {
    return absl::InvalidArgumentError(absl::StrCat("input '", name, "' has dtype ", DTypeName(t.dtype()),
                                                   "; the model expects ", DTypeName(type.dtype)));
  }
  if (!type.has_shape) return absl::OkStatus();
  if (static_cast<size_t>(t.rank()) != type.shape.size()) {
    return absl::InvalidArgumentError(absl::StrCat("input '", name, "' has rank ", t.rank(), " (shape ",
                                                   ShapeToString(t.shape()), "); the model expects rank ",
                                                   type.shape.size(), " (", type.ToString(), ")"));
  }
  for (size_t d = 0; d < type.shape.size(); ++d) {
    if (type.shape[d].known() && type.shape[d].value != t.dim(static_cast<int>(d))) {
      return absl::InvalidArgumentError(absl::StrCat("input '", name, "' has shape ", ShapeToString(t.shape()),
                                                     "; the model fixes dimension ", d, " to ",
                                                     type.shape[d].value, " (", type.ToString(), ")"));
    }
  }
  return absl::OkStatus();
}

int64_t Session::Impl::SplittableBatch(const std::vector<Value>& bound, const Fed& fed) const {
  int64_t batch = -1;
  for (size_t i = 0; i < bound.size(); ++i) {
    if (!fed[i]) continue;
    if (input_is_initializer[i]) return -1;
    const Value& v = bound[i];
    if (v.kind != Value::Kind::kTensor || !v.tensor.defined() || v.tensor.rank() < 1) return -1;
    if (batch >= 0 && v.tensor.dim(0) != batch) return -1;
    batch = v.tensor.dim(0);
  }
  return batch;
}

template <typename Named, typename ToValue>
absl::Status Session::Impl::Bind(const Named& named, ToValue to_value, std::vector<Value>& bound, Fed& fed) const {
  bound.resize(model.graph.inputs.size());
  fed.assign(model.graph.inputs.size(), false);
  size_t k = 0;
  for (const auto& [name, given] : named) {
    Value value = to_value(given);
    size_t pos = 0;
    HEPML_RETURN_IF_ERROR(CheckInput(name, k++, value, &pos));
    if (fed[pos]) return absl::InvalidArgumentError(absl::StrCat("input '", name, "' is given twice"));
    fed[pos] = true;
    bound[pos] = std::move(value);
  }
  for (size_t i = 0; i < fed.size(); ++i) {
    if (!fed[i] && !input_is_initializer[i]) {
      return absl::InvalidArgumentError(absl::StrCat("input '", model.graph.inputs[i].name, "' is missing"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Value>> Session::Impl::Run(std::vector<Value> bound, const Fed& fed,
                                                      const std::vector<std::string>& output_names,
                                                      RunProfile* profile) const {
  std::vector<size_t> wanted;
  for (const std::string& name : output_names) {
    auto it = output_index.find(name);
    if (it == output_index.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown output '", name, "'"));
    }
    wanted.push_back(it->second);
  }
  absl::StatusOr<std::vector<Value>> result;
  ExecutionContext call = exec;
  if (profile) {
    profile->events.clear();
    call.profile = profile;
    call.start = std::chrono::steady_clock::now();
  }
  const int64_t batch = split_batches && call.arena != nullptr ? SplittableBatch(bound, fed) : -1;
  const int slices = NumBatchSlices(batch, call.concurrency, min_rows_per_slice);
  if (slices > 1) {
    // One parallel region for the whole graph (batch_split.h). The crew's
    // caller runs slice 0 on its own thread and its helpers are the arena's
    // workers, so it does not enter the arena (a join and a leave per call);
    // ExecuteBatchSlices enters it for its parallel_for.
    if (crew != nullptr) {
      result = ExecuteBatchSlices(*plan, bound, batch, slices, call, *memory, crew.get());
    } else {
      call.arena->execute([&] { result = ExecuteBatchSlices(*plan, bound, batch, slices, call, *memory, nullptr); });
    }
  } else {
    thread_local std::vector<int64_t> signature;
    MemoryPlanner::Signature(bound, &signature);
    call.allocator = memory->Begin(signature);
    auto run = [&] { result = ExecutePlan(*plan, std::move(bound), call); };
    if (call.arena) call.arena->execute(run);
    else run();
    memory->End(call.allocator);
  }
  if (profile) {
    profile->batch_slices = slices;
    profile->total_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - call.start).count();
  }
  if (!result.ok() || wanted.empty()) return result;
  std::vector<Value> selected;
  for (size_t i : wanted) selected.push_back((*result)[i]);
  return selected;
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

absl::StatusOr<std::unique_ptr<Session>> Session::Create(const std::string& model_path,
                                                         const SessionOptions& options) {
  auto impl = std::make_unique<Impl>();
  HEPML_ASSIGN_OR_RETURN(impl->model, LoadModel(model_path));
  absl::Status st = impl->Init(options);
  if (!st.ok()) return absl::Status(st.code(), absl::StrCat(model_path, ": ", st.message()));
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Session>> Session::CreateFromBytes(std::string_view model_bytes,
                                                                  const SessionOptions& options) {
  auto impl = std::make_unique<Impl>();
  HEPML_ASSIGN_OR_RETURN(impl->model, LoadModelFromBytes(model_bytes));
  HEPML_RETURN_IF_ERROR(impl->Init(options));
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

const std::vector<TensorInfo>& Session::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Session::outputs() const { return impl_->outputs; }
const std::vector<PassInfo>& Session::passes() const { return impl_->passes; }
size_t Session::weight_bytes() const { return impl_->weight_bytes; }
const BatchSplitInfo& Session::batch_split() const { return impl_->batch_split; }

const char* PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kFloat32: return "fp32";
    case Precision::kFloat16: return "fp16";
    case Precision::kBFloat16: return "bf16";
  }
  return "?";
}

absl::StatusOr<Precision> ParsePrecision(std::string_view name) {
  for (Precision p : {Precision::kFloat32, Precision::kFloat16, Precision::kBFloat16}) {
    if (name == PrecisionName(p)) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown precision '", std::string(name), "'; expected fp32, fp16 or bf16"));
}

absl::StatusOr<std::vector<Tensor>> Session::Run(const NamedTensors& inputs,
                                                 const std::vector<std::string>& output_names,
                                                 RunProfile* profile) const {
  std::vector<Value> bound;
  Impl::Fed fed;
  HEPML_RETURN_IF_ERROR(impl_->Bind(inputs, [](const Tensor& t) { return Value::FromTensor(t); }, bound, fed));
  HEPML_ASSIGN_OR_RETURN(std::vector<Value> out, impl_->Run(std::move(bound), fed, output_names, profile));
  std::vector<Tensor> tensors;
  tensors.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].kind != Value::Kind::kTensor) {
      return absl::InvalidArgumentError(absl::StrCat("output ", i, " is a sequence or optional; use RunValues"));
    }
    tensors.push_back(std::move(out[i].tensor));
  }
  return tensors;
}

absl::StatusOr<std::vector<Value>> Session::RunValues(const std::vector<std::pair<std::string, Value>>& inputs,
                                                      const std::vector<std::string>& output_names,
                                                      RunProfile* profile) const {
  std::vector<Value> bound;
  Impl::Fed fed;
  HEPML_RETURN_IF_ERROR(impl_->Bind(inputs, [](const Value& v) { return v; }, bound, fed));
  return impl_->Run(std::move(bound), fed, output_names, profile);
}

}  // namespace hepml
