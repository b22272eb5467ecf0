// hepml.Registry: the model/dataset/run registry (include/hepml/registry.h)
// with what a training script needs: runs with params and metrics, pushing
// model versions, aliases, validity intervals and pulling files back.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <filesystem>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hepml/registry.h"
#include "py_common.h"

namespace hepml::python {
namespace {

namespace reg = hepml::registry;

py::dict FileDict(const reg::FileEntry& f) {
  py::dict d;
  d["name"] = f.name;
  d["sha256"] = f.sha256;
  d["size"] = f.size;
  return d;
}

py::list Files(const std::vector<reg::FileEntry>& files) {
  py::list out;
  for (const reg::FileEntry& f : files) out.append(FileDict(f));
  return out;
}

py::dict Signature(const std::vector<reg::TensorSignature>& sig) {
  py::dict d;
  for (const reg::TensorSignature& t : sig) d[py::str(t.name)] = t.type;
  return d;
}

py::list Datasets(const std::vector<reg::DatasetVersionRef>& refs) {
  py::list out;
  for (const reg::DatasetVersionRef& r : refs) out.append(absl::StrCat(r.dataset, "@", r.version));
  return out;
}

py::dict VersionDict(const reg::ModelVersion& v) {
  py::dict d;
  d["model"] = v.model;
  d["version"] = v.version;
  d["ref"] = absl::StrCat(v.model, "@", v.version);
  d["files"] = Files(v.files);
  d["inputs"] = Signature(v.inputs);
  d["outputs"] = Signature(v.outputs);
  d["params"] = v.params;
  d["metrics"] = v.metrics;
  d["tags"] = v.tags;
  d["run"] = v.source_run ? py::object(py::int_(*v.source_run)) : py::object(py::none());
  d["datasets"] = Datasets(v.datasets);
  d["code_version"] = v.code_version;
  d["created_by"] = v.created_by;
  d["created_at_ms"] = v.created_at_ms;
  d["aliases"] = v.aliases;
  return d;
}

py::dict IntervalDict(const reg::Interval& i) {
  py::dict d;
  d["tag"] = i.tag;
  d["model"] = i.model;
  d["version"] = i.version;
  d["ref"] = absl::StrCat(i.model, "@", i.version);
  d["first_run"] = i.range.first_run;
  d["last_run"] = i.range.last_run;
  d["first_time"] = i.range.first_time ? py::object(py::int_(*i.range.first_time)) : py::object(py::none());
  d["last_time"] = i.range.last_time ? py::object(py::int_(*i.range.last_time)) : py::object(py::none());
  return d;
}

// "NAME@VERSION" -> (name, version); ValueError naming `what` otherwise.
std::pair<std::string, int64_t> ParseVersionRef(const char* what, const std::string& text) {
  const size_t at = text.rfind('@');
  if (at != std::string::npos && at > 0) {
    try {
      size_t used = 0;
      int64_t version = std::stoll(text.substr(at + 1), &used);
      if (used == text.size() - at - 1 && version > 0) return {text.substr(0, at), version};
    } catch (const std::exception&) {
    }
  }
  throw py::value_error(absl::StrCat(what, " reference '", text, "': expected NAME@VERSION (version >= 1)"));
}

std::vector<reg::DatasetVersionRef> ParseDatasetRefs(const std::vector<std::string>& texts) {
  std::vector<reg::DatasetVersionRef> out;
  for (const std::string& t : texts) {
    auto [name, version] = ParseVersionRef("dataset", t);
    out.push_back({name, version});
  }
  return out;
}

std::vector<reg::ModelVersionRef> ParseModelRefs(const std::vector<std::string>& texts) {
  std::vector<reg::ModelVersionRef> out;
  for (const std::string& t : texts) {
    auto [name, version] = ParseVersionRef("model", t);
    out.push_back({name, version});
  }
  return out;
}

// Values of params as the registry stores them (text): str as it is, other
// values by str().
std::map<std::string, std::string> ParamStrings(const py::dict& params) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : params) {
    if (!py::isinstance<py::str>(key)) throw py::type_error("parameter names must be str");
    out[key.cast<std::string>()] = py::str(value).cast<std::string>();
  }
  return out;
}

