// mixed-precision: runs the compute-heavy operators of the main graph in
// float16 or bfloat16 while the graph's inputs and outputs keep their types
// (the idea of ONNX Runtime's float16 converter with keep_io_types, with
// hepml's own rules). The Session runs it after the default passes when
// SessionOptions::precision is not fp32.
//
// Changes, in the main graph only:
//  - Compute nodes (MatMul, Gemm, Conv, ConvTranspose, Einsum, LSTM, GRU,
//    RNN) run in the target type when every float input they have is
//    float32 and their operator-table row accepts the target type (so LSTM,
//    GRU and RNN stay float32 at bfloat16, which hepml's kernels lack).
//  - Pass-through nodes (Relu, LeakyRelu, Add, Sub, Mul, MaxPool,
//    BatchNormalization in inference, Concat, Reshape, Flatten, Transpose,
//    Squeeze, Unsqueeze) run in the target type under the same conditions
//    when, in addition, one of their float inputs comes from a node that does:
//    a chain Conv -> Relu -> Conv stays in the target type throughout.
//  - Float32 constant initializers read by converted nodes are stored in the
//    target type: in place when every reader is converted (the float32 copy
//    is dropped, halving its memory), else as a copy named "<name>/<type>".
//  - A Cast float32 -> target (one per value, named "<value>/to_<type>")
//    feeds converted nodes their other float inputs; each float32 output of a
//    converted node is renamed "<output>/<type>" and a Cast back to float32
//    produces the original name, so unconverted readers, subgraphs and graph
//    outputs see what they saw before.
//  - Then every Cast target -> float32 -> target pair is removed (both are
//    exact: float32 holds every float16 and bfloat16 value): the reader reads
//    the reduced-precision value directly, and a Cast back nobody reads any
//    more goes too. Declared types (value_info) are added for the new values.
// Leaves alone: graph inputs and outputs and their types; every other
// operator (Softmax, reductions, LayerNormalization, Exp, Log, Div, Sigmoid,
// anything producing or consuming integers or bools), which keeps running in
// float32; nodes in other domains than the default and ai.hepml (FusedGemm, FusedConv); nodes whose input or output types are not
// known; MaxPool with an Indices output and training-mode BatchNormalization;
// subgraphs (If/Loop/Scan bodies stay float32 and read float32 names);
// initializers that are also graph inputs (callers may override them: they are
// cast at run time like any activation). The graph keeps its topological
// order.
//
// Accuracy: kernels compute float16/bfloat16 in float (ComputeT<T> = float),
// so this is float32 arithmetic with values rounded to the target type where
// they are stored: weights once, activations at each converted node's output.
// Each rounding has a relative error of at most 2^-9 (~2e-3) for bfloat16 (8
// significant bits) and 2^-12 (~2.4e-4) for float16 (11 bits); float16 also
// overflows to inf beyond 65504 and loses precision below 6.1e-5. Through a
// few layers expect relative errors of ~1e-2 (bfloat16) and ~1e-3 (float16).
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"
#include "ops/op_registry.h"

