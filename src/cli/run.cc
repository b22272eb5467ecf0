// `hepml run MODEL.onnx --input NAME=FILE.npy ... [--output-dir DIR] [--threads N]
//  [--precision fp32|fp16|bf16]`
// `hepml run MODEL.onnx --data URL... --map INPUT=COL,... --out FILE.npy ...`:
// batch inference over a dataset (run_data.cc; builds with HEPML_SERVICES).
//
// Writes DIR/<output name>.npy for each graph output. Characters of the name
// other than [A-Za-z0-9._-] become '_' ("dense/BiasAdd:0" -> "dense_BiasAdd_0").
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#ifdef HEPML_SERVICES
#include "cli/run_data.h"
#endif
#include "common/npy.h"
#include "hepml/session.h"

namespace hepml::cli {
namespace {

namespace fs = std::filesystem;

std::string SanitizeName(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) c = '_';
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

int RunModel(const std::string& model_path, const std::vector<std::string>& input_specs,
             const std::string& output_dir, int threads, const std::string& precision) {
  SessionOptions options;
  options.num_threads = threads;
  auto parsed = ParsePrecision(precision);
  if (!parsed.ok()) {
    PrintError("run", absl::StrCat("--precision: ", parsed.status().message()));
    return kExitUsage;
  }
  options.precision = *parsed;
  auto session = Session::Create(model_path, options);
  if (!session.ok()) {
    PrintError("run", session.status().message());
    return kExitFailure;
  }
  Session::NamedTensors inputs;
  for (const std::string& spec : input_specs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      if (spec.size() > 4 && spec.substr(spec.size() - 4) == ".npz") {
        auto arrays = ReadNpz(spec);
        if (!arrays.ok()) {
          PrintError("run", arrays.status().message());
          return kExitFailure;
        }
        for (auto& [name, t] : *arrays) inputs.emplace_back(name, std::move(t));
        continue;
      }
      PrintError("run", absl::StrCat("--input '", spec, "': expected NAME=FILE.npy or FILE.npz"));
      return kExitUsage;
    }
    auto t = ReadNpy(spec.substr(eq + 1));
    if (!t.ok()) {
      PrintError("run", absl::StrCat("input '", spec.substr(0, eq), "': ", t.status().message()));
      return kExitFailure;
    }
    inputs.emplace_back(spec.substr(0, eq), std::move(*t));
  }
  auto outputs = (*session)->Run(inputs);
  if (!outputs.ok()) {
    PrintError("run", outputs.status().message());
    return kExitFailure;
  }
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  if (ec) {
    PrintError("run", absl::StrCat(output_dir, ": ", ec.message()));
    return kExitFailure;
  }
  const auto& infos = (*session)->outputs();
  for (size_t i = 0; i < outputs->size(); ++i) {
    std::string path = (fs::path(output_dir) / (SanitizeName(infos[i].name) + ".npy")).string();
    absl::Status st = WriteNpy(path, (*outputs)[i]);
    if (!st.ok()) {
      PrintError("run", st.message());
      return kExitFailure;
    }
    std::cout << infos[i].name << ": " << DTypeName((*outputs)[i].dtype())
              << ShapeToString((*outputs)[i].shape()) << " -> " << path << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("run", "Run an ONNX model on .npy/.npz inputs, or in batches over a dataset (--data)");
  struct Args {
    std::string model;
    std::vector<std::string> inputs;
    std::string output_dir = ".";
    int threads = 1;
    std::string precision = "fp32";
    // Batch inference over a dataset.
    std::vector<std::string> data, maps, pads;
    std::string tree, format = "auto", out, shard;
    int64_t batch_size = 1024;
    bool resume = false;
    double checkpoint_seconds = 1.0;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("model", args->model, "ONNX model file")->required();
  cmd->add_option("--input,-i", args->inputs, "NAME=FILE.npy, or FILE.npz holding every input by name");
  cmd->add_option("--output-dir,-o", args->output_dir, "Folder for one <output>.npy per graph output");
  cmd->add_option("--threads,-t", args->threads, "Intra-op threads (0: one per core)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--precision", args->precision,
                  "fp32, or fp16/bf16: mixed precision (inputs and outputs stay as declared)");
  cmd->add_option("--data", args->data, "Dataset URL (ROOT, HDF5, CSV, npy/npz; file:// or root://); repeat for several files");
  cmd->add_option("--tree", args->tree, "--data: the ROOT TTree/RNTuple path, or the HDF5 group");
  cmd->add_option("--format", args->format, "--data: auto, root, npy, npz, csv or hdf5");
  cmd->add_option("--map", args->maps, "--data: INPUT=COL[,COL...]: the columns that make the model input INPUT");
  cmd->add_option("--pad", args->pads, "--data: INPUT=LEN: pad or cut the jagged columns of INPUT to LEN items");
  cmd->add_option("--batch-size", args->batch_size, "--data: entries per model call (and per checkpoint)");
  cmd->add_option("--out", args->out, "--data: FILE.npy for the output (several outputs: FILE.<output>.npy)");
  cmd->add_option("--shard", args->shard, "--data: I/N: process part I of N (files, or entries for one file)");
  cmd->add_flag("--resume", args->resume, "--data: continue an interrupted job from its last complete batch");
  cmd->add_option("--checkpoint-seconds", args->checkpoint_seconds,
                  "--data: seconds between checkpoints (fsync + progress file); 0: after every batch")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([=] {
    if (!args->data.empty() || !args->maps.empty() || !args->out.empty()) {
#ifdef HEPML_SERVICES
      if (args->data.empty()) {
        PrintError("run", "--map and --out go with --data URL");
        *exit_code = kExitUsage;
        return;
      }
      if (!args->inputs.empty()) {
        PrintError("run", "--input and --data cannot be combined");
        *exit_code = kExitUsage;
        return;
      }
      RunDataArgs d;
      d.model = args->model;
      d.data = args->data;
      d.tree = args->tree;
      d.format = args->format;
      d.maps = args->maps;
      d.pads = args->pads;
      d.batch_size = args->batch_size;
      d.out = args->out;
      d.shard = args->shard;
      d.resume = args->resume;
      d.checkpoint_seconds = args->checkpoint_seconds;
      d.threads = args->threads;
      d.precision = args->precision;
      *exit_code = RunOverDataset(d);
#else
      PrintError("run", "--data needs a build with HEPML_SERVICES=ON");
      *exit_code = kExitUsage;
#endif
      return;
    }
    *exit_code = RunModel(args->model, args->inputs, args->output_dir, args->threads, args->precision);
  });
}

}  // namespace hepml::cli
