// hepml::registry: the central repository of models, datasets and training
// runs, with lineage and run-range validity (a conditions database for
// models).
//
//   auto reg = hepml::registry::Registry::OpenDir("/data/registry");
//   (*reg)->CreateModel("btag", "jet flavour tagger");
//   auto v = (*reg)->PushModelVersion("btag", {"model.onnx"}, {.metrics = {{"auc", 0.93}}});
//   (*reg)->SetAlias("btag", "production", v->version);
//   (*reg)->AddInterval("btag_2026", "btag", v->version, {.first_run = 1000, .last_run = 1999});
//   auto valid = (*reg)->Resolve("btag_2026", 1500);   // the version valid for run 1500
//   (*reg)->Pull("btag@production", "/tmp/btag.onnx");
//
// Storage: metadata in SQLite (embedded, DIR/registry.db) or PostgreSQL;
// file contents in the blob store (content-defined chunks, DIR/blobs). A
// version is pushed blobs first, then its metadata in one transaction, so a
// visible version never points at missing data. Published versions are
// immutable.
//
// Thread safety: a Registry may be shared by threads (calls are serialized
// on its one database connection); several processes may open the same
// registry at once.
#ifndef HEPML_REGISTRY_H_
#define HEPML_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hepml::registry {

class BlobStore;
class MetadataStore;

// A stored file: its name in the version, content hash, size, and the blob
// store manifest holding its bytes.
struct FileEntry {
  std::string name;
  std::string sha256;
  uint64_t size = 0;
  std::string manifest_id;
};

// One graph input or output as the ONNX file declares it.
struct TensorSignature {
  std::string name;
  std::string type;  // e.g. "tensor(float)[batch,16]"
};

struct ModelInfo {
  int64_t id = 0;
  std::string name;
  std::string description;
  int64_t created_at_ms = 0;
  int64_t latest_version = 0;  // 0 = no version yet
};

struct DatasetVersionRef {
  std::string dataset;
  int64_t version = 0;
};

struct ModelVersionRef {
  std::string model;
  int64_t version = 0;
};

struct ModelVersion {
  int64_t id = 0;
  std::string model;
  int64_t version = 0;
  std::vector<FileEntry> files;
  std::vector<TensorSignature> inputs;
  std::vector<TensorSignature> outputs;
  std::map<std::string, std::string> params;
  std::map<std::string, double> metrics;
  std::map<std::string, std::string> tags;
  std::optional<int64_t> source_run;
  std::vector<DatasetVersionRef> datasets;
  std::string code_version;  // git commit of the training code
  std::string created_by;
  int64_t created_at_ms = 0;
  std::vector<std::string> aliases;  // aliases pointing here now
  // Annotations that may change after publication (the files, signature,
  // params, metrics and lineage never do): MLflow's stage ("None",
  // "Staging", "Production", "Archived"), a description, and when either or
  // a tag last changed (created_at_ms until then).
  std::string stage = "None";
  std::string description;
  int64_t updated_at_ms = 0;
};

struct PushOptions {
  std::map<std::string, std::string> params;
  std::map<std::string, double> metrics;
  std::map<std::string, std::string> tags;
  std::optional<int64_t> source_run;
  std::vector<DatasetVersionRef> datasets;
  std::string code_version;
  // Publish exactly this version number: refused (AlreadyExists) when it is
  // already published, since published versions are immutable.
  std::optional<int64_t> version;
};

// One move of an alias (from = nullopt: created; to = nullopt: removed).
struct AliasMove {
  std::string model;
  std::string alias;
  std::optional<int64_t> from_version;
  std::optional<int64_t> to_version;
  std::string moved_by;
  int64_t moved_at_ms = 0;
};

// An interval of validity: runs [first_run, last_run] (inclusive) and,
// optionally, times [first_time, last_time] (Unix seconds) of one IOV tag
// map to one model version.
struct IntervalSpec {
  int64_t first_run = 0;
  int64_t last_run = 0;
  std::optional<int64_t> first_time;
  std::optional<int64_t> last_time;
};

struct Interval {
  std::string tag;
  IntervalSpec range;
  std::string model;
  int64_t version = 0;
  int64_t version_id = 0;
};

struct GlobalTagEntry {
  std::string record;  // the name a consumer asks for (defaults to the tag's)
  std::string tag;
};