namespace hepml::passes {
namespace {

const absl::flat_hash_set<std::string>& ComputeOps() {
  static const absl::flat_hash_set<std::string> kOps = {"MatMul", "Gemm", "Conv", "ConvTranspose",
                                                        "Einsum", "LSTM", "GRU",  "RNN",
                                                        "FusedGemm", "FusedConv"};
  return kOps;
}

// The default domain and hepml's own (the fused operators the earlier passes
// write, which have every float type).
bool KnownDomain(const Node& node) { return node.domain.empty() || node.domain == "ai.hepml"; }

// Operators that may run in reduced precision next to converted nodes: their
// result is the same rounded value whether computed in float32 and rounded
// afterwards or computed on rounded inputs, up to one more rounding (no
// exponentials, divisions by data, or long reductions).
const absl::flat_hash_set<std::string>& PassThroughOps() {
  static const absl::flat_hash_set<std::string> kOps = {
      "Relu",   "LeakyRelu", "Add",     "Sub",       "Mul",     "MaxPool",  "BatchNormalization",
      "Concat", "Reshape",   "Flatten", "Transpose", "Squeeze", "Unsqueeze"};
  return kOps;
}

bool IsReducedFloat(DType d) { return d == DType::kFloat16 || d == DType::kBFloat16; }

const char* TypeTag(DType d) { return d == DType::kFloat16 ? "fp16" : "bf16"; }

Tensor ConvertFloat32(const Tensor& t, DType target) {
  Tensor out = Tensor::Empty(target, t.shape());
  const float* in = t.data<float>();
  if (target == DType::kFloat16) {
    Float16* o = out.mutable_data<Float16>();
    for (int64_t i = 0; i < t.size(); ++i) o[i] = Float16(in[i]);
  } else {
    BFloat16* o = out.mutable_data<BFloat16>();
    for (int64_t i = 0; i < t.size(); ++i) o[i] = BFloat16(in[i]);
  }
  return out;
}

// Element types of the main graph's values, as far as declarations, initializers
// and the operator table's inference functions tell. A missing entry is unknown.
absl::flat_hash_map<std::string, DType> InferElementTypes(const Graph& graph) {
  absl::flat_hash_map<std::string, DType> types;
  auto declare = [&](const ValueInfo& vi) {
    if (vi.type.kind == TypeInfo::Kind::kTensor && vi.type.dtype != DType::kUndefined) {
      types[vi.name] = vi.type.dtype;
    }
  };
  for (const ValueInfo& vi : graph.inputs) declare(vi);
  for (const ValueInfo& vi : graph.value_info) declare(vi);
  for (const ValueInfo& vi : graph.outputs) declare(vi);
  for (const auto& [name, t] : graph.initializers) types[name] = t.dtype();
  for (const Node& node : graph.nodes) {
    // The listed operators' outputs all have the type of input 0 (MaxPool's
    // Indices aside): enough where the table has no inference function.
    if (KnownDomain(node) && node.HasInput(0) && types.contains(node.inputs[0]) &&
        (ComputeOps().contains(node.op_type) || PassThroughOps().contains(node.op_type))) {
      for (size_t i = 0; i < node.outputs.size(); ++i) {
        if (node.HasOutput(i) && !(node.op_type == "MaxPool" && i == 1)) {
          types.try_emplace(node.outputs[i], types.at(node.inputs[0]));
        }
      }
    }
    const ops::OpDef* def = ops::OpRegistry::Global().Find(node.domain, node.op_type, node.opset);
    if (def == nullptr || def->infer == nullptr) continue;
    ops::InferContext ctx{node, node.opset, {}, {}};
    for (const std::string& in : node.inputs) {
      auto it = in.empty() ? types.end() : types.find(in);
      ctx.input_types.push_back(it == types.end() ? TypeInfo{} : TypeInfo::Tensor(it->second));
      ctx.constant_inputs.push_back(!in.empty() && IsConstant(graph, in) ? &graph.initializers.at(in) : nullptr);
    }
    std::vector<TypeInfo> outputs(node.outputs.size());
    if (!def->infer(ctx, outputs).ok()) continue;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!node.HasOutput(i) || types.contains(node.outputs[i])) continue;
      if (outputs[i].kind == TypeInfo::Kind::kTensor && outputs[i].dtype != DType::kUndefined) {
        types[node.outputs[i]] = outputs[i].dtype;
      }
    }
  }
  return types;
}

class MixedPrecision {
 public:
  MixedPrecision(Graph& graph, DType target) : graph_(graph), target_(target), tag_(TypeTag(target)) {}

  bool Run() {
    types_ = InferElementTypes(graph_);
    CollectNames();
    std::vector<bool> convert = ChooseNodes();
    bool any = false;
    for (bool c : convert) any |= c;
    if (!any) return false;
    ConvertInitializers(convert);
    Rewrite(convert);
    RemoveCancellingCasts();
    DeclareNewValues();
    return true;
  }

 private:
  DType TypeOf(const std::string& name) const {
    auto it = types_.find(name);
    return it == types_.end() ? DType::kUndefined : it->second;
  }

  void CollectNames() {
    ForEachGraph(graph_, [&](const Graph& g, int) {
      for (const ValueInfo& vi : g.inputs) used_.insert(vi.name);
      for (const ValueInfo& vi : g.outputs) used_.insert(vi.name);
      for (const ValueInfo& vi : g.value_info) used_.insert(vi.name);
      for (const auto& [name, t] : g.initializers) used_.insert(name);
      for (const Node& n : g.nodes) {
        used_.insert(n.inputs.begin(), n.inputs.end());
        used_.insert(n.outputs.begin(), n.outputs.end());
      }
    });
    for (const ValueInfo& vi : graph_.outputs) read_outside_nodes_.insert(vi.name);
    for (const Node& n : graph_.nodes) {
      for (const Attribute& a : n.attributes) {
        if (a.g) read_outside_nodes_.merge(ReadNames(*a.g));
        for (const auto& g : a.graphs) read_outside_nodes_.merge(ReadNames(*g));
      }
    }
  }

  std::string Fresh(const std::string& base) {
    std::string name = base;
    for (int i = 1; used_.contains(name); ++i) name = absl::StrCat(base, "_", i);
    used_.insert(name);
    return name;
  }

