// Runs one node on known inputs, outside any Session: used by graph passes
// (constant folding) and the compiler to compute values ahead of time.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "hepml/tensor.h"

namespace hepml::ops {

// REQUIRES: the node has no subgraph attributes. `inputs[i]` is null for an
// omitted optional input. Runs serially on the calling thread.
absl::StatusOr<std::vector<Value>> EvaluateNode(const Node& node, const std::vector<const Value*>& inputs);

}  // namespace hepml::ops
