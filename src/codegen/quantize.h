// Compile-time side of the quantised precisions of `hepml compile`:
// --precision int8 (symmetric int8 weights per output channel, activation
// scales calibrated by running hepml's Session on --calibration data) and
// --precision fixed<W,I[,Q[,O]]> (ap_fixed emulation, see emitted/fixed.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "codegen/emitter.h"
#include "graph/graph.h"
#include "hepml/tensor.h"

namespace hepml::codegen {

// "fixed<16,6>", "fixed<16,6,RND>", "fixed<16,6,RND_CONV,SAT>" (AP_ prefixes
// accepted) -> the type; an error naming the text and the rule broken
// otherwise (1 <= W <= 32, 0 <= I <= W, known modes).
absl::StatusOr<FixedType> ParseFixedType(const std::string& text);
// The canonical spelling: "fixed<16,6>" for the default modes, else all four.
std::string FixedTypeName(const FixedType& t);

// Symmetric per-row int8: rows x k floats -> rows x kp int8 (padding 0) and
// scale[r] = max |w[r, :]| / 127 (1 for an all-zero row).
struct Int8Weights {
  std::vector<int8_t> values;
  std::vector<float> scales;
};
Int8Weights QuantizeRowsInt8(const float* w, int64_t rows, int64_t k, int64_t kp);

// Raw values of the fixed-point type (the type's own quantisation and
// overflow modes, as ap_fixed's constructor from a float applies them).
std::vector<int32_t> ToFixedRaw(const float* w, int64_t n, const FixedType& t);

// True for nodes the int8 / fixed formats apply to: Gemm/FusedGemm (A not
// transposed), MatMul with a 2-D weight, Conv/FusedConv; the weight
// (input 1) a float constant.
bool IsQuantizableLayer(const Graph& graph, const Node& n);

// The finite values' range of a calibrated value (min > max: none).
struct ValueRange {
  float min = INFINITY, max = -INFINITY;
};
// Calibration: runs the model (the original file, every value named in
// `values` added as an output) through hepml's Session on `inputs`.
absl::StatusOr<std::map<std::string, ValueRange>> CalibrateRanges(
    const std::string& model_path, const std::vector<std::pair<std::string, Tensor>>& inputs,
    const std::set<std::string>& values);

// Calibration: runs the model (the original file, every value named in
// `values` added as an output) through hepml's Session on `inputs` and
// returns max |x| of each value. Errors name a calibration input that is
// unknown or of the wrong dtype or shape, or a value the model does not make.
absl::StatusOr<std::map<std::string, float>> CalibrateMaxAbs(const std::string& model_path,
                                                             const std::vector<std::pair<std::string, Tensor>>& inputs,
                                                             const std::set<std::string>& values);

// The calibration inputs NAME=FILE.npy, read and checked against the model's
// inputs (known name, dtype, rank, fixed dims). Errors start with
// "--calibration".
absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> ReadCalibration(
    const std::string& model_path, const std::vector<std::string>& specs);

}  // namespace hepml::codegen

namespace hepml::codegen {

// Int8 weights of a QDQ model: DequantizeLinear of a constant int8 tensor
// (zero points 0), recorded before the graph passes fold them into float
// constants, with the float values the fold computes ((float)q * scale).
struct QdqWeight {
  Tensor q;                    // int8
  std::vector<float> scales;   // per `axis` channel, or one
  int axis = 0;
  Tensor dequantized;          // float
};
std::vector<QdqWeight> CollectQdqWeights(const Graph& graph);

// After the passes: every quantisable layer whose input comes from a
// QuantizeLinear -> DequantizeLinear pair (per-tensor, constant, equal
// parameters) and whose weight is one of `weights` (as stored or
// transposed, scales per output channel or per tensor) is read as integers
// (formats->qdq); the pairs it consumes are skipped or, where something else
// reads them, computed in float (formats->skip, formats->fake_quant).
// With fuse false no layer is fused: every pair is computed in float.
void PlanQdq(const Graph& graph, const std::vector<QdqWeight>& weights, WeightFormats* formats, bool fuse = true);

}  // namespace hepml::codegen
