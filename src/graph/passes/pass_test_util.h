// Test-only helpers for pass tests: building small graphs, and running a
// graph before and after a pass through the real executor to compare.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "hepml/tensor.h"

namespace hepml::passes::testing {

Node MakeNode(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
              std::vector<Attribute> attrs = {}, int opset = 17, const std::string& name = "");
ValueInfo VI(const std::string& name);
// A float32 (or `dtype`) tensor value with dims: numbers, or symbols like "batch".
ValueInfo TensorVI(const std::string& name, std::vector<std::string> dims, DType dtype = DType::kFloat32);

Attribute IntAttr(const std::string& name, int64_t v);
Attribute FloatAttr(const std::string& name, float v);
Attribute StringAttr(const std::string& name, const std::string& v);
Attribute IntsAttr(const std::string& name, std::vector<int64_t> v);

std::vector<std::string> OpTypes(const Graph& g);
// Deterministic values in [-1, 1) (or [lo, hi)).
Tensor Random(Shape shape, uint64_t seed, float lo = -1.f, float hi = 1.f);
Tensor Ints(std::vector<int64_t> v);  // 1-D int64

// Runs the graph (graph inputs in order, bound by name from `feeds`) and
// returns its outputs.
absl::StatusOr<std::vector<Tensor>> RunGraph(const Graph& graph,
                                             const std::vector<std::pair<std::string, Tensor>>& feeds);
// Max |a - b| over float32 tensors of equal shape; +inf on shape mismatch.
double MaxAbsDiff(const Tensor& a, const Tensor& b);
// Max over outputs of MaxAbsDiff between graphs `a` and `b` run on `feeds`;
// +inf if either fails to run (the status is printed).
double OutputDiff(const Graph& a, const Graph& b, const std::vector<std::pair<std::string, Tensor>>& feeds);

}  // namespace hepml::passes::testing
