// `hepml compile MODEL.onnx -o DIR [--name NAME] [--namespace NS] [--max-batch B]
//  [--dim NAME=VALUE ...] [--embed-weights] [--disable-pass NAME ...]`
//
// Writes a dependency-free C++17 package into DIR (see include/hepml/compiler.h):
// NAME.h, NAME.cc, NAME.weights (unless --embed-weights), NAME_run.cc and a
// CMakeLists.txt building the static library NAME and the runner NAME_run.
// Every check runs before anything is written; a failed compile leaves no DIR.
#include <filesystem>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "hepml/compiler.h"

namespace hepml::cli {
namespace {

struct Args {
  std::string model;
  std::string out_dir;
  std::string name;
  std::string cpp_namespace = "hepml_generated";
  int64_t max_batch = 64;
  std::vector<std::string> dims;
  bool embed_weights = false;
  std::vector<std::string> disabled_passes;
  std::string precision = "fp32";
  std::string prune, write_pruned, precision_file;
};

int RunCompile(const Args& a) {
  CompileOptions options;
  options.name = a.name.empty() ? DefaultPackageName(a.model) : a.name;
  options.cpp_namespace = a.cpp_namespace;
  options.max_batch = a.max_batch;
  options.embed_weights = a.embed_weights;
  options.disabled_passes.insert(a.disabled_passes.begin(), a.disabled_passes.end());
  auto precision = ParseWeightPrecision(a.precision);
  if (!precision.ok()) {
    PrintError("compile", precision.status().message());
    return kExitUsage;
  }
  options.precision = *precision;
  if (!a.precision_file.empty()) {
    auto file = ReadPrecisionFile(a.precision_file);
    if (!file.ok()) {
      PrintError("compile", file.status().message());
      return absl::IsNotFound(file.status()) ? kExitFailure : kExitUsage;
    }
    if (file->fallback) options.precision = *file->fallback;
    options.layer_precision = file->layers;
  }
  options.prune = a.prune;
  options.write_pruned = a.write_pruned;
  for (const std::string& spec : a.dims) {
    size_t eq = spec.find('=');
    int64_t v = 0;
    if (eq == std::string::npos || eq == 0 || !absl::SimpleAtoi(spec.substr(eq + 1), &v) || v < 1) {
      PrintError("compile", absl::StrCat("--dim '", spec, "': expected NAME=VALUE with VALUE >= 1"));
      return kExitUsage;
    }
    options.dims[spec.substr(0, eq)] = v;
  }
  auto report = CompileModel(a.model, a.out_dir, options);
  if (!report.ok()) {
    PrintError("compile", report.status().message());
    return absl::IsInvalidArgument(report.status()) && report.status().message().rfind("--", 0) == 0 ? kExitUsage
                                                                                                    : kExitFailure;
  }
  std::cout << "compiled " << a.model << " -> " << a.out_dir << " (" << options.cpp_namespace << "::" << options.name
            << ", max batch " << options.max_batch << ")\n"
            << "  files: " << absl::StrJoin(report->files, ", ") << "\n"
            << "  kernel calls " << report->num_steps << ", arena " << report->arena_bytes << " bytes, weights "
            << report->weight_bytes << " bytes (" << WeightPrecisionName(options.precision) << ")\n"
            ;
  for (const PrunedLayerReport& l : report->layers) {
    const bool was_sparse = l.zeros_before >= 0.5;
    if (options.prune.empty() && !was_sparse) continue;
    std::cout << "  weights " << l.weight << " of " << l.node << " (" << l.size << "): "
              << absl::StrFormat("%.1f%% zero", 100 * l.zeros_before);
    if (!options.prune.empty()) std::cout << absl::StrFormat(" -> %.1f%% zero", 100 * l.zeros_after);
    if (was_sparse) std::cout << " (already at least half zero)";
    std::cout << "\n";
  }
  for (const std::string& s : report->sparse_layers) std::cout << "  sparse kernel (CSR): " << s << "\n";
  std::cout << "  build: cmake -S " << a.out_dir << " -B BUILD && cmake --build BUILD\n";
  return kExitOk;
}

}  // namespace

void AddCompileCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("compile", "Compile an ONNX model into a dependency-free C++ package");
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "ONNX model file")->required();
  cmd->add_option("--output-dir,-o", a->out_dir, "Folder to write the package into (an earlier package there is replaced)")->required();
  cmd->add_option("--name", a->name, "C++ class and file name (default: the model file's stem)");
  cmd->add_option("--namespace", a->cpp_namespace, "C++ namespace of the class (may be nested: a::b)");
  cmd->add_option("--max-batch", a->max_batch, "Largest batch run() accepts (buffers are planned for it)");
  cmd->add_option("--dim", a->dims, "NAME=VALUE for symbolic input dimensions other than the batch");
  cmd->add_flag("--embed-weights", a->embed_weights, "Weights as a static const array in NAME.cc");
  cmd->add_option("--disable-pass", a->disabled_passes, "Graph pass to switch off (repeatable)");
  cmd->add_option("--precision", a->precision,
                  "Weight storage of Gemm/MatMul/Conv: fp32 (default), fp16 or bf16 (float accumulation)");
  cmd->add_option("--prune", a->prune,
                  "Magnitude pruning of Gemm/MatMul/Conv weights: SPARSITY (e.g. 0.8) or N:M (e.g. 2:4)");
  cmd->add_option("--precision-file", a->precision_file,
                  "YAML: 'layers' maps node names of the optimised graph to fp32/fp16/bf16; 'default' replaces "
                  "--precision");
  cmd->add_option("--write-pruned", a->write_pruned, "With --prune: also write the pruned ONNX model to this file");
  cmd->callback([=] { *exit_code = RunCompile(*a); });
}

}  // namespace hepml::cli
