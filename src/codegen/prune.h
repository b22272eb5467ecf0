// Magnitude pruning of the weights `hepml compile --prune` sparsifies: the
// constant float weight (input 1) of every Gemm, MatMul and Conv of the
// imported graph, before the graph passes (so folding a BatchNorm into a
// Conv scales rows but keeps every zero).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"

namespace hepml::codegen {

struct PruneSpec {
  double sparsity = 0;  // unstructured: fraction of each tensor set to zero
  int n = 0, m = 0;     // N:M structured when m > 0: keep n of every m
};

// "0.8" or "2:4" (N:M) -> the spec; an error naming the text otherwise.
absl::StatusOr<PruneSpec> ParsePruneSpec(const std::string& text);

struct PrunedLayer {
  std::string node;    // node name (op type and index when unnamed)
  std::string weight;  // initializer name
  int64_t size = 0;
  double zeros_before = 0, zeros_after = 0;  // fractions
};

// Zeroes weights of `graph` in place (initializers are replaced, not
// shared buffers written): unstructured, the smallest |w| of each tensor
// until `sparsity` of it is zero; N:M, in each group of m consecutive weights
// along the reduction axis the n largest |w| are kept. Returns one entry per
// weight tensor considered (also when `spec` prunes nothing, for the
// already-sparse report).
std::vector<PrunedLayer> PruneWeights(Graph& graph, const PruneSpec& spec);

}  // namespace hepml::codegen