struct DatasetOptions {
  std::string schema_json;  // "" = none
  std::optional<int64_t> entries;
  std::string stats_json;   // "" = none
  std::string description;
  // The run that produced this version (a preprocessing or skimming run);
  // it must exist. Lineage walks from the version to the run's inputs.
  std::optional<int64_t> source_run;
};

struct DatasetVersion {
  int64_t id = 0;
  std::string dataset;
  int64_t version = 0;
  std::vector<FileEntry> files;
  std::string schema_json;
  std::optional<int64_t> entries;
  std::string stats_json;
  std::optional<int64_t> source_run;
  std::string created_by;
  int64_t created_at_ms = 0;
};

struct MetricPoint {
  std::string key;
  int64_t step = 0;
  double value = 0;
  int64_t time_ms = 0;
};

// A named group of runs (MLflow's experiment). Runs started without one
// belong to no experiment (the REST API shows them as experiment 0,
// "Default").
struct Experiment {
  int64_t id = 0;
  std::string name;
  std::string created_by;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;  // the last rename, tag, delete or restore (created_at_ms until then)
  bool deleted = false;       // MLflow's lifecycle_stage "deleted": kept, restorable
  std::map<std::string, std::string> tags;
};

// Which runs or experiments a search lists (MLflow's ViewType).
enum class LifecycleView { kActiveOnly, kDeletedOnly, kAll };

struct RunStart {
  std::string name;
  std::optional<int64_t> experiment_id;
  std::map<std::string, std::string> params;
  std::vector<DatasetVersionRef> inputs;
  // Model versions the run reads (the base model of a fine-tuning run).
  std::vector<ModelVersionRef> model_inputs;
  std::string code_version;
  // When the run started (Unix ms), as the client that logs it saw it
  // (MLflow's runs/create start_time); unset: now.
  std::optional<int64_t> start_ms;
};

// What one call logs to a run, all or nothing (MLflow's log-batch).
struct RunBatch {
  std::vector<std::pair<std::string, std::string>> params;  // a key logged again must keep its value
  std::vector<MetricPoint> metrics;                         // key, step, value, time_ms (Unix ms; 0: now)
  std::vector<std::pair<std::string, std::string>> tags;    // set or replaced
};

struct RunEnd {
  std::string status = "finished";  // finished | failed | killed
  std::optional<double> cpu_seconds;
  std::optional<double> gpu_seconds;
  std::optional<int64_t> peak_memory_bytes;
  // When the run ended (Unix ms; MLflow's runs/update end_time); unset: now.
  std::optional<int64_t> end_ms;
};

struct RunInfo {
  int64_t id = 0;
  std::string name;
  std::string status;  // running | finished | failed | killed
  std::optional<int64_t> experiment_id;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
  std::vector<MetricPoint> metrics;  // every logged point, by key then step
  std::vector<FileEntry> artifacts;
  std::vector<DatasetVersionRef> inputs;
  std::vector<ModelVersionRef> model_inputs;
  std::string host;
  std::string code_version;
  std::string created_by;
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;
  std::optional<double> cpu_seconds;
  std::optional<double> gpu_seconds;
  std::optional<int64_t> peak_memory_bytes;
  bool deleted = false;  // MLflow's lifecycle_stage "deleted": kept, restorable
};

// Lineage as a graph: nodes are "model_version" (ref MODEL@V), "run" (ref
// run:ID) or "dataset_version" (ref NAME@V), and in downstream walks also
// "alias" (ref MODEL@ALIAS) and "iov_tag" (ref TAG); edges read "from
// RELATION to":
//   model_version   produced_by  run
//   model_version   trained_on   dataset_version
//   run             consumed     dataset_version | model_version
//   dataset_version produced_by  run
//   alias | iov_tag points_to    model_version   (the alias is on it now; the
//                                                 tag has an interval on it)
// Edges always point from the newer record to the older one it was made
// from (or from the pointer to what it points at), so the graph has no
// cycles.
struct LineageNode {
  std::string kind;
  std::string ref;
  int depth = 0;  // edges from the start node (breadth-first)
};
struct LineageEdge {
  std::string from;
  std::string relation;  // produced_by | trained_on | consumed
  std::string to;
};
struct Lineage {
  std::vector<LineageNode> nodes;  // breadth-first order, the start first
  std::vector<LineageEdge> edges;  // each once
  // The walk stopped at LineageOptions::max_nodes: the graph is larger than
  // what `nodes` holds.
  bool truncated = false;
};