class PyRegistry {
 public:
  PyRegistry(const std::optional<std::filesystem::path>& dir, const std::optional<std::string>& metadata_uri,
             const std::optional<std::string>& blob_uri, const std::string& user, bool create_if_missing,
             bool run_hooks) {
    reg::RegistryOptions options;
    options.user = user;
    options.create_if_missing = create_if_missing;
    options.run_hooks = run_hooks;
    if (dir.has_value() == (metadata_uri.has_value() || blob_uri.has_value()))
      throw py::value_error("Registry needs either dir or both metadata_uri and blob_uri");
    if (!dir && !(metadata_uri && blob_uri))
      throw py::value_error("Registry needs both metadata_uri and blob_uri (or dir)");
    absl::StatusOr<std::unique_ptr<reg::Registry>> r;
    {
      py::gil_scoped_release release;
      r = dir ? reg::Registry::OpenDir(dir->string(), options) : reg::Registry::Open(*metadata_uri, *blob_uri, options);
    }
    registry_ = Unwrap(std::move(r));
  }

  std::string MetadataUri() const { return registry_->metadata_uri(); }
  std::string BlobUri() const { return registry_->blob_uri(); }

  int64_t StartRun(const std::string& name, const py::dict& params, const std::vector<std::string>& inputs,
                   const std::vector<std::string>& models, const std::string& code_version) {
    reg::RunStart start;
    start.name = name;
    start.params = ParamStrings(params);
    start.inputs = ParseDatasetRefs(inputs);
    start.model_inputs = ParseModelRefs(models);
    start.code_version = code_version;
    return Unwrap(WithoutGil([&] { return registry_->StartRun(start); }));
  }

  void LogParam(int64_t run, const std::string& key, const py::object& value) {
    const std::string text = py::str(value);
    Check(WithoutGil([&] { return registry_->LogParam(run, key, text); }));
  }

  void LogMetric(int64_t run, const std::string& key, double value, int64_t step) {
    Check(WithoutGil([&] { return registry_->LogMetric(run, key, value, step); }));
  }

  py::dict LogArtifact(int64_t run, const std::filesystem::path& file, const std::string& name) {
    const std::string path = file.string();
    absl::StatusOr<reg::FileEntry> f;
    {
      py::gil_scoped_release release;
      f = registry_->LogArtifact(run, path, name);
    }
    return FileDict(Unwrap(std::move(f)));
  }

  py::dict GetArtifact(int64_t run, const std::string& name, const std::filesystem::path& dest) {
    const std::string path = dest.string();
    absl::StatusOr<reg::FileEntry> f;
    {
      py::gil_scoped_release release;
      f = registry_->GetArtifact(run, name, path);
    }
    return FileDict(Unwrap(std::move(f)));
  }

  void EndRun(int64_t run, const std::string& status, std::optional<double> cpu_seconds,
              std::optional<double> gpu_seconds, std::optional<int64_t> peak_memory_bytes) {
    reg::RunEnd end;
    end.status = status;
    end.cpu_seconds = cpu_seconds;
    end.gpu_seconds = gpu_seconds;
    end.peak_memory_bytes = peak_memory_bytes;
    Check(WithoutGil([&] { return registry_->EndRun(run, end); }));
  }

  py::dict GetRun(int64_t run) {
    absl::StatusOr<reg::RunInfo> r;
    {
      py::gil_scoped_release release;
      r = registry_->GetRun(run);
    }
    const reg::RunInfo info = Unwrap(std::move(r));
    py::dict d;
    d["id"] = info.id;
    d["name"] = info.name;
    d["status"] = info.status;
    d["params"] = info.params;
    // metrics: key -> [(step, value), ...] in step order.
    py::dict metrics;
    for (const reg::MetricPoint& p : info.metrics) {
      py::str key(p.key);
      if (!metrics.contains(key)) metrics[key] = py::list();
      metrics[key].cast<py::list>().append(py::make_tuple(p.step, p.value));
    }
    d["metrics"] = metrics;
    d["artifacts"] = Files(info.artifacts);
    d["inputs"] = Datasets(info.inputs);
    py::list models;
    for (const auto& m : info.model_inputs) models.append(absl::StrCat(m.model, "@", m.version));
    d["model_inputs"] = models;
    d["host"] = info.host;
    d["code_version"] = info.code_version;
    d["created_by"] = info.created_by;
    d["start_ms"] = info.start_ms;
    d["end_ms"] = info.end_ms ? py::object(py::int_(*info.end_ms)) : py::object(py::none());
    return d;
  }

