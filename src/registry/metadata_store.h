// The registry's metadata store: models, versions, aliases, validity
// intervals, global tags, datasets, runs, lineage, events and hooks, written
// once in SQL over MetadataDb (SQLite or PostgreSQL).
//
// Every write is one transaction. Numbers handed out per model or dataset
// (versions) come from a counter row updated inside that transaction
// (UPDATE ... SET next_version = next_version + 1 RETURNING), which takes the
// row lock on PostgreSQL and the database write lock on SQLite: concurrent
// pushes get unique, dense numbers, and a rolled-back push gives its number
// back. Events are inserted in the same transaction as the change they
// describe and handed out by TakeCommittedEvents() only after the commit.
//
// Thread safety: none; Registry serializes calls.
#ifndef HEPML_REGISTRY_METADATA_STORE_H_
#define HEPML_REGISTRY_METADATA_STORE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hepml/registry.h"
#include "registry/metadata_db.h"

namespace hepml::registry {

// What a push publishes beyond PushOptions: the stored files and the
// signature read from the ONNX file.
struct NewModelVersion {
  std::vector<FileEntry> files;
  std::vector<TensorSignature> inputs;
  std::vector<TensorSignature> outputs;
  PushOptions options;
  std::optional<int64_t> expected_version;  // refuse unless this is the number handed out
};

// Names of models, aliases, tags, datasets: 1-128 of [A-Za-z0-9_.-], not
// starting with '.' or '-'. Alias names also may not be all digits (MODEL@3
// means version 3).
absl::Status CheckName(const std::string& what, const std::string& name);

enum class LineageNodeKind;  // metadata_store.cc

class MetadataStore {
 public:
  // Opens (and migrates) the database at `uri`; `user` is recorded on writes.
  static absl::StatusOr<std::unique_ptr<MetadataStore>> Open(const std::string& uri, const std::string& user);

  const std::string& uri() const { return db_->uri(); }
  MetadataDb& db() { return *db_; }

  absl::StatusOr<ModelInfo> CreateModel(const std::string& name, const std::string& description);
  absl::StatusOr<std::vector<ModelInfo>> ListModels();
  absl::StatusOr<ModelInfo> GetModel(const std::string& name);
  absl::StatusOr<ModelVersion> PublishVersion(const std::string& model, const NewModelVersion& v);
  absl::StatusOr<ModelVersion> GetVersion(const std::string& model, int64_t version);
  absl::StatusOr<std::vector<ModelVersion>> ListVersions(const std::string& model);

  absl::Status SetAlias(const std::string& model, const std::string& alias, int64_t version);
  absl::Status RemoveAlias(const std::string& model, const std::string& alias);
  absl::StatusOr<int64_t> AliasVersion(const std::string& model, const std::string& alias);
  absl::StatusOr<std::vector<AliasMove>> AliasHistory(const std::string& model, const std::string& alias);

  absl::Status AddInterval(const std::string& tag, const std::string& model, int64_t version,
                           const IntervalSpec& range);
  absl::StatusOr<std::vector<Interval>> ListIntervals(const std::string& tag);
  // The interval of `tag` covering `run`: from this process's cache of the
  // tag's intervals when one covers it, else from the database.
  absl::StatusOr<Interval> Resolve(const std::string& tag, int64_t run);
  absl::StatusOr<Interval> ResolveUncached(const std::string& tag, int64_t run);
  absl::StatusOr<Interval> ResolveTime(const std::string& tag, int64_t unix_seconds);
  absl::Status CreateGlobalTag(const std::string& name, const std::string& description);
  absl::Status AddToGlobalTag(const std::string& global_tag, const std::string& tag, const std::string& record);
  absl::StatusOr<std::vector<GlobalTagEntry>> ListGlobalTag(const std::string& global_tag);
  absl::StatusOr<Interval> ResolveGlobal(const std::string& global_tag, const std::string& record, int64_t run);

  absl::StatusOr<DatasetVersion> AddDatasetVersion(const std::string& dataset, const std::vector<FileEntry>& files,
                                                   const DatasetOptions& options);
  absl::StatusOr<DatasetVersion> GetDatasetVersion(const std::string& dataset, int64_t version);
  absl::StatusOr<std::vector<DatasetVersion>> ListDatasetVersions(const std::string& dataset);

  absl::StatusOr<int64_t> StartRun(const RunStart& start, const std::string& host);
  absl::Status LogParam(int64_t run, const std::string& key, const std::string& value);
  absl::Status LogMetric(int64_t run, const std::string& key, double value, int64_t step);
  absl::Status AddArtifact(int64_t run, const FileEntry& file);
  absl::Status EndRun(int64_t run, const RunEnd& end);
  absl::StatusOr<RunInfo> GetRun(int64_t run);
  absl::Status SetRunTag(int64_t run, const std::string& key, const std::string& value);
  absl::Status DeleteRunTag(int64_t run, const std::string& key);
  absl::Status LogBatch(int64_t run, const RunBatch& batch);
  absl::StatusOr<std::vector<RunInfo>> SearchRuns(const std::vector<int64_t>& experiment_ids, int64_t max_results,
                                                  LifecycleView view);
  absl::Status SetRunDeleted(int64_t run, bool deleted);

