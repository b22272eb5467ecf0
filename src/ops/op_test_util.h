// Test-only helpers for operator unit tests: run one node on given tensors
// through the real operator table and executor.
//
//   auto out = RunOp("Gather", 13, {data, indices}, {AttrInt("axis", 1)});
//   ASSERT_TRUE(out.ok()) << out.status();
//   EXPECT_EQ(out->at(0).shape(), Shape({2, 3}));
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "hepml/tensor.h"

namespace hepml::ops::testing {

Attribute AttrInt(const std::string& name, int64_t v);
Attribute AttrFloat(const std::string& name, float v);
Attribute AttrString(const std::string& name, const std::string& v);
Attribute AttrInts(const std::string& name, std::vector<int64_t> v);
Attribute AttrFloats(const std::string& name, std::vector<float> v);
Attribute AttrStrings(const std::string& name, std::vector<std::string> v);
Attribute AttrTensor(const std::string& name, Tensor v);
Attribute AttrGraph(const std::string& name, Graph g);

struct OpSpec {
  std::string op_type;
  int opset = kMaxOpset;
  std::string domain;
  std::vector<Attribute> attributes;
  int num_outputs = 1;
  // Inputs left out with an undefined Value are passed as omitted ("").
};

// Builds a one-node graph (inputs in0.., outputs out0..) and runs it.
absl::StatusOr<std::vector<Value>> RunOpValues(const OpSpec& spec, std::vector<Value> inputs);
absl::StatusOr<std::vector<Tensor>> RunOp(const std::string& op_type, int opset,
                                          std::vector<Tensor> inputs,
                                          std::vector<Attribute> attributes = {},
                                          int num_outputs = 1);

// As RunOp, but the inputs flagged in `constant` are initializers of the
// graph, so that the operator's prepare step sees them (and may prepack
// them, as Conv and Gemm do with constant weights).
absl::StatusOr<std::vector<Tensor>> RunOpWithConstants(const std::string& op_type, int opset,
                                                       std::vector<Tensor> inputs,
                                                       const std::vector<bool>& constant,
                                                       std::vector<Attribute> attributes = {});

template <typename T>
Tensor T_(Shape shape, std::vector<T> values) {
  return Tensor::FromVector<T>(std::move(shape), values);
}
// Values of a tensor as a vector (for EXPECT_THAT / EXPECT_EQ).
template <typename T>
std::vector<T> Values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.size());
}

}  // namespace hepml::ops::testing