struct LineageOptions {
  int max_depth = -1;         // edges from the start node to follow; -1: unlimited
  int64_t max_nodes = 10000;  // stop (and flag `truncated`) beyond this many nodes
};

// Event kinds: model_version.created, alias.moved, dataset_version.created.
struct Event {
  int64_t id = 0;
  std::string kind;
  std::string payload_json;
  int64_t created_at_ms = 0;
};

// A hook runs after the transaction that recorded a matching event commits:
// either a shell command (the event JSON on stdin; HEPML_EVENT_KIND and
// HEPML_EVENT_ID in the environment) or an HTTP POST of the JSON to an
// http:// URL. A failing hook is reported, never undoes the change.
struct Hook {
  int64_t id = 0;
  std::string event_kind;  // a kind or "*"
  std::string command;     // one of command / url
  std::string url;
};

struct HookFailure {
  int64_t hook_id = 0;
  std::string message;
};

struct FsckResult {
  uint64_t manifests_checked = 0;
  uint64_t chunks_checked = 0;
  uint64_t referenced = 0;
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

struct GcResult {
  uint64_t live_manifests = 0;
  uint64_t manifests_removed = 0;
  uint64_t chunks_removed = 0;
  uint64_t bytes_freed = 0;
};

struct RegistryOptions {
  std::string user;         // recorded as created_by/moved_by; default $USER
  bool run_hooks = true;    // fire hooks after commits
  // A hook command still running after this many seconds is killed (its
  // process group: SIGTERM, SIGKILL a second later) and reported as failed;
  // an HTTP hook gets as long to connect and answer.
  double hook_timeout_s = 30;
  // OpenDir only: create DIR and an empty registry when DIR/registry.db is
  // missing (else NotFound, so a mistyped folder is not a new registry).
  bool create_if_missing = true;
};

// OK when `path` can name a run's artifact: a relative path of at most 1024
// characters without empty, "." or ".." segments, backslashes or control
// characters; else InvalidArgument naming the path and the reason.
absl::Status CheckArtifactPath(const std::string& path);

class Registry {
 public:
  ~Registry();

  // The embedded layout: DIR/registry.db (SQLite) and file://DIR/blobs.
  // DIR is created if missing.
  static absl::StatusOr<std::unique_ptr<Registry>> OpenDir(const std::string& dir, const RegistryOptions& options = {});
  // metadata_uri: sqlite:///PATH or postgresql://USER@HOST:PORT/DB;
  // blob_uri: what BlobStore::Open accepts (file:///PATH, root://...).
  static absl::StatusOr<std::unique_ptr<Registry>> Open(const std::string& metadata_uri, const std::string& blob_uri,
                                                        const RegistryOptions& options = {});
  // With a blob store the caller built (tests, tools).
  static absl::StatusOr<std::unique_ptr<Registry>> OpenWithBlobStore(const std::string& metadata_uri,
                                                                     std::unique_ptr<BlobStore> blobs,
                                                                     const RegistryOptions& options = {});

  const std::string& metadata_uri() const;
  const std::string& blob_uri() const;

  // Models and versions.
  absl::StatusOr<ModelInfo> CreateModel(const std::string& name, const std::string& description = "");
  absl::StatusOr<std::vector<ModelInfo>> ListModels();
  absl::StatusOr<ModelInfo> GetModel(const std::string& name);
  absl::StatusOr<std::vector<ModelVersion>> ListVersions(const std::string& model);
  // Stores `files` (the first .onnx one gives the signature; it must import)
  // and publishes the next version number of `model`.
  absl::StatusOr<ModelVersion> PushModelVersion(const std::string& model, const std::vector<std::string>& files,
                                                const PushOptions& options = {});
  absl::StatusOr<ModelVersion> GetVersion(const std::string& model, int64_t version);
  // "MODEL@VERSION", "MODEL@ALIAS", "MODEL@tag:TAG:RUN" (or MODEL alone: the latest).
  absl::StatusOr<ModelVersion> ResolveRef(const std::string& ref);
  // Writes the version's files: to `dest` itself when the version has one
  // file and `dest` is not a directory, else into the directory `dest`.
  // Returns the paths written.
  absl::StatusOr<std::vector<std::string>> Pull(const std::string& ref, const std::string& dest);

