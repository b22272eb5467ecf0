#include "graph/graph.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hepml {

std::string TypeInfo::ToString() const {
  switch (kind) {
    case Kind::kUnknown: return "?";
    case Kind::kTensor: {
      std::string s(DTypeName(dtype));
      if (!has_shape) return s + "[...]";
      std::vector<std::string> dims;
      for (const Dim& d : shape) {
        dims.push_back(d.known() ? absl::StrCat(d.value) : (d.param.empty() ? "?" : d.param));
      }
      return absl::StrCat(s, "[", absl::StrJoin(dims, ","), "]");
    }
    case Kind::kSequence: return absl::StrCat("seq(", element ? element->ToString() : "?", ")");
    case Kind::kOptional: return absl::StrCat("optional(", element ? element->ToString() : "?", ")");
    case Kind::kMap: return "map";
  }
  return "?";
}

const char* AttributeTypeName(Attribute::Type type) {
  switch (type) {
    case Attribute::Type::kUndefined: return "undefined";
    case Attribute::Type::kFloat: return "float";
    case Attribute::Type::kInt: return "int";
    case Attribute::Type::kString: return "string";
    case Attribute::Type::kTensor: return "tensor";
    case Attribute::Type::kGraph: return "graph";
    case Attribute::Type::kFloats: return "floats";
    case Attribute::Type::kInts: return "ints";
    case Attribute::Type::kStrings: return "strings";
    case Attribute::Type::kTensors: return "tensors";
    case Attribute::Type::kGraphs: return "graphs";
    case Attribute::Type::kTypeProto: return "type_proto";
    case Attribute::Type::kTypeProtos: return "type_protos";
    case Attribute::Type::kSparseTensor: return "sparse_tensor";
    case Attribute::Type::kSparseTensors: return "sparse_tensors";
  }
  return "undefined";
}

const Attribute* Node::FindAttribute(std::string_view attr_name) const {
  for (const Attribute& a : attributes) {
    if (a.name == attr_name) return &a;
  }
  return nullptr;
}

int64_t Node::GetInt(std::string_view attr_name, int64_t default_value) const {
  const Attribute* a = FindAttribute(attr_name);
  return a && a->type == Attribute::Type::kInt ? a->i : default_value;
}

float Node::GetFloat(std::string_view attr_name, float default_value) const {
  const Attribute* a = FindAttribute(attr_name);
  if (!a) return default_value;
  if (a->type == Attribute::Type::kFloat) return a->f;
  if (a->type == Attribute::Type::kInt) return static_cast<float>(a->i);
  return default_value;
}

std::string Node::GetString(std::string_view attr_name, std::string default_value) const {
  const Attribute* a = FindAttribute(attr_name);
  return a && a->type == Attribute::Type::kString ? a->s : default_value;
}

std::vector<int64_t> Node::GetInts(std::string_view attr_name, std::vector<int64_t> default_value) const {
  const Attribute* a = FindAttribute(attr_name);
  return a && a->type == Attribute::Type::kInts ? a->ints : default_value;
}

std::vector<float> Node::GetFloats(std::string_view attr_name, std::vector<float> default_value) const {
  const Attribute* a = FindAttribute(attr_name);
  return a && a->type == Attribute::Type::kFloats ? a->floats : default_value;
}

std::vector<std::string> Node::GetStrings(std::string_view attr_name) const {
  const Attribute* a = FindAttribute(attr_name);
  return a && a->type == Attribute::Type::kStrings ? a->strings : std::vector<std::string>{};
}

const Tensor* Node::GetTensor(std::string_view attr_name) const {
  const Attribute* a = FindAttribute(attr_name);
  return a && a->type == Attribute::Type::kTensor ? &a->t : nullptr;
}

const Graph* Node::GetGraph(std::string_view attr_name) const {
  const Attribute* a = FindAttribute(attr_name);
  return a && a->type == Attribute::Type::kGraph ? a->g.get() : nullptr;
}

std::string Node::Describe() const {
  std::string op = domain.empty() ? op_type : absl::StrCat(domain, ".", op_type);
  if (!name.empty()) return absl::StrCat(op, " '", name, "'");
  if (!outputs.empty()) return absl::StrCat(op, " (output '", outputs[0], "')");
  return op;
}

std::vector<const ValueInfo*> Graph::RequiredInputs() const {
  std::vector<const ValueInfo*> out;
  for (const ValueInfo& vi : inputs) {
    if (!IsInitializer(vi.name)) out.push_back(&vi);
  }
  return out;
}

const TypeInfo* Graph::FindType(std::string_view value) const {
  for (const auto* list : {&inputs, &outputs, &value_info}) {
    for (const ValueInfo& vi : *list) {
      if (vi.name == value) return &vi.type;
    }
  }
  return nullptr;
}

int64_t Model::OpsetOf(std::string_view domain) const {
  std::string key(domain == "ai.onnx" ? "" : domain);
  auto it = opset_imports.find(key);
  return it == opset_imports.end() ? 0 : it->second;
}

void ForEachGraph(const Graph& graph, const std::function<void(const Graph&, int)>& fn, int depth) {
  fn(graph, depth);
  for (const Node& node : graph.nodes) {
    for (const Attribute& a : node.attributes) {
      if (a.g) ForEachGraph(*a.g, fn, depth + 1);
      for (const auto& g : a.graphs) {
        if (g) ForEachGraph(*g, fn, depth + 1);
      }
    }
  }
}

}  // namespace hepml
