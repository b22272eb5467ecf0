// Graph passes: pure rewrites of a Graph, each in its own file, run in order
// by a PassManager that names, times and can switch off each one.
//
// A pass must keep the graph's meaning: same outputs for every input. Each
// pass file starts with a comment saying what it changes and what it leaves.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"

namespace hepml::passes {

struct Pass {
  std::string name;
  // Returns true if it changed the graph.
  std::function<absl::StatusOr<bool>(Graph&)> run;
};

struct PassReport {
  std::string name;
  double milliseconds = 0;
  bool changed = false;
  bool skipped = false;  // switched off
};

class PassManager {
 public:
  // The default pipeline, in order.
  static PassManager Default();

  void Add(Pass pass) { passes_.push_back(std::move(pass)); }
  // Names of every pass, in order.
  std::vector<std::string> Names() const;
  // Runs each pass not in `disabled` once, in order. An unknown name in
  // `disabled` is an error (a typo would silently keep the pass on).
  absl::StatusOr<std::vector<PassReport>> Run(Graph& graph, const std::set<std::string>& disabled = {}) const;

 private:
  std::vector<Pass> passes_;
};

// The passes (one file each), in the default pipeline's order.
absl::StatusOr<bool> EliminateIdentities(Graph& graph);
absl::StatusOr<bool> FoldConstants(Graph& graph);
absl::StatusOr<bool> FoldShapeSubgraphs(Graph& graph);
absl::StatusOr<bool> DropZeroRecurrentStates(Graph& graph);
absl::StatusOr<bool> FoldBatchNorm(Graph& graph);
absl::StatusOr<bool> FuseLayerNorm(Graph& graph);
absl::StatusOr<bool> FuseGelu(Graph& graph);
absl::StatusOr<bool> FuseGemmActivation(Graph& graph);
absl::StatusOr<bool> FuseConvMaxPool(Graph& graph);
absl::StatusOr<bool> FuseEdgeFeatures(Graph& graph);
absl::StatusOr<bool> FactorEdgeConv(Graph& graph);
absl::StatusOr<bool> PointwiseConvToGemm(Graph& graph);
absl::StatusOr<bool> TransposeGemmWeights(Graph& graph);
absl::StatusOr<bool> CancelTransposeReshape(Graph& graph);
absl::StatusOr<bool> EliminateDeadNodes(Graph& graph);

// Not in the default pipeline: the Session runs it after the default passes
// when SessionOptions::precision asks for float16 or bfloat16. `target` is
// DType::kFloat16 or DType::kBFloat16 (kFloat32: no change; others: error).
inline constexpr char kMixedPrecisionPass[] = "mixed-precision";
absl::StatusOr<bool> ConvertToMixedPrecision(Graph& graph, DType target);

}  // namespace hepml::passes
