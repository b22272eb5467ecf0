// hepml.compile: ahead-of-time compilation of an ONNX model into a C++17
// package (hepml::CompileModel, include/hepml/compiler.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <filesystem>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hepml/compiler.h"
#include "py_common.h"

namespace hepml::python {
namespace {

py::dict Compile(const std::filesystem::path& model_file, const std::filesystem::path& out_path,
                 const std::optional<std::string>& name,
                 const std::string& cpp_namespace, int64_t max_batch, const std::map<std::string, int64_t>& dims,
                 bool embed_weights, const std::vector<std::string>& disabled_passes, const std::string& precision,
                 const std::map<std::string, std::string>& layer_precision, const std::string& prune,
                 const std::string& write_pruned) {
  const std::string model_path = model_file.string(), out_dir = out_path.string();
  CompileOptions options;
  options.name = name.value_or(DefaultPackageName(model_path));
  options.cpp_namespace = cpp_namespace;
  options.max_batch = max_batch;
  options.dims = dims;
  options.embed_weights = embed_weights;
  options.disabled_passes.insert(disabled_passes.begin(), disabled_passes.end());
  options.precision = Unwrap(ParseWeightPrecision(precision));
  for (const auto& [node, p] : layer_precision) options.layer_precision[node] = Unwrap(ParseWeightPrecision(p));
  options.prune = prune;
  options.write_pruned = write_pruned;
  absl::StatusOr<CompileReport> report;
  {
    py::gil_scoped_release release;
    report = CompileModel(model_path, out_dir, options);
  }
  const CompileReport r = Unwrap(std::move(report));
  py::dict d;
  d["name"] = options.name;
  d["files"] = r.files;
  d["num_steps"] = r.num_steps;
  d["kernel_files"] = r.kernel_files;
  d["arena_bytes"] = r.arena_bytes;
  d["weight_bytes"] = r.weight_bytes;
  py::list layers;
  for (const PrunedLayerReport& l : r.layers) {
    py::dict ld;
    ld["node"] = l.node;
    ld["weight"] = l.weight;
    ld["size"] = l.size;
    ld["zeros_before"] = l.zeros_before;
    ld["zeros_after"] = l.zeros_after;
    layers.append(ld);
  }
  d["layers"] = layers;
  d["sparse_layers"] = r.sparse_layers;
  return d;
}

}  // namespace

void RegisterCompiler(py::module_& m) {
  m.def("compile", &Compile, py::arg("model_path"), py::arg("out_dir"), py::kw_only(), py::arg("name") = py::none(),
        py::arg("namespace") = "hepml_generated", py::arg("max_batch") = 64,
        py::arg("dims") = std::map<std::string, int64_t>{}, py::arg("embed_weights") = false,
        py::arg("disabled_passes") = std::vector<std::string>{}, py::arg("precision") = "fp32",
        py::arg("layer_precision") = std::map<std::string, std::string>{}, py::arg("prune") = "",
        py::arg("write_pruned") = "", R"doc(
Compiles an ONNX model ahead of time into a dependency-free C++17 package in
out_dir (as `hepml compile`): NAME.h, NAME.cc, NAME.weights (unless
embed_weights), NAME_run.cc (a runner mirroring `hepml run`) and a
CMakeLists.txt.

name: the class and file stem (default: the model file's stem as an
identifier). namespace: the C++ namespace (may be nested, "a::b").
max_batch: the largest batch run() accepts. dims: sizes of other symbolic
input dimensions by symbol. precision: "fp32", "fp16" or "bf16" storage of
the Gemm/MatMul/Conv weights; layer_precision overrides it per node of the
optimised graph. prune: "" (none), "0.8" (unstructured) or "2:4" (N:M);
write_pruned: also write the pruned ONNX model there.

Returns the report: a dict with "name", "files" (relative to out_dir),
"num_steps", "kernel_files", "arena_bytes", "weight_bytes", "layers" and
"sparse_layers". Every check happens before anything is written; a failed
compile leaves no partial folder and raises FileNotFoundError (no model),
ValueError (a bad option or model) or NotImplementedError (an operator the
compiler lacks), naming what is at fault. Releases the GIL.
)doc");
}

}  // namespace hepml::python
