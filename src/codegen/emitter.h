// The code generator's core: turns an optimised graph with resolved shapes
// into the body of the generated run() (one block per kernel call), the
// planned arena layout and the weights blob. compiler.cc wraps the result
// into the package's files.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "codegen/analysis.h"
#include "graph/graph.h"

namespace hepml::codegen {

struct IoSpec {
  std::string name;
  DType dtype = DType::kFloat32;
  LinShape shape;
};

struct EmittedProgram {
  std::string body;                   // statements of run(); `b` is the batch
  std::vector<IoSpec> inputs, outputs;
  std::vector<uint8_t> weights;       // 64-byte aligned entries
  size_t arena_bytes = 0;             // at max batch
  std::set<std::string> kernel_files; // "gemm.h", ... (common.h always)
  int num_steps = 0;
  std::set<std::string> sparse_nodes;  // "NODE (NNZ of SIZE non-zero)" of each Gemm emitted with GemmCsr
};

// Weight storage of matrix products and convolutions: 0 float, else
// hepml_emitted::kWeightF16 / kWeightBF16; per node by name, `fallback` for
// nodes not in `by_node`.
struct WeightFormats {
  int fallback = 0;
  std::map<std::string, int> by_node;
  // Gemm weights at most 30% non-zero as CSR (GemmCsr) instead of dense panels.
  bool sparse_gemm = false;
  int For(const std::string& node) const {
    auto it = by_node.find(node);
    return it == by_node.end() ? fallback : it->second;
  }
};

absl::StatusOr<EmittedProgram> EmitProgram(const Graph& graph, const GraphShapes& shapes, int64_t max_batch,
                                           const WeightFormats& formats = {});

// "float", "int64_t", ... for the dtypes generated code handles; null otherwise.
const char* CTypeOf(DType dtype);

}  // namespace hepml::codegen
