// hepml's graph IR: a Model holds a Graph of Nodes in topological order.
// Values are named (SSA: each name is produced once); an empty input name is
// an omitted optional input. Subgraphs (If/Loop/Scan bodies) hang off node
// attributes and may read names of enclosing graphs.
//
// The IR is plain data: passes copy or mutate it; nothing here is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "hepml/tensor.h"

namespace hepml {

class Graph;

// The highest opset of the default domain hepml knows.
inline constexpr int kMaxOpset = 21;

// One dimension of a declared shape: a number, a symbol ("batch"), or unknown.
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string param;   // symbolic name, may be empty
  bool known() const { return value >= 0; }
};

// The type of a value: a tensor (dtype and optional shape), a sequence of, or
// an optional of, another type.
struct TypeInfo {
  enum class Kind { kUnknown, kTensor, kSequence, kOptional, kMap };
  Kind kind = Kind::kUnknown;
  DType dtype = DType::kUndefined;  // for kTensor
  bool has_shape = false;           // false: rank unknown
  std::vector<Dim> shape;           // for kTensor when has_shape
  std::shared_ptr<TypeInfo> element;  // for kSequence and kOptional

  static TypeInfo Tensor(DType dtype) {
    TypeInfo t;
    t.kind = Kind::kTensor;
    t.dtype = dtype;
    return t;
  }
  static TypeInfo Tensor(DType dtype, std::vector<Dim> shape) {
    TypeInfo t = Tensor(dtype);
    t.has_shape = true;
    t.shape = std::move(shape);
    return t;
  }
  // "float32[batch,16]", "seq(int64[?])", "optional(...)"
  std::string ToString() const;
};

struct ValueInfo {
  std::string name;
  TypeInfo type;
  std::string doc;
};

struct Attribute {
  enum class Type {
    kUndefined, kFloat, kInt, kString, kTensor, kGraph, kFloats, kInts, kStrings,
    kTensors, kGraphs, kTypeProto, kTypeProtos, kSparseTensor, kSparseTensors
  };
  std::string name;
  Type type = Type::kUndefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
  TypeInfo type_proto;
  std::vector<TypeInfo> type_protos;
};

const char* AttributeTypeName(Attribute::Type type);

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" is the default ONNX domain ("ai.onnx")
  int opset = 0;       // the opset version of `domain` the model imports
  std::vector<std::string> inputs;   // "" = omitted optional input
  std::vector<std::string> outputs;  // "" = unused optional output
  std::vector<Attribute> attributes;

  const Attribute* FindAttribute(std::string_view attr_name) const;
  bool HasAttribute(std::string_view attr_name) const { return FindAttribute(attr_name) != nullptr; }
  int64_t GetInt(std::string_view attr_name, int64_t default_value) const;
  float GetFloat(std::string_view attr_name, float default_value) const;
  std::string GetString(std::string_view attr_name, std::string default_value = "") const;
  std::vector<int64_t> GetInts(std::string_view attr_name, std::vector<int64_t> default_value = {}) const;
  std::vector<float> GetFloats(std::string_view attr_name, std::vector<float> default_value = {}) const;
  std::vector<std::string> GetStrings(std::string_view attr_name) const;
  // nullptr when absent.
  const Tensor* GetTensor(std::string_view attr_name) const;
  const Graph* GetGraph(std::string_view attr_name) const;

  // Input i if present and non-empty.
  bool HasInput(size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
  bool HasOutput(size_t i) const { return i < outputs.size() && !outputs[i].empty(); }
  // "Conv 'conv1'" or "Conv (node 3)" for error messages.
  std::string Describe() const;
  // "ai.onnx" for the default domain.
  const char* DomainName() const { return domain.empty() ? "ai.onnx" : domain.c_str(); }
};

class Graph {
 public:
  std::string name;
  std::string doc;
  std::vector<Node> nodes;  // topological order once verified
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> value_info;  // declared types of intermediate values
  std::map<std::string, Tensor> initializers;

  // Graph inputs that have no initializer: what a caller must feed.
  std::vector<const ValueInfo*> RequiredInputs() const;
  bool IsInitializer(std::string_view value) const {
    return initializers.count(std::string(value)) > 0;
  }
  // Declared type of a value (inputs, outputs, value_info), if any.
  const TypeInfo* FindType(std::string_view value) const;
};

struct Model {
  int64_t ir_version = 0;
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc;
  std::map<std::string, int64_t> opset_imports;  // "" = ai.onnx
  std::map<std::string, std::string> metadata;
  Graph graph;

  // The imported opset of `domain` ("" or "ai.onnx" for the default), or 0.
  int64_t OpsetOf(std::string_view domain) const;
};

// Calls fn(graph, depth) for `graph` and every subgraph under it.
void ForEachGraph(const Graph& graph, const std::function<void(const Graph&, int)>& fn, int depth = 0);

}  // namespace hepml
