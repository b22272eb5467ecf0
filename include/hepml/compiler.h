// hepml::Compile: ahead-of-time compilation of an ONNX model into a
// dependency-free C++17 package.
//
//   hepml::CompileOptions options;
//   options.name = "trigger";
//   options.max_batch = 64;
//   auto report = hepml::CompileModel("trigger.onnx", "out/trigger", options);
//   if (!report.ok()) ...  // names the operator, node, input or option at fault
//
// The package (see docs/architecture.md, "codegen"): NAME.h and NAME.cc (one
// class NS::NAME whose run() executes the optimised graph with every
// intermediate buffer planned ahead of time in one arena), NAME.weights (or
// the weights embedded in NAME.cc), NAME_run.cc (a command-line runner that
// mirrors `hepml run` and `hepml bench --json`) and a CMakeLists.txt.
//
// All checks happen before anything is written; the package is written into a
// temporary sibling of `out_dir` and renamed into place, so a failed compile
// leaves no partial folder. An existing `out_dir` is replaced when it is empty
// or holds a package an earlier compile wrote; any other folder is an error.
//
// Thread safety: the functions are reentrant; distinct calls share nothing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "hepml/status.h"

namespace hepml {

// How the weights of Gemm/FusedGemm/MatMul/Conv/FusedConv are stored and
// computed in the package:
//   kFp32, kFp16, kBf16: float, IEEE half or bfloat16 weights (both rounded
//     to nearest even, widened back to float where the kernels read them;
//     products accumulate in float);
//   kInt8: symmetric int8 weights per output channel, the layer's input
//     quantised to int8 with a scale calibrated on CompileOptions::calibration
//     (max |x| / 127), int32 accumulation, dequantised, then bias and
//     activation in float;
//   kFixed: Vivado/Vitis HLS ap_fixed<width, integer, Q, O> emulated with
//     integers as hls4ml uses it: weights, biases, the layer's input and its
//     output of the type, exact wide accumulation. quant: 0 AP_TRN (default),
//     1 AP_RND, 2 AP_RND_CONV; overflow: 0 AP_WRAP (default), 1 AP_SAT.
struct WeightPrecision {
  enum Kind { kFp32, kFp16, kBf16, kInt8, kFixed };
  Kind kind = kFp32;
  int width = 16, integer = 6, quant = 0, overflow = 0;  // kFixed only
  WeightPrecision(Kind k = kFp32) : kind(k) {}  // NOLINT: implicit on purpose
  friend bool operator==(const WeightPrecision& a, const WeightPrecision& b) {
    return a.kind == b.kind && (a.kind != kFixed || (a.width == b.width && a.integer == b.integer &&
                                                     a.quant == b.quant && a.overflow == b.overflow));
  }
  friend bool operator!=(const WeightPrecision& a, const WeightPrecision& b) { return !(a == b); }
};
// "fp32", "fp16", "bf16", "int8", "fixed<16,6>" / "fixed<16,6,RND,SAT>".
std::string WeightPrecisionName(const WeightPrecision& p);
// The names above (fixed<W,I>, fixed<W,I,Q>, fixed<W,I,Q,O> with Q in TRN,
// RND, RND_CONV and O in WRAP, SAT; 1 <= W <= 32, 0 <= I <= W) -> the
// precision; an error naming the text and the rule otherwise.
absl::StatusOr<WeightPrecision> ParseWeightPrecision(const std::string& text);

// A --precision-file: an optional default and precisions by node name of the
// optimised graph (see `hepml info --optimized`).
struct PrecisionFile {
  std::optional<WeightPrecision> fallback;
  std::map<std::string, WeightPrecision> layers;
};
// Reads the YAML file (format in src/codegen/precision_file.cc); errors name
// the file and the entry at fault.
absl::StatusOr<PrecisionFile> ReadPrecisionFile(const std::string& path);

struct CompileOptions {
  // C++ identifier of the generated class and the files' stem.
  std::string name = "model";
  // C++ namespace of the class; may be nested ("trigger::l1").
  std::string cpp_namespace = "hepml_generated";
  // Largest batch run() accepts; buffers are planned for it. The batch is the
  // first dimension of every input whose first dimension is symbolic and not
  // fixed by `dims`.
  int64_t max_batch = 64;
  // Values for other symbolic input dimensions, by symbol name.
  std::map<std::string, int64_t> dims;
  // Weights as a static const array in NAME.cc instead of NAME.weights.
  bool embed_weights = false;
  // Graph passes to switch off (see `hepml info --optimized`).
  std::set<std::string> disabled_passes;
  // Storage of the weights of matrix products and convolutions (the rest stay
  // float), and per node of the optimised graph by name (overrides).
  WeightPrecision precision = WeightPrecision::kFp32;
  std::map<std::string, WeightPrecision> layer_precision;
  // NAME=FILE.npy per model input: the data int8 layers are calibrated on
  // (hepml's Session runs the model on it; each quantised layer's input
  // scale is its max |x| / 127). Required when any layer is int8; checked
  // against the model's inputs (name, dtype, shape) whenever given.
  std::vector<std::string> calibration;
  // QDQ models: layers between QuantizeLinear/DequantizeLinear pairs run as
  // int8 kernels; false computes the pairs in float, as `hepml run` does
  // (what --report compares a QDQ package with).
  bool qdq_kernels = true;
  // Magnitude pruning of the Gemm/MatMul/Conv weights: "" none, "0.8"
  // unstructured (that fraction of each tensor zero), "2:4" N:M along the
  // reduction axis. Gemm weights left at most 30% non-zero then get the sparse
  // kernels (CSC by output column), chosen by the batch at run time.
  std::string prune;
  // With `prune`: also write the pruned ONNX model here (after the package).
  std::string write_pruned;
};

struct PrunedLayerReport {
  std::string node, weight;
  int64_t size = 0;
  double zeros_before = 0, zeros_after = 0;  // fractions of the tensor
};

struct CompileReport {
  std::vector<std::string> files;        // written, relative to out_dir
  int num_steps = 0;                     // kernel calls in run()
  std::vector<std::string> kernel_files; // emitted kernel families
  size_t arena_bytes = 0;                // intermediate memory at max_batch
  size_t weight_bytes = 0;
  // Every Gemm/MatMul/Conv weight (also without pruning: weights already at
  // least half zero are worth reporting).
  std::vector<PrunedLayerReport> layers;
  // Gemm nodes of the optimised graph at most 30% non-zero, with the kernel
  // choice: "NODE (NNZ of SIZE non-zero): sparse kernel from batch B, below it
  // the dense tiles" (or "gathered dot products"), or "...: dense tiles
  // (--max-batch M is below the sparse crossover, batch B)".
  std::vector<std::string> sparse_layers;
  // Layers emitted with the int8 or fixed-point kernels: "NODE int8 (input
  // max |x| 3.2)" / "NODE fixed<16,6>".
  std::vector<std::string> quantized_layers;
};

// The package's files (name -> contents), without writing anything.
struct GeneratedPackage {
  std::vector<std::pair<std::string, std::string>> files;
  CompileReport report;
  std::string pruned_model;  // ONNX bytes for CompileOptions::write_pruned
};

// The model file's stem as a usable identifier: "trigger-mlp.onnx" ->
// "trigger_mlp", "if.onnx" -> "if_model".
std::string DefaultPackageName(const std::string& model_path);

absl::StatusOr<GeneratedPackage> GeneratePackage(const std::string& model_path, const CompileOptions& options);

// GeneratePackage, then writes the files into `out_dir` (see above).
absl::StatusOr<CompileReport> CompileModel(const std::string& model_path, const std::string& out_dir,
                                           const CompileOptions& options);

}  // namespace hepml