  // Aliases.
  absl::Status SetAlias(const std::string& model, const std::string& alias, int64_t version);
  absl::Status RemoveAlias(const std::string& model, const std::string& alias);
  absl::StatusOr<ModelVersion> GetAlias(const std::string& model, const std::string& alias);
  absl::StatusOr<std::vector<AliasMove>> AliasHistory(const std::string& model, const std::string& alias = "");

  // Validity intervals.
  absl::Status AddInterval(const std::string& tag, const std::string& model, int64_t version,
                           const IntervalSpec& range);
  absl::StatusOr<std::vector<Interval>> ListIntervals(const std::string& tag);
  absl::StatusOr<Interval> Resolve(const std::string& tag, int64_t run);
  // The interval of `tag` whose time range covers `unix_seconds` (intervals
  // without a time range are not considered).
  absl::StatusOr<Interval> ResolveTime(const std::string& tag, int64_t unix_seconds);
  absl::Status CreateGlobalTag(const std::string& name, const std::string& description = "");
  absl::Status AddToGlobalTag(const std::string& global_tag, const std::string& tag, const std::string& record = "");
  absl::StatusOr<std::vector<GlobalTagEntry>> ListGlobalTag(const std::string& global_tag);
  absl::StatusOr<Interval> Resolve(const std::string& global_tag, const std::string& record, int64_t run);

  // Datasets.
  absl::StatusOr<DatasetVersion> AddDatasetVersion(const std::string& dataset, const std::vector<std::string>& files,
                                                   const DatasetOptions& options = {});
  absl::StatusOr<DatasetVersion> GetDatasetVersion(const std::string& dataset, int64_t version);
  absl::StatusOr<std::vector<DatasetVersion>> ListDatasetVersions(const std::string& dataset);

  // Runs.
  absl::StatusOr<int64_t> StartRun(const RunStart& start);
  absl::Status LogParam(int64_t run, const std::string& key, const std::string& value);
  absl::Status LogMetric(int64_t run, const std::string& key, double value, int64_t step);
  // Stores the file at `path` with the run under `name` (a relative path
  // such as "plots/roc.png"; "" = the file's own name). Artifact names have
  // no "..", "." or empty segments and do not start with '/'
  // (InvalidArgument naming the path); a name is stored once per run
  // (AlreadyExists), and only while the run is running (FailedPrecondition).
  absl::StatusOr<FileEntry> LogArtifact(int64_t run, const std::string& path, const std::string& name = "");
  // The same with the artifact's bytes in memory (an upload).
  absl::StatusOr<FileEntry> LogArtifactBytes(int64_t run, const std::string& name, const std::string& bytes);
  // Writes artifact `name` of `run` to the file `dest` (NotFound when the
  // run has no such artifact).
  absl::StatusOr<FileEntry> GetArtifact(int64_t run, const std::string& name, const std::string& dest);
  absl::Status EndRun(int64_t run, const RunEnd& end);
  absl::StatusOr<RunInfo> GetRun(int64_t run);
  // Logs the whole batch in one transaction, or nothing: a parameter logged
  // again with the same value is accepted (another value: AlreadyExists), a
  // metric at a step it already has is AlreadyExists, params and metrics
  // need a running run (FailedPrecondition), tags do not.
  absl::Status LogBatch(int64_t run, const RunBatch& batch);
  // Tags annotate a run at any time, also after it ended (unlike params and
  // metrics); setting a key again replaces its value.
  absl::Status SetRunTag(int64_t run, const std::string& key, const std::string& value);
  // Removes a run's tag (NotFound when the run has no such tag); like
  // SetRunTag, also after the run ended.
  absl::Status DeleteRunTag(int64_t run, const std::string& key);
  // The runs of the given experiments (0: runs of no experiment), newest
  // first, at most `max_results`; deleted runs only as `view` asks.
  absl::StatusOr<std::vector<RunInfo>> SearchRuns(const std::vector<int64_t>& experiment_ids, int64_t max_results,
                                                  LifecycleView view = LifecycleView::kActiveOnly);
  // Marks a run deleted (its record, lineage and artifacts stay; GetRun
  // still returns it, with `deleted`) or active again. A deleted run takes
  // no params, metrics, tags or artifacts and cannot end (FailedPrecondition);
  // deleting a deleted run or restoring an active one is FailedPrecondition.
  absl::Status DeleteRun(int64_t run);
  absl::Status RestoreRun(int64_t run);

