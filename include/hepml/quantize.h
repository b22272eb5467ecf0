// hepml::QuantizeModel: post-training static quantisation of an ONNX model
// into the standard QDQ format (what `hepml quantize` writes).
//
//   hepml::QuantizeOptions options;
//   options.calibration = {"x=calib_x.npy"};
//   auto report = hepml::QuantizeModel("model.onnx", "model.qdq.onnx", options);
//
// Every Gemm (A not transposed), MatMul with a 2-D weight and Conv whose
// weight is a float initializer gets
//   - its weight as an int8 initializer (symmetric, zero point 0, scale
//     max |w| / 127 per output channel: DequantizeLinear with `axis`, or per
//     tensor with `per_tensor`) read through DequantizeLinear, and
//   - its activation input through QuantizeLinear -> DequantizeLinear with a
//     per-tensor scale and zero point from the calibration data's range
//     (uint8 asymmetric: the range widened to include 0 over 255 steps; or
//     int8 symmetric, max |x| / 127, zero point 0), one pair per value
//     however many layers read it.
// Biases and every other node stay float; the default-domain opset is raised
// to 13 when lower (per-axis DequantizeLinear). ONNX Runtime and hepml run
// the result; `hepml compile` turns the QDQ layers into its int8 kernels.
// All checks (inputs, calibration data, --exclude names) happen before the
// output file is written (atomically: a temporary file renamed).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "hepml/status.h"

namespace hepml {

struct QuantizeOptions {
  std::vector<std::string> calibration;  // NAME=FILE.npy per model input
  bool per_tensor = false;               // weight scales per tensor, not per output channel
  std::set<std::string> exclude;         // node names (of the input model) kept float
  bool int8_activations = false;         // symmetric int8 activations instead of uint8
};

struct QuantizeReport {
  std::vector<std::string> layers;   // "NODE (OP): activation 'x' scale S zero point Z"
  std::vector<std::string> skipped;  // "NODE (OP): why"
  int opset = 0;                     // default-domain opset of the written model
};

absl::StatusOr<QuantizeReport> QuantizeModel(const std::string& model_path, const std::string& out_path,
                                             const QuantizeOptions& options);

}  // namespace hepml