  // Whether `node` can run in the target type: a listed default-domain
  // operator whose float inputs and outputs are all float32 and whose kernel
  // takes the target type.
  bool Eligible(const Node& node) const {
    if (!KnownDomain(node) || HasSubgraph(node)) return false;
    if (!ComputeOps().contains(node.op_type) && !PassThroughOps().contains(node.op_type)) return false;
    if (node.op_type == "MaxPool" && node.HasOutput(1)) return false;  // int64 indices
    if (node.op_type == "BatchNormalization") {
      for (size_t i = 1; i < node.outputs.size(); ++i)
        if (node.HasOutput(i)) return false;  // training mode: running statistics
    }
    const ops::OpDef* def = ops::OpRegistry::Global().Find(node.domain, node.op_type, node.opset);
    if (def == nullptr || (def->types & ops::Bit(target_)) == 0) return false;
    bool has_float32 = false;
    for (const std::string& in : node.inputs) {
      if (in.empty()) continue;
      DType d = TypeOf(in);
      if (d == DType::kUndefined || (IsFloatingPoint(d) && d != DType::kFloat32)) return false;
      has_float32 |= d == DType::kFloat32;
    }
    for (const std::string& out : node.outputs) {
      if (!out.empty() && TypeOf(out) != DType::kFloat32) return false;
    }
    return has_float32;
  }