  // Experiments: named groups of runs.
  absl::StatusOr<Experiment> CreateExperiment(const std::string& name);
  absl::StatusOr<Experiment> GetExperiment(int64_t id);
  absl::StatusOr<Experiment> GetExperimentByName(const std::string& name);
  absl::StatusOr<std::vector<Experiment>> ListExperiments();
  // Renames an experiment (AlreadyExists when another has the name); its
  // id and runs stay.
  absl::Status RenameExperiment(int64_t id, const std::string& new_name);
  // Marks an experiment and its active runs deleted (the name stays taken,
  // as in MLflow; no run can start in it: FailedPrecondition), or restores
  // it with the runs its deletion marked.
  absl::Status DeleteExperiment(int64_t id);
  absl::Status RestoreExperiment(int64_t id);
  // Sets or replaces an experiment's tag (also while it is deleted).
  absl::Status SetExperimentTag(int64_t id, const std::string& key, const std::string& value);

  // Model and version annotations (what MLflow's registry lets change; a
  // version's files, signature, params, metrics and lineage never change).
  absl::Status UpdateModelDescription(const std::string& model, const std::string& description);
  // Renames a model: its versions, aliases and validity intervals follow
  // (they refer to it by id); AlreadyExists when the name is taken.
  absl::Status RenameModel(const std::string& model, const std::string& new_name);
  // Removes a model that has no version yet; a model with versions is
  // FailedPrecondition (published versions are kept).
  absl::Status DeleteModel(const std::string& model);
  // Moves a version to stage None, Staging, Production or Archived
  // (case-insensitive; anything else InvalidArgument). With
  // `archive_existing` (only for Staging and Production), the model's other
  // versions in that stage move to Archived in the same transaction.
  absl::StatusOr<ModelVersion> SetVersionStage(const std::string& model, int64_t version, const std::string& stage,
                                               bool archive_existing = false);
  absl::Status UpdateVersionDescription(const std::string& model, int64_t version, const std::string& description);
  absl::Status SetVersionTag(const std::string& model, int64_t version, const std::string& key,
                             const std::string& value);
  // NotFound when the version has no such tag.
  absl::Status DeleteVersionTag(const std::string& model, int64_t version, const std::string& key);

  // Lineage, walked transitively (breadth-first, every node once): upstream
  // of a model version (its run, the run's input datasets and models, the
  // runs that produced those, ...), or downstream of a dataset version (the
  // runs that read it, the models and datasets they made, the runs that read
  // those, ...).
  absl::StatusOr<Lineage> Upstream(const std::string& model, int64_t version, const LineageOptions& options = {});
  absl::StatusOr<Lineage> Downstream(const std::string& dataset, int64_t version,
                                     const LineageOptions& options = {});
  // Downstream of a model version (the runs that used it, the model and
  // dataset versions those runs produced, the runs that used those, ...)
  // or of a run (what it produced, and on from there). Every downstream
  // walk also lists the aliases and IOV tags pointing at each model version
  // it reaches (leaves, one edge further). NotFound for an unknown start.
  absl::StatusOr<Lineage> DownstreamOfModel(const std::string& model, int64_t version,
                                            const LineageOptions& options = {});
  absl::StatusOr<Lineage> DownstreamOfRun(int64_t run, const LineageOptions& options = {});

  // Events and hooks.
  absl::StatusOr<std::vector<Event>> Events(int64_t after_id = 0);
  absl::StatusOr<Hook> AddHook(const std::string& event_kind, const std::string& command_or_url);
  absl::StatusOr<std::vector<Hook>> ListHooks();
  // Failures of the hooks fired by the last write on this Registry.
  std::vector<HookFailure> last_hook_failures() const;

  // Blob store checks against what the metadata references.
  absl::StatusOr<FsckResult> Fsck();
  absl::StatusOr<GcResult> Gc(int64_t grace_seconds = 3600);

 private:
  Registry();
  static absl::StatusOr<std::unique_ptr<Registry>> OpenImpl(const std::string& metadata_uri,
                                                            std::unique_ptr<BlobStore> blobs,
                                                            const std::string& blob_uri,
                                                            const RegistryOptions& options);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_H_
