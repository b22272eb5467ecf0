// `hepml compile MODEL.onnx -o DIR [--name NAME] [--namespace NS] [--max-batch B]
//  [--dim NAME=VALUE ...] [--embed-weights] [--disable-pass NAME ...]`
//
// Writes a dependency-free C++17 package into DIR (see include/hepml/compiler.h):
// NAME.h, NAME.cc, NAME.weights (unless --embed-weights), NAME_run.cc and a
// CMakeLists.txt building the static library NAME and the runner NAME_run.
// Every check runs before anything is written; a failed compile leaves no DIR.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <iostream>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "common/npy.h"
#include "hepml/compiler.h"
#include "hepml/session.h"

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
  bool report = false;
  std::vector<std::string> calibration;
};

namespace fs = std::filesystem;

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Builds the package in `dir` with the system C++ compiler: NAME.o (its
// size is the object size reported) and the runner.
absl::StatusOr<uintmax_t> BuildPackage(const fs::path& dir, const std::string& name) {
  const std::string cxx = std::getenv("CXX") ? std::getenv("CXX") : "c++";
  const std::string obj = (dir / (name + ".o")).string();
  const std::string cmd = absl::StrCat(cxx, " -std=c++17 -O2 -c ", Quote((dir / (name + ".cc")).string()), " -o ",
                                       Quote(obj), " && ", cxx, " -std=c++17 -O2 -I", Quote(dir.string()), " ",
                                       Quote((dir / (name + "_run.cc")).string()), " ", Quote(obj), " -o ",
                                       Quote((dir / "run").string()), " > ", Quote((dir / "build.log").string()),
                                       " 2>&1");
  if (std::system(cmd.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("--report: building ", dir.string(), " with ", cxx, " failed (see ",
                                            (dir / "build.log").string(), ")"));
  }
  return fs::file_size(obj);
}

absl::Status RunPackage(const fs::path& dir, const std::string& name, const std::string& feeds, const fs::path& out) {
  std::string weights;
  if (fs::exists(dir / (name + ".weights"))) weights = " --weights " + Quote((dir / (name + ".weights")).string());
  const std::string cmd = absl::StrCat(Quote((dir / "run").string()), feeds, weights, " --output-dir ",
                                       Quote(out.string()), " > ", Quote((dir / "run.log").string()), " 2>&1");
  if (std::system(cmd.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("--report: running ", dir.string(), "/run failed (see ",
                                            (dir / "run.log").string(), ")"));
  }
  return absl::OkStatus();
}

// Batch-1 latency of the built runner: the p50 of `run --bench --json`.
absl::StatusOr<double> BenchPackage(const fs::path& dir, const std::string& name) {
  std::string weights;
  if (fs::exists(dir / (name + ".weights"))) weights = " --weights " + Quote((dir / (name + ".weights")).string());
  const fs::path log = dir / "bench.json";
  const std::string cmd = absl::StrCat(Quote((dir / "run").string()), " --bench --json --batch 1 --iterations 2000",
                                       weights, " > ", Quote(log.string()), " 2>&1");
  if (std::system(cmd.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("--report: benchmarking ", dir.string(), "/run failed (see ", log.string(), ")"));
  }
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = text.find("\"p50\": ");
  double v = 0;
  if (at == std::string::npos || !absl::SimpleAtod(text.substr(at + 7, text.find_first_of(",\n", at + 7) - at - 7), &v)) {
    return absl::InternalError(absl::StrCat("--report: no latency in ", log.string()));
  }
  return v;
}

// --report: the package against the same model compiled at fp32, both built
// with the system compiler and run on the calibration inputs (random ones of
// the inputs' shapes, batch min(8, --max-batch), when none are given).
absl::Status PrintPrecisionReport(const Args& a, const CompileOptions& options, const CompileReport& report) {
  const fs::path work = fs::temp_directory_path() / absl::StrCat("hepml_compile_report_", getpid());
  fs::remove_all(work);
  fs::create_directories(work);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{work};
  std::string feeds;
  if (!a.calibration.empty()) {
    for (const std::string& spec : a.calibration) {
      const size_t eq = spec.find('=');
      if (eq == std::string::npos || eq == 0) {
        return absl::InvalidArgumentError(absl::StrCat("--calibration '", spec, "': expected NAME=FILE.npy"));
      }
      auto t = ReadNpy(spec.substr(eq + 1));
      if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("--calibration: ", t.status().message()));
      feeds += " --input " + Quote(spec);
    }
  } else {
    auto session = Session::Create(a.model);
    if (!session.ok()) return session.status();
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    int i = 0;
    for (const TensorInfo& in : (*session)->inputs()) {
      Shape shape;
      for (size_t d = 0; d < in.shape.size(); ++d) {
        int64_t v = in.shape[d];
        if (v < 0) {
          auto it = options.dims.find(d < in.dim_names.size() ? in.dim_names[d] : "");
          v = it != options.dims.end() ? it->second : std::min<int64_t>(8, options.max_batch);
        }
        shape.push_back(v);
      }
      Tensor t = Tensor::Zeros(in.dtype, shape);
      if (in.dtype == DType::kFloat32)
        for (int64_t k = 0; k < t.size(); ++k) t.mutable_data<float>()[k] = u(rng);
      const std::string path = (work / absl::StrCat("input", i++, ".npy")).string();
      HEPML_RETURN_IF_ERROR(WriteNpy(path, t));
      feeds += " --input " + Quote(in.name + "=" + path);
    }
  }
  CompileOptions ref = options;
  ref.precision = WeightPrecision::kFp32;
  ref.layer_precision.clear();
  ref.calibration.clear();
  ref.qdq_kernels = false;
  ref.write_pruned.clear();
  ref.embed_weights = false;
  const fs::path ref_dir = work / "fp32", pkg_dir = work / "package";
  auto ref_report = CompileModel(a.model, ref_dir.string(), ref);
  if (!ref_report.ok()) return ref_report.status();
  std::error_code ec;
  fs::copy(a.out_dir, pkg_dir, fs::copy_options::recursive, ec);
  if (ec) return absl::InternalError(absl::StrCat("--report: copying ", a.out_dir, ": ", ec.message()));
  HEPML_ASSIGN_OR_RETURN(uintmax_t ref_obj, BuildPackage(ref_dir, options.name));
  HEPML_ASSIGN_OR_RETURN(uintmax_t pkg_obj, BuildPackage(pkg_dir, options.name));
  HEPML_RETURN_IF_ERROR(RunPackage(ref_dir, options.name, feeds, work / "out_fp32"));
  HEPML_RETURN_IF_ERROR(RunPackage(pkg_dir, options.name, feeds, work / "out_package"));
  HEPML_ASSIGN_OR_RETURN(double ref_us, BenchPackage(ref_dir, options.name));
  HEPML_ASSIGN_OR_RETURN(double pkg_us, BenchPackage(pkg_dir, options.name));
  bool from_qdq = false;
  for (const std::string& l : report.quantized_layers) from_qdq |= l.find("from QDQ") != std::string::npos;
  std::string label = options.layer_precision.empty() ? WeightPrecisionName(options.precision) : "mixed";
  // A QDQ model's reference is the model in float arithmetic (its
  // QuantizeLinear/DequantizeLinear pairs computed as hepml run does).
  if (from_qdq) label = "QDQ layers as int8 kernels, " + label + " elsewhere,";
  std::cout << "report: " << label << " against " << (from_qdq ? "the QDQ model in float" : "fp32") << " on "
            << (a.calibration.empty() ? "random inputs" : "the calibration data") << "\n"
            << "  weights " << ref_report->weight_bytes << " -> " << report.weight_bytes << " bytes, object "
            << options.name << ".o " << ref_obj << " -> " << pkg_obj << " bytes\n"
            << absl::StrFormat("  latency (batch 1, p50 of 2000 runs) %.2f -> %.2f us\n", ref_us, pkg_us);
  std::vector<fs::path> outs;
  for (const auto& e : fs::directory_iterator(work / "out_fp32")) outs.push_back(e.path());
  std::sort(outs.begin(), outs.end());
  for (const fs::path& f : outs) {
    auto want = ReadNpy(f.string());
    auto got = ReadNpy((work / "out_package" / f.filename()).string());
    if (!want.ok() || !got.ok()) return absl::InternalError(absl::StrCat("--report: output ", f.filename().string()));
    if (want->dtype() != DType::kFloat32 || got->dtype() != DType::kFloat32 || want->size() != got->size()) {
      std::cout << "  output " << f.stem().string() << ": not compared (" << DTypeName(want->dtype()) << ")\n";
      continue;
    }
    double max_err = 0, sum = 0;
    for (int64_t k = 0; k < want->size(); ++k) {
      const double e = std::fabs(static_cast<double>(got->data<float>()[k]) - want->data<float>()[k]);
      max_err = std::max(max_err, e);
      sum += e;
    }
    std::cout << "  output " << f.stem().string() << ": max abs error " << max_err << ", mean abs error "
              << (want->size() ? sum / static_cast<double>(want->size()) : 0.0) << "\n";
  }
  return absl::OkStatus();
}

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
  // Calibration files are checked before anything is written.
  for (const std::string& spec : a.calibration) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      PrintError("compile", absl::StrCat("--calibration '", spec, "': expected NAME=FILE.npy"));
      return kExitUsage;
    }
    if (auto t = ReadNpy(spec.substr(eq + 1)); !t.ok()) {
      PrintError("compile", absl::StrCat("--calibration: ", t.status().message()));
      return kExitUsage;
    }
  }
  bool int8 = options.precision.kind == WeightPrecision::kInt8;
  for (const auto& [node, p] : options.layer_precision) int8 |= p.kind == WeightPrecision::kInt8;
  if (!a.calibration.empty() && !a.report && !int8) {
    PrintError("compile", "--calibration is data for int8 layers and --report; neither is asked for");
    return kExitUsage;
  }
  options.calibration = a.calibration;
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
  for (const std::string& s : report->sparse_layers) std::cout << "  pruned layer: " << s << "\n";
  for (const std::string& s : report->quantized_layers) std::cout << "  quantised: " << s << "\n";
  if (a.report) {
    absl::Status st = PrintPrecisionReport(a, options, *report);
    if (!st.ok()) {
      PrintError("compile", st.message());
      return absl::IsInvalidArgument(st) ? kExitUsage : kExitFailure;
    }
  }
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
                  "Gemm/MatMul/Conv precision: fp32 (default), fp16 or bf16 (16-bit weights, float accumulation), int8 "
                  "(int8 weights per channel and activations, needs --calibration) or fixed<W,I[,Q[,O]]> (ap_fixed "
                  "emulation; Q: TRN, RND, RND_CONV; O: WRAP, SAT)");
  cmd->add_option("--prune", a->prune,
                  "Magnitude pruning of Gemm/MatMul/Conv weights: SPARSITY (e.g. 0.8) or N:M (e.g. 2:4)");
  cmd->add_option("--precision-file", a->precision_file,
                  "YAML: 'layers' maps node names of the optimised graph to fp32/fp16/bf16/int8/fixed<W,I,...>; "
                  "'default' replaces --precision");
  cmd->add_flag("--report", a->report,
                "Build the package and an fp32 one with the system C++ compiler and print output errors, weight "
                "and object bytes");
  cmd->add_option("--calibration", a->calibration, "NAME=FILE.npy model inputs: int8 activation ranges are calibrated on them, and --report compares on "
                  "them (default: random)");
  cmd->add_option("--write-pruned", a->write_pruned, "With --prune: also write the pruned ONNX model to this file");
  cmd->callback([=] { *exit_code = RunCompile(*a); });
}

}  // namespace hepml::cli
