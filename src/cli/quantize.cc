// `hepml quantize MODEL.onnx -o OUT.onnx --calibration NAME=FILE.npy ...
//  [--per-tensor] [--exclude NODE ...] [--int8-activations]`
//
// Post-training static quantisation into a standard QDQ model (see
// include/hepml/quantize.h), then both models run by hepml's Session on the
// calibration data and the quantised outputs' error against float printed.
#include <cmath>
#include <iostream>

#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "codegen/quantize.h"
#include "hepml/quantize.h"
#include "hepml/session.h"

namespace hepml::cli {
namespace {

struct Args {
  std::string model, out;
  std::vector<std::string> calibration, exclude;
  bool per_tensor = false, int8_activations = false;
};

int RunQuantize(const Args& a) {
  QuantizeOptions options;
  options.calibration = a.calibration;
  options.per_tensor = a.per_tensor;
  options.int8_activations = a.int8_activations;
  options.exclude.insert(a.exclude.begin(), a.exclude.end());
  auto report = QuantizeModel(a.model, a.out, options);
  if (!report.ok()) {
    PrintError("quantize", report.status().message());
    return absl::IsInvalidArgument(report.status()) && report.status().message().rfind("--", 0) == 0 ? kExitUsage
                                                                                                    : kExitFailure;
  }
  std::cout << "quantized " << a.model << " -> " << a.out << " (QDQ, opset " << report->opset << ", "
            << (a.int8_activations ? "int8" : "uint8") << " activations per tensor, int8 weights "
            << (a.per_tensor ? "per tensor" : "per channel") << ")\n";
  for (const std::string& l : report->layers) std::cout << "  " << l << "\n";
  for (const std::string& l : report->skipped) std::cout << "  kept float: " << l << "\n";
  // The error against the float model on the calibration data.
  auto inputs = codegen::ReadCalibration(a.model, a.calibration);
  auto fp32 = Session::Create(a.model);
  auto qdq = Session::Create(a.out);
  if (!inputs.ok() || !fp32.ok() || !qdq.ok()) {
    PrintError("quantize", !inputs.ok() ? inputs.status().message()
                                        : !fp32.ok() ? fp32.status().message() : qdq.status().message());
    return kExitFailure;
  }
  auto want = (*fp32)->Run(*inputs);
  auto got = (*qdq)->Run(*inputs);
  if (!want.ok() || !got.ok()) {
    PrintError("quantize", !want.ok() ? want.status().message() : got.status().message());
    return kExitFailure;
  }
  std::cout << "  error against float on the calibration data:\n";
  for (size_t i = 0; i < want->size(); ++i) {
    const Tensor &w = (*want)[i], &g = (*got)[i];
    const std::string& name = (*fp32)->outputs()[i].name;
    if (w.dtype() != DType::kFloat32 || g.dtype() != DType::kFloat32 || w.size() != g.size()) {
      std::cout << "    output " << name << ": not compared (" << DTypeName(w.dtype()) << ")\n";
      continue;
    }
    double max_err = 0, sum = 0, scale = 0;
    for (int64_t k = 0; k < w.size(); ++k) {
      const double e = std::fabs(static_cast<double>(g.data<float>()[k]) - w.data<float>()[k]);
      max_err = std::max(max_err, e);
      sum += e;
      scale = std::max(scale, std::fabs(static_cast<double>(w.data<float>()[k])));
    }
    std::cout << absl::StrFormat("    output %s: max abs error %.4g, mean abs error %.4g (max |float| %.4g)\n", name,
                                 max_err, w.size() ? sum / static_cast<double>(w.size()) : 0.0, scale);
  }
  return kExitOk;
}

}  // namespace

void AddQuantizeCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "quantize", "Post-training static quantisation into a QDQ ONNX model (int8 weights, uint8/int8 activations)");
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "ONNX model file")->required();
  cmd->add_option("--output,-o", a->out, "The QDQ model to write")->required();
  cmd->add_option("--calibration", a->calibration, "NAME=FILE.npy per model input: the activation ranges")
      ->required();
  cmd->add_flag("--per-tensor", a->per_tensor, "One weight scale per tensor (default: per output channel)");
  cmd->add_option("--exclude", a->exclude, "Node name kept float (repeatable)");
  cmd->add_flag("--int8-activations", a->int8_activations,
                "Symmetric int8 activations (zero point 0) instead of asymmetric uint8");
  cmd->callback([=] { *exit_code = RunQuantize(*a); });
}

}  // namespace hepml::cli