  py::dict CreateModel(const std::string& name, const std::string& description) {
    absl::StatusOr<reg::ModelInfo> m;
    {
      py::gil_scoped_release release;
      m = registry_->CreateModel(name, description);
    }
    const reg::ModelInfo info = Unwrap(std::move(m));
    return ModelDict(info);
  }

  py::list Models() {
    absl::StatusOr<std::vector<reg::ModelInfo>> models;
    {
      py::gil_scoped_release release;
      models = registry_->ListModels();
    }
    py::list out;
    for (const reg::ModelInfo& m : Unwrap(std::move(models))) out.append(ModelDict(m));
    return out;
  }

  py::dict Push(const std::string& model, const py::object& files, const py::dict& params,
                const std::map<std::string, double>& metrics, const std::map<std::string, std::string>& tags,
                std::optional<int64_t> run, const std::vector<std::string>& datasets, const std::string& code_version,
                std::optional<int64_t> version, const std::string& description) {
    std::vector<std::string> paths;
    if (py::isinstance<py::str>(files) || py::hasattr(files, "__fspath__")) {
      paths.push_back(py::str(files));
    } else {
      for (const py::handle f : files) paths.push_back(py::str(f));
    }
    reg::PushOptions options;
    options.params = ParamStrings(params);
    options.metrics = metrics;
    options.tags = tags;
    options.source_run = run;
    options.datasets = ParseDatasetRefs(datasets);
    options.code_version = code_version;
    options.version = version;
    absl::StatusOr<reg::ModelVersion> v;
    {
      py::gil_scoped_release release;
      v = PushCreating(model, description, paths, options);
    }
    return VersionDict(Unwrap(std::move(v)));
  }

  py::dict GetVersion(const std::string& model, int64_t version) {
    absl::StatusOr<reg::ModelVersion> v;
    {
      py::gil_scoped_release release;
      v = registry_->GetVersion(model, version);
    }
    return VersionDict(Unwrap(std::move(v)));
  }

  py::list Versions(const std::string& model) {
    absl::StatusOr<std::vector<reg::ModelVersion>> vs;
    {
      py::gil_scoped_release release;
      vs = registry_->ListVersions(model);
    }
    py::list out;
    for (const reg::ModelVersion& v : Unwrap(std::move(vs))) out.append(VersionDict(v));
    return out;
  }

  void SetAlias(const std::string& model, const std::string& alias, int64_t version) {
    Check(WithoutGil([&] { return registry_->SetAlias(model, alias, version); }));
  }

  void RemoveAlias(const std::string& model, const std::string& alias) {
    Check(WithoutGil([&] { return registry_->RemoveAlias(model, alias); }));
  }

  py::dict ResolveAlias(const std::string& model, const std::string& alias) {
    absl::StatusOr<reg::ModelVersion> v;
    {
      py::gil_scoped_release release;
      v = registry_->GetAlias(model, alias);
    }
    return VersionDict(Unwrap(std::move(v)));
  }

  py::dict ResolveRef(const std::string& ref) {
    absl::StatusOr<reg::ModelVersion> v;
    {
      py::gil_scoped_release release;
      v = registry_->ResolveRef(ref);
    }
    return VersionDict(Unwrap(std::move(v)));
  }

  void AddInterval(const std::string& tag, const std::string& model, int64_t version, int64_t first_run,
                   int64_t last_run, std::optional<int64_t> first_time, std::optional<int64_t> last_time) {
    reg::IntervalSpec range;
    range.first_run = first_run;
    range.last_run = last_run;
    range.first_time = first_time;
    range.last_time = last_time;
    Check(WithoutGil([&] { return registry_->AddInterval(tag, model, version, range); }));
  }

  py::dict Resolve(const std::string& tag, int64_t run) {
    absl::StatusOr<reg::Interval> i;
    {
      py::gil_scoped_release release;
      i = registry_->Resolve(tag, run);
    }
    return IntervalDict(Unwrap(std::move(i)));
  }

  py::list Intervals(const std::string& tag) {
    absl::StatusOr<std::vector<reg::Interval>> is;
    {
      py::gil_scoped_release release;
      is = registry_->ListIntervals(tag);
    }
    py::list out;
    for (const reg::Interval& i : Unwrap(std::move(is))) out.append(IntervalDict(i));
    return out;
  }

