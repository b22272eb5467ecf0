#include "graph/passes/pass_test_util.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "runtime/executor.h"

namespace hepml::passes::testing {

Node MakeNode(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
              std::vector<Attribute> attrs, int opset, const std::string& name) {
  Node n;
  n.op_type = op;
  n.opset = opset;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attributes = std::move(attrs);
  n.name = name;
  return n;
}

ValueInfo VI(const std::string& name) {
  ValueInfo vi;
  vi.name = name;
  return vi;
}

ValueInfo TensorVI(const std::string& name, std::vector<std::string> dims, DType dtype) {
  std::vector<Dim> shape;
  for (const std::string& d : dims) {
    if (!d.empty() && std::isdigit(static_cast<unsigned char>(d[0]))) shape.push_back(Dim{std::stoll(d), ""});
    else shape.push_back(Dim{-1, d});
  }
  ValueInfo vi;
  vi.name = name;
  vi.type = TypeInfo::Tensor(dtype, std::move(shape));
  return vi;
}

Attribute IntAttr(const std::string& name, int64_t v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kInt;
  a.i = v;
  return a;
}

Attribute FloatAttr(const std::string& name, float v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kFloat;
  a.f = v;
  return a;
}

Attribute StringAttr(const std::string& name, const std::string& v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kString;
  a.s = v;
  return a;
}

Attribute IntsAttr(const std::string& name, std::vector<int64_t> v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kInts;
  a.ints = std::move(v);
  return a;
}

std::vector<std::string> OpTypes(const Graph& g) {
  std::vector<std::string> ops;
  for (const Node& n : g.nodes) ops.push_back(n.op_type);
  return ops;
}

Tensor Random(Shape shape, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t = Tensor::Empty(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.size(); ++i) t.mutable_data<float>()[i] = dist(rng);
  return t;
}

Tensor Ints(std::vector<int64_t> v) {
  return Tensor::FromVector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

absl::StatusOr<std::vector<Tensor>> RunGraph(const Graph& graph,
                                             const std::vector<std::pair<std::string, Tensor>>& feeds) {
  auto plan = BuildPlan(graph);
  if (!plan.ok()) return plan.status();
  std::vector<Value> inputs(graph.inputs.size());
  for (size_t i = 0; i < graph.inputs.size(); ++i) {
    for (const auto& [name, t] : feeds)
      if (name == graph.inputs[i].name) inputs[i] = Value::FromTensor(t);
  }
  ExecutionContext exec;
  auto out = ExecutePlan(**plan, std::move(inputs), exec);
  if (!out.ok()) return out.status();
  std::vector<Tensor> tensors;
  for (Value& v : *out) tensors.push_back(std::move(v.tensor));
  return tensors;
}

double MaxAbsDiff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != DType::kFloat32 || b.dtype() != DType::kFloat32) {
    return std::numeric_limits<double>::infinity();
  }
  double m = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    m = std::max(m, static_cast<double>(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
  }
  return m;
}

double OutputDiff(const Graph& a, const Graph& b, const std::vector<std::pair<std::string, Tensor>>& feeds) {
  auto ra = RunGraph(a, feeds);
  auto rb = RunGraph(b, feeds);
  if (!ra.ok() || !rb.ok() || ra->size() != rb->size()) {
    std::fprintf(stderr, "OutputDiff: %s / %s\n", ra.status().ToString().c_str(), rb.status().ToString().c_str());
    return std::numeric_limits<double>::infinity();
  }
  double m = 0;
  for (size_t i = 0; i < ra->size(); ++i) m = std::max(m, MaxAbsDiff((*ra)[i], (*rb)[i]));
  return m;
}

}  // namespace hepml::passes::testing