  absl::StatusOr<Experiment> CreateExperiment(const std::string& name);
  absl::StatusOr<Experiment> GetExperiment(int64_t id);
  absl::Status RenameExperiment(int64_t id, const std::string& new_name);
  absl::StatusOr<Experiment> GetExperimentByName(const std::string& name);
  absl::StatusOr<std::vector<Experiment>> ListExperiments();
  absl::Status SetExperimentDeleted(int64_t id, bool deleted);
  absl::Status SetExperimentTag(int64_t id, const std::string& key, const std::string& value);

  absl::Status UpdateModelDescription(const std::string& model, const std::string& description);
  absl::Status RenameModel(const std::string& model, const std::string& new_name);
  absl::Status DeleteModel(const std::string& model);
  absl::Status SetVersionStage(const std::string& model, int64_t version, const std::string& stage,
                               bool archive_existing);
  absl::Status UpdateVersionDescription(const std::string& model, int64_t version, const std::string& description);
  // `value` nullopt: remove the tag (NotFound when the version has none).
  absl::Status SetVersionTag(const std::string& model, int64_t version, const std::string& key,
                             const std::optional<std::string>& value);

  // Breadth-first over the lineage tables, each node once, each edge once.
  absl::StatusOr<Lineage> Upstream(const std::string& model, int64_t version, const LineageOptions& options);
  absl::StatusOr<Lineage> Downstream(const std::string& dataset, int64_t version, const LineageOptions& options);
  absl::StatusOr<Lineage> DownstreamOfModel(const std::string& model, int64_t version, const LineageOptions& options);
  absl::StatusOr<Lineage> DownstreamOfRun(int64_t run, const LineageOptions& options);

  absl::StatusOr<std::vector<Event>> Events(int64_t after_id);
  absl::StatusOr<Hook> AddHook(const std::string& event_kind, const std::string& command_or_url);
  absl::StatusOr<std::vector<Hook>> ListHooks();
  // Events recorded by transactions that committed since the last call.
  std::vector<Event> TakeCommittedEvents();

  // Every blob manifest the metadata points at (model files, dataset files,
  // run artifacts), sorted and unique.
  absl::StatusOr<std::vector<std::string>> ReferencedManifests();

 private:
  MetadataStore(std::unique_ptr<MetadataDb> db, std::string user) : db_(std::move(db)), user_(std::move(user)) {}

  template <typename Fn>
  absl::Status Write(Fn&& fn);
  absl::Status RecordEvent(const std::string& kind, const std::string& payload_json);
  absl::StatusOr<int64_t> ModelId(const std::string& name);
  absl::StatusOr<int64_t> LockModel(const std::string& name);
  absl::StatusOr<int64_t> VersionId(int64_t model_id, const std::string& model, int64_t version);
  absl::StatusOr<int64_t> DatasetVersionId(const DatasetVersionRef& ref);
  absl::StatusOr<std::string> RunStatus(int64_t run);
  // RunStatus, and FailedPrecondition when the run is deleted.
  absl::StatusOr<std::string> WritableRunStatus(int64_t run);
  absl::Status LoadExperimentTags(std::vector<Experiment>& experiments);
  absl::StatusOr<ModelVersion> LoadVersion(const SqlRow& row);
  absl::StatusOr<DatasetVersion> LoadDatasetVersion(const SqlRow& row);
  absl::StatusOr<Lineage> Walk(LineageNodeKind start_kind, int64_t start_id, bool upstream,
                               const LineageOptions& options);
  absl::StatusOr<std::vector<FileEntry>> Files(const std::string& table, const std::string& key_column, int64_t id);

  // Validity intervals of a tag as far as this process has seen them, by
  // first run. An interval is never changed or removed once added and the
  // intervals of a tag never overlap, so an interval found here is the
  // answer for every run it covers, whatever was added since; a run no
  // cached interval covers is asked of the database (and its answer kept).
  // A tag's intervals are loaded whole on its first Resolve, so a job
  // resolving run after run pays one query, not one per run.
  struct IovCache {
    std::map<int64_t, Interval> by_first_run;
  };
  std::unordered_map<std::string, IovCache> iov_cache_;
  size_t iov_cached_ = 0;  // intervals held, over all tags
  static constexpr size_t kIovCacheLimit = 500'000;  // ~90 MB at most

  std::unique_ptr<MetadataDb> db_;
  std::string user_;
  std::vector<Event> pending_events_;
  std::vector<Event> committed_events_;
};

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_METADATA_STORE_H_