  std::vector<std::string> Pull(const std::string& ref, const py::object& dest) {
    const std::string path = py::str(dest);
    return Unwrap(WithoutGil([&] { return registry_->Pull(ref, path); }));
  }

 private:
  // A training script pushes to a model it may not have created yet.
  absl::StatusOr<reg::ModelVersion> PushCreating(const std::string& model, const std::string& description,
                                                 const std::vector<std::string>& paths,
                                                 const reg::PushOptions& options) {
    if (auto m = registry_->GetModel(model); !m.ok()) {
      if (!absl::IsNotFound(m.status())) return m.status();
      auto created = registry_->CreateModel(model, description);
      // Another process may have created it meanwhile.
      if (!created.ok() && !absl::IsAlreadyExists(created.status())) return created.status();
    }
    return registry_->PushModelVersion(model, paths, options);
  }

  static py::dict ModelDict(const reg::ModelInfo& m) {
    py::dict d;
    d["name"] = m.name;
    d["description"] = m.description;
    d["created_at_ms"] = m.created_at_ms;
    d["latest_version"] = m.latest_version;
    return d;
  }

  std::unique_ptr<reg::Registry> registry_;
};

}  // namespace

void RegisterRegistry(py::module_& m) {
  using R = PyRegistry;
  py::class_<R>(m, "Registry", R"doc(
The hepml registry of models, datasets and training runs.

Registry(dir) opens (creating when create_if_missing) the embedded layout:
DIR/registry.db (SQLite) and DIR/blobs. Registry(metadata_uri=..., blob_uri=...)
opens any other: metadata "sqlite:///PATH" or "postgresql://USER@HOST:PORT/DB",
blobs "file:///PATH" or "root://...". user is recorded as the author
(default $USER).

A training script:

    reg = hepml.Registry("/data/registry")
    run = reg.start_run("btag-train", {"lr": 1e-3, "epochs": 20})
    for epoch in range(20):
        reg.log_metric(run, "loss", loss, step=epoch)
    reg.end_run(run, "finished")
    v = reg.push("btag", "model.onnx", metrics={"auc": 0.93}, run=run)
    reg.set_alias("btag", "production", v["version"])
    reg.pull("btag@production", "/tmp/btag.onnx")

Model versions come back as dicts ("model", "version", "ref", "files",
"inputs", "outputs", "params", "metrics", "tags", "run", "datasets",
"code_version", "created_by", "created_at_ms", "aliases"). Errors raise
FileNotFoundError (unknown model, alias, run, file), ValueError (bad
argument) or RuntimeError, with the registry's message. Calls release the
GIL; a Registry may be shared by threads.
)doc")
      .def(py::init<const std::optional<std::filesystem::path>&, const std::optional<std::string>&,
                    const std::optional<std::string>&, const std::string&, bool, bool>(),
           py::arg("dir") = py::none(), py::kw_only(), py::arg("metadata_uri") = py::none(),
           py::arg("blob_uri") = py::none(), py::arg("user") = "", py::arg("create_if_missing") = true,
           py::arg("run_hooks") = true)
      .def_property_readonly("metadata_uri", &R::MetadataUri, "Where the metadata lives.")
      .def_property_readonly("blob_uri", &R::BlobUri, "Where the file contents live.")
      .def("start_run", &R::StartRun, py::arg("name"), py::arg("params") = py::dict(), py::kw_only(),
           py::arg("inputs") = std::vector<std::string>{}, py::arg("models") = std::vector<std::string>{},
           py::arg("code_version") = "", R"doc(
Starts a training run and returns its id. params: name -> value (stored as
str(value)); inputs: the dataset versions it reads, "NAME@VERSION"; models:
the model versions it reads (a fine-tuning run's base model), "MODEL@VERSION";
code_version: the training code's git commit.
)doc")
      .def("log_param", &R::LogParam, py::arg("run"), py::arg("key"), py::arg("value"),
           "Records one more parameter of a run (stored as str(value)).")
      .def("log_metric", &R::LogMetric, py::arg("run"), py::arg("key"), py::arg("value"), py::arg("step") = 0,
           "Records a metric value of a run at a step (an epoch, an iteration).")
      .def("log_artifact", &R::LogArtifact, py::arg("run"), py::arg("path"), py::arg("name") = "",
           "Stores a file as an artifact of the run under `name` (a relative path such as \"plots/roc.png\";"
           " default the file's name); returns {\"name\", \"sha256\", \"size\"}.")
      .def("get_artifact", &R::GetArtifact, py::arg("run"), py::arg("name"), py::arg("dest"),
           "Writes artifact `name` of the run to the file `dest`; returns {\"name\", \"sha256\", \"size\"}.")
      .def("end_run", &R::EndRun, py::arg("run"), py::arg("status") = "finished", py::kw_only(),
           py::arg("cpu_seconds") = py::none(), py::arg("gpu_seconds") = py::none(),
           py::arg("peak_memory_bytes") = py::none(),
           "Ends a run with status \"finished\", \"failed\" or \"killed\" and optional resource use.")
      .def("get_run", &R::GetRun, py::arg("run"), R"doc(
A run as a dict: "id", "name", "status", "params", "metrics" (key -> list of
(step, value) in step order), "artifacts", "inputs", "model_inputs", "host",
"code_version", "created_by", "start_ms", "end_ms".
)doc")
      .def("create_model", &R::CreateModel, py::arg("name"), py::arg("description") = "",
           "Creates a model (ValueError or RuntimeError if it exists); push() creates one when needed.")
      .def("models", &R::Models, "Every model: dicts with \"name\", \"description\", \"latest_version\".")
      .def("push", &R::Push, py::arg("model"), py::arg("files"), py::kw_only(), py::arg("params") = py::dict(),
           py::arg("metrics") = std::map<std::string, double>{}, py::arg("tags") = std::map<std::string, std::string>{},
           py::arg("run") = py::none(), py::arg("datasets") = std::vector<std::string>{},
           py::arg("code_version") = "", py::arg("version") = py::none(), py::arg("description") = "", R"doc(
Publishes the next version of `model` (created, with `description`, when it
does not exist yet) from `files`: a path or a list of paths; the first .onnx
file gives the signature and must be a model hepml can read. params,
metrics, tags: recorded with the version; run: the training run that made
it; datasets: "NAME@VERSION" it was trained on; version: publish exactly
this number (refused if it exists: published versions are immutable).
Returns the version's dict.
)doc")
      .def("get_version", &R::GetVersion, py::arg("model"), py::arg("version"), "One version of a model.")
      .def("versions", &R::Versions, py::arg("model"), "Every version of a model, oldest first.")
      .def("set_alias", &R::SetAlias, py::arg("model"), py::arg("alias"), py::arg("version"),
           "Points model@alias (\"production\", \"staging\") at a version; the move is recorded.")
      .def("remove_alias", &R::RemoveAlias, py::arg("model"), py::arg("alias"), "Removes an alias.")
      .def("resolve_alias", &R::ResolveAlias, py::arg("model"), py::arg("alias"),
           "The version model@alias points at.")
      .def("resolve_ref", &R::ResolveRef, py::arg("ref"),
           "The version of \"MODEL@VERSION\", \"MODEL@ALIAS\", \"MODEL@tag:TAG:RUN\" or \"MODEL\" (latest).")
      .def("add_interval", &R::AddInterval, py::arg("tag"), py::arg("model"), py::arg("version"),
           py::arg("first_run"), py::arg("last_run"), py::kw_only(), py::arg("first_time") = py::none(),
           py::arg("last_time") = py::none(),
           "Makes model@version valid for runs [first_run, last_run] (and optionally Unix times) under an IOV tag.")
      .def("intervals", &R::Intervals, py::arg("tag"), "The intervals of an IOV tag.")
      .def("resolve", &R::Resolve, py::arg("tag"), py::arg("run"), R"doc(
The interval of IOV tag `tag` valid for `run`: a dict with "tag", "model",
"version", "ref", "first_run", "last_run", "first_time", "last_time"
(FileNotFoundError when no interval covers the run).
)doc")
      .def("pull", &R::Pull, py::arg("ref"), py::arg("dest"), R"doc(
Writes the files of a version ("MODEL@VERSION", "MODEL@ALIAS", ...): to
`dest` itself when the version has one file and dest is not a directory,
else into the directory dest. Returns the paths written.
)doc");
}

}  // namespace hepml::python
