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

// How the weights of Gemm/FusedGemm/MatMul/Conv/FusedConv are stored in the
// package: float, IEEE half or bfloat16 (both rounded to nearest even, widened
// back to float where the kernels read them; products accumulate in float).
enum class WeightPrecision { kFp32, kFp16, kBf16 };
const char* WeightPrecisionName(WeightPrecision p);  // "fp32", "fp16", "bf16"
// "fp32" / "fp16" / "bf16" -> the precision; an error naming the text otherwise.
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
  // Magnitude pruning of the Gemm/MatMul/Conv weights: "" none, "0.8"
  // unstructured (that fraction of each tensor zero), "2:4" N:M along the
  // reduction axis. Gemm weights left at most 30% non-zero then get the sparse
  // kernel (CSR by output column).
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
  // Gemm nodes of the optimised graph emitted with the sparse (CSR) kernel:
  // "NODE (NNZ of SIZE non-zero)".
  std::vector<std::string> sparse_layers;
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
