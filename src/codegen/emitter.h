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
  std::vector<std::string> quant_nodes;  // "NODE int8 (input scale S)" / "NODE fixed<16,6>"
  std::set<std::string> sparse_nodes;  // "NODE (NNZ of SIZE non-zero)" of each Gemm emitted with GemmCsr
};

// Integer emulation of Vivado/Vitis HLS ap_fixed<width, integer, quant,
// overflow> (quant: hepml_emitted::kFxTrn / kFxRnd / kFxRndConv; overflow:
// kFxWrap / kFxSat); see emitted/fixed.h.
struct FixedType {
  int width = 16, integer = 6, quant = 0, overflow = 0;
  int frac() const { return width - integer; }
};

// Formats beyond the 16-bit ones of gemm.h (kWeightF16 = 1, kWeightBF16 = 2).
inline constexpr int kWeightInt8 = 3;   // int8 weights per output channel, int8 activations
inline constexpr int kWeightFixed = 4;  // ap_fixed emulation (FixedType)

// Weight storage of matrix products and convolutions: 0 float, else
// hepml_emitted::kWeightF16 / kWeightBF16, kWeightInt8 or kWeightFixed; per
// node by name, `fallback` for nodes not in `by_node`.
struct WeightFormats {
  int fallback = 0;
  std::map<std::string, int> by_node;
  // kWeightFixed: the type, per node and for the others.
  FixedType fixed_fallback;
  std::map<std::string, FixedType> fixed_by_node;
  // kWeightInt8: the scale of each node's activation input (calibrated
  // max |x| / 127). A node without one stays float.
  std::map<std::string, float> input_scale;
  // Layers of a QDQ model read as integers: the float input x of the
  // QuantizeLinear before them (scale, zero point, uint8 or int8), the int8
  // weights of the DequantizeLinear that made the weight, [N, K] rows per
  // output channel with their scales. Nodes in `skip` (QuantizeLinear /
  // DequantizeLinear pairs folded into those layers) are not emitted;
  // DequantizeLinear nodes in `fake_quant` are emitted in float from the
  // pair's input x (quantise, dequantise), as hepml computes them.
  struct QdqLayer {
    std::string x;
    float x_scale = 1.f;
    int x_zero_point = 0;
    bool x_uint8 = true;
    std::vector<int8_t> rows;
    std::vector<float> w_scales;
  };
  struct FakeQuant {
    std::string x;
    float scale = 1.f;
    int zero_point = 0, lo = 0, hi = 255;
  };
  std::map<std::string, QdqLayer> qdq;
  std::set<std::string> skip;
  std::map<std::string, FakeQuant> fake_quant;
  FixedType Fixed(const std::string& node) const {
    auto it = fixed_by_node.find(node);
    return it == fixed_by_node.end() ? fixed_fallback : it->second;
  }
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