  std::vector<bool> ChooseNodes() {
    std::vector<bool> convert(graph_.nodes.size(), false);
    absl::flat_hash_set<std::string> reduced;  // outputs of converted nodes
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      const Node& node = graph_.nodes[i];
      if (!Eligible(node)) continue;
      bool next_to_converted = false;
      for (const std::string& in : node.inputs) next_to_converted |= reduced.contains(in);
      if (!ComputeOps().contains(node.op_type) && !next_to_converted) continue;
      convert[i] = true;
      for (const std::string& out : node.outputs)
        if (!out.empty()) reduced.insert(out);
    }
    return convert;
  }

  // Stores float32 constants read by converted nodes in the target type.
  void ConvertInitializers(const std::vector<bool>& convert) {
    absl::flat_hash_set<std::string> read_by_others = read_outside_nodes_;
    absl::flat_hash_set<std::string> wanted;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      for (const std::string& in : graph_.nodes[i].inputs) {
        if (in.empty() || !IsConstant(graph_, in) || TypeOf(in) != DType::kFloat32) continue;
        (convert[i] ? wanted : read_by_others).insert(in);
      }
    }
    for (const std::string& name : wanted) {
      Tensor converted = ConvertFloat32(graph_.initializers.at(name), target_);
      if (!read_by_others.contains(name)) {
        graph_.initializers[name] = std::move(converted);
        types_[name] = target_;
        constant_[name] = name;
        for (ValueInfo& vi : graph_.value_info)
          if (vi.name == name && vi.type.kind == TypeInfo::Kind::kTensor) vi.type.dtype = target_;
      } else {
        std::string copy = Fresh(absl::StrCat(name, "/", tag_));
        graph_.initializers[copy] = std::move(converted);
        types_[copy] = target_;
        constant_[name] = copy;
      }
    }
  }

  Node MakeCast(const std::string& in, const std::string& out, DType to, int opset) {
    Node cast;
    cast.name = out;
    cast.op_type = "Cast";
    cast.opset = opset;
    cast.inputs = {in};
    cast.outputs = {out};
    Attribute a;
    a.name = "to";
    a.type = Attribute::Type::kInt;
    a.i = static_cast<int64_t>(to);
    cast.attributes.push_back(std::move(a));
    types_[out] = to;
    created_.push_back(out);
    return cast;
  }

  // Casts around every converted node; the casts back keep the old names.
  void Rewrite(const std::vector<bool>& convert) {
    std::vector<Node> nodes;
    nodes.reserve(graph_.nodes.size() * 2);
    absl::flat_hash_map<std::string, std::string> cast_in;  // float32 value -> its reduced cast
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      Node node = std::move(graph_.nodes[i]);
      if (!convert[i]) {
        nodes.push_back(std::move(node));
        continue;
      }
      for (std::string& in : node.inputs) {
        if (in.empty()) continue;
        if (auto c = constant_.find(in); c != constant_.end()) {
          in = c->second;
          continue;
        }
        if (TypeOf(in) != DType::kFloat32) continue;
        auto [it, inserted] = cast_in.try_emplace(in);
        if (inserted) {
          it->second = Fresh(absl::StrCat(in, "/to_", tag_));
          nodes.push_back(MakeCast(in, it->second, target_, node.opset));
        }
        in = it->second;
      }
      std::vector<Node> casts_back;
      for (std::string& out : node.outputs) {
        if (out.empty()) continue;
        std::string reduced = Fresh(absl::StrCat(out, "/", tag_));
        casts_back.push_back(MakeCast(reduced, out, DType::kFloat32, node.opset));
        types_[reduced] = target_;
        created_.push_back(reduced);
        out = reduced;
      }
      nodes.push_back(std::move(node));
      for (Node& c : casts_back) nodes.push_back(std::move(c));
    }
    graph_.nodes = std::move(nodes);
  }

  static bool IsCastTo(const Node& node, DType to) {
    if (node.op_type != "Cast" || !node.domain.empty() || node.inputs.size() != 1 || !node.HasOutput(0)) {
      return false;
    }
    const Attribute* a = node.FindAttribute("to");
    return a != nullptr && a->type == Attribute::Type::kInt && a->i == static_cast<int64_t>(to);
  }

  // Removes Cast(x: target -> float32) -> Cast(-> target) pairs: readers of
  // the second read x. Both casts are exact, so this changes no value.
  void RemoveCancellingCasts() {
    absl::flat_hash_map<std::string, size_t> producer;
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
      for (const std::string& out : graph_.nodes[i].outputs)
        if (!out.empty()) producer[out] = i;
    absl::flat_hash_set<std::string> graph_outputs;
    for (const ValueInfo& vi : graph_.outputs) graph_outputs.insert(vi.name);
    std::vector<bool> removed(graph_.nodes.size(), false);
    std::vector<size_t> first_casts;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      const Node& second = graph_.nodes[i];
      if (!IsCastTo(second, target_) || graph_outputs.contains(second.outputs[0])) continue;
      auto p = producer.find(second.inputs[0]);
      if (p == producer.end()) continue;
      const Node& first = graph_.nodes[p->second];
      if (!IsCastTo(first, DType::kFloat32) || TypeOf(first.inputs[0]) != target_) continue;
      const std::string from = second.outputs[0], to = first.inputs[0];
      for (size_t j = i + 1; j < graph_.nodes.size(); ++j) RenameUsesInNode(graph_.nodes[j], from, to);
      removed[i] = true;
      first_casts.push_back(p->second);
    }
    absl::flat_hash_set<std::string> reads;  // by what is left
    for (const ValueInfo& vi : graph_.outputs) reads.insert(vi.name);
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (removed[i]) continue;
      const Node& n = graph_.nodes[i];
      reads.insert(n.inputs.begin(), n.inputs.end());
      for (const Attribute& a : n.attributes) {
        if (a.g) reads.merge(ReadNames(*a.g));
        for (const auto& g : a.graphs) reads.merge(ReadNames(*g));
      }
    }
    for (size_t i : first_casts) {
      if (!removed[i] && !reads.contains(graph_.nodes[i].outputs[0])) removed[i] = true;
    }
    std::vector<Node> kept;
    kept.reserve(graph_.nodes.size());
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
      if (!removed[i]) kept.push_back(std::move(graph_.nodes[i]));
    graph_.nodes = std::move(kept);
  }

  // value_info for the reduced-precision values still in the graph: the
  // declared shape of the value they stand for, with the target type.
  void DeclareNewValues() {
    absl::flat_hash_set<std::string> produced;
    for (const Node& n : graph_.nodes) produced.insert(n.outputs.begin(), n.outputs.end());
    for (const std::string& name : created_) {
      if (!produced.contains(name) || types_[name] != target_) continue;
      // "<value>/<tag>" or "<value>/to_<tag>", perhaps with a "_N" suffix.
      std::string original = name.substr(0, name.rfind('/'));
      TypeInfo type = TypeInfo::Tensor(target_);
      if (const TypeInfo* declared = graph_.FindType(original);
          declared != nullptr && declared->kind == TypeInfo::Kind::kTensor) {
        type = *declared;
        type.dtype = target_;
      }
      graph_.value_info.push_back({name, type, ""});
    }
  }

  Graph& graph_;
  DType target_;
  std::string tag_;
  absl::flat_hash_map<std::string, DType> types_;
  absl::flat_hash_set<std::string> used_;                // every name in the graph and its subgraphs
  absl::flat_hash_set<std::string> read_outside_nodes_;  // by graph outputs or subgraphs
  absl::flat_hash_map<std::string, std::string> constant_;  // float32 initializer -> reduced one
  std::vector<std::string> created_;                        // names this pass made
};

}  // namespace

absl::StatusOr<bool> ConvertToMixedPrecision(Graph& graph, DType target) {
  if (target == DType::kFloat32) return false;
  if (!IsReducedFloat(target)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mixed precision targets float16 or bfloat16, not ", DTypeName(target)));
  }
  return MixedPrecision(graph, target).Run();
}

}  // namespace hepml::passes
