#include "ops/op_test_util.h"

#include "absl/strings/str_cat.h"
#include "runtime/executor.h"

namespace hepml::ops::testing {

Attribute AttrInt(const std::string& name, int64_t v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kInt;
  a.i = v;
  return a;
}
Attribute AttrFloat(const std::string& name, float v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kFloat;
  a.f = v;
  return a;
}
Attribute AttrString(const std::string& name, const std::string& v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kString;
  a.s = v;
  return a;
}
Attribute AttrInts(const std::string& name, std::vector<int64_t> v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kInts;
  a.ints = std::move(v);
  return a;
}
Attribute AttrFloats(const std::string& name, std::vector<float> v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kFloats;
  a.floats = std::move(v);
  return a;
}
Attribute AttrStrings(const std::string& name, std::vector<std::string> v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kStrings;
  a.strings = std::move(v);
  return a;
}
Attribute AttrTensor(const std::string& name, Tensor v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kTensor;
  a.t = std::move(v);
  return a;
}
Attribute AttrGraph(const std::string& name, Graph g) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kGraph;
  a.g = std::make_shared<Graph>(std::move(g));
  return a;
}

absl::StatusOr<std::vector<Value>> RunOpValues(const OpSpec& spec, std::vector<Value> inputs) {
  Graph g;
  g.name = "op_test";
  Node node;
  node.op_type = spec.op_type;
  node.domain = spec.domain;
  node.opset = spec.opset;
  node.attributes = spec.attributes;
  std::vector<Value> fed;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& v = inputs[i];
    if (v.kind == Value::Kind::kTensor && !v.tensor.defined()) {
      node.inputs.push_back("");
      continue;
    }
    std::string name = absl::StrCat("in", i);
    node.inputs.push_back(name);
    ValueInfo vi;
    vi.name = name;
    g.inputs.push_back(vi);
    fed.push_back(v);
  }
  for (int i = 0; i < spec.num_outputs; ++i) {
    std::string name = absl::StrCat("out", i);
    node.outputs.push_back(name);
    ValueInfo vi;
    vi.name = name;
    g.outputs.push_back(vi);
  }
  g.nodes.push_back(node);
  auto plan = BuildPlan(g);
  if (!plan.ok()) return plan.status();
  ExecutionContext exec;
  return ExecutePlan(**plan, std::move(fed), exec);
}

absl::StatusOr<std::vector<Tensor>> RunOp(const std::string& op_type, int opset,
                                          std::vector<Tensor> inputs,
                                          std::vector<Attribute> attributes, int num_outputs) {
  OpSpec spec{op_type, opset, "", std::move(attributes), num_outputs};
  std::vector<Value> values;
  for (Tensor& t : inputs) values.push_back(Value::FromTensor(std::move(t)));
  auto out = RunOpValues(spec, std::move(values));
  if (!out.ok()) return out.status();
  std::vector<Tensor> tensors;
  for (Value& v : *out) tensors.push_back(std::move(v.tensor));
  return tensors;
}

absl::StatusOr<std::vector<Tensor>> RunOpWithConstants(const std::string& op_type, int opset,
                                                       std::vector<Tensor> inputs,
                                                       const std::vector<bool>& constant,
                                                       std::vector<Attribute> attributes) {
  Graph g;
  g.name = "op_test";
  Node node;
  node.op_type = op_type;
  node.opset = opset;
  node.attributes = std::move(attributes);
  std::vector<Value> fed;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = absl::StrCat("in", i);
    node.inputs.push_back(name);
    if (i < constant.size() && constant[i]) {
      g.initializers[name] = std::move(inputs[i]);
      continue;
    }
    ValueInfo vi;
    vi.name = name;
    g.inputs.push_back(vi);
    fed.push_back(Value::FromTensor(std::move(inputs[i])));
  }
  node.outputs.push_back("out0");
  ValueInfo vi;
  vi.name = "out0";
  g.outputs.push_back(vi);
  g.nodes.push_back(node);
  auto plan = BuildPlan(g);
  if (!plan.ok()) return plan.status();
  ExecutionContext exec;
  auto out = ExecutePlan(**plan, std::move(fed), exec);
  if (!out.ok()) return out.status();
  std::vector<Tensor> tensors;
  for (Value& v : *out) tensors.push_back(std::move(v.tensor));
  return tensors;
}

}  // namespace hepml::ops::testing
