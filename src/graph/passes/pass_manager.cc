#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/passes/pass.h"

namespace hepml::passes {

// Order: constants first (later passes match constant weights and shapes),
// then shape arithmetic that static dims decide, then rewrites of the
// numerical nodes (batch norms into weights before the dense layers are
// fused; GELU before its Gemm takes it as an activation), weight layout for
// the GEMM routine, then data-movement clean-up, and last the removal of
// everything left unread.
PassManager PassManager::Default() {
  PassManager pm;
  pm.Add({"eliminate-identities", EliminateIdentities});
  pm.Add({"fold-constants", FoldConstants});
  pm.Add({"fold-shape-subgraphs", FoldShapeSubgraphs});
  pm.Add({"drop-zero-recurrent-states", DropZeroRecurrentStates});
  pm.Add({"fold-batchnorm", FoldBatchNorm});
  pm.Add({"fuse-layernorm", FuseLayerNorm});
  pm.Add({"fuse-gelu", FuseGelu});
  pm.Add({"fuse-gemm-activation", FuseGemmActivation});
  pm.Add({"fuse-conv-maxpool", FuseConvMaxPool});
  pm.Add({"fuse-edge-features", FuseEdgeFeatures});
  pm.Add({"factor-edge-conv", FactorEdgeConv});
  pm.Add({"pointwise-conv-to-gemm", PointwiseConvToGemm});
  pm.Add({"transpose-gemm-weights", TransposeGemmWeights});
  pm.Add({"cancel-transpose-reshape", CancelTransposeReshape});
  pm.Add({"eliminate-dead-nodes", EliminateDeadNodes});
  return pm;
}

std::vector<std::string> PassManager::Names() const {
  std::vector<std::string> names;
  for (const Pass& p : passes_) names.push_back(p.name);
  return names;
}

absl::StatusOr<std::vector<PassReport>> PassManager::Run(Graph& graph, const std::set<std::string>& disabled) const {
  for (const std::string& d : disabled) {
    bool known = false;
    for (const Pass& p : passes_) known |= p.name == d;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat("unknown pass '", d, "'; passes are: ", absl::StrJoin(Names(), ", ")));
    }
  }
  std::vector<PassReport> reports;
  for (const Pass& p : passes_) {
    PassReport r{p.name};
    if (disabled.count(p.name)) {
      r.skipped = true;
      reports.push_back(r);
      continue;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto changed = p.run(graph);
    r.milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!changed.ok()) {
      return absl::Status(changed.status().code(), absl::StrCat("pass ", p.name, ": ", changed.status().message()));
    }
    r.changed = *changed;
    reports.push_back(r);
  }
  return reports;
}

}  // namespace hepml::passes
