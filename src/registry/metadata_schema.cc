#include "registry/metadata_schema.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace hepml::registry {

const std::vector<Migration>& SchemaMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "models, versions, aliases, validity intervals, global tags, datasets, runs, events, hooks",
       {
           "CREATE TABLE models (id @ID@, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,"
           " created_at BIGINT NOT NULL, created_by TEXT NOT NULL, next_version BIGINT NOT NULL)",
           "CREATE TABLE runs (id @ID@, name TEXT NOT NULL, status TEXT NOT NULL, host TEXT NOT NULL,"
           " code_version TEXT NOT NULL, created_by TEXT NOT NULL, start_at BIGINT NOT NULL, end_at BIGINT,"
           " cpu_seconds DOUBLE PRECISION, gpu_seconds DOUBLE PRECISION, peak_memory_bytes BIGINT)",
           "CREATE TABLE datasets (id @ID@, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,"
           " created_at BIGINT NOT NULL, next_version BIGINT NOT NULL)",
           "CREATE TABLE dataset_versions (id @ID@, dataset_id BIGINT NOT NULL REFERENCES datasets(id),"
           " version BIGINT NOT NULL, schema_json TEXT NOT NULL, entries BIGINT, stats_json TEXT NOT NULL,"
           " created_at BIGINT NOT NULL, created_by TEXT NOT NULL, UNIQUE (dataset_id, version))",
           "CREATE TABLE dataset_files (dataset_version_id BIGINT NOT NULL REFERENCES dataset_versions(id),"
           " name TEXT NOT NULL, sha256 TEXT NOT NULL, size BIGINT NOT NULL, manifest_id TEXT NOT NULL,"
           " PRIMARY KEY (dataset_version_id, name))",
           "CREATE TABLE model_versions (id @ID@, model_id BIGINT NOT NULL REFERENCES models(id),"
           " version BIGINT NOT NULL, inputs_json TEXT NOT NULL, outputs_json TEXT NOT NULL,"
           " params_json TEXT NOT NULL, metrics_json TEXT NOT NULL, tags_json TEXT NOT NULL,"
           " source_run_id BIGINT REFERENCES runs(id), code_version TEXT NOT NULL,"
           " created_at BIGINT NOT NULL, created_by TEXT NOT NULL, UNIQUE (model_id, version))",
           "CREATE TABLE model_files (version_id BIGINT NOT NULL REFERENCES model_versions(id), name TEXT NOT NULL,"
           " sha256 TEXT NOT NULL, size BIGINT NOT NULL, manifest_id TEXT NOT NULL, PRIMARY KEY (version_id, name))",
           "CREATE TABLE model_version_datasets (version_id BIGINT NOT NULL REFERENCES model_versions(id),"
           " dataset_version_id BIGINT NOT NULL REFERENCES dataset_versions(id),"
           " PRIMARY KEY (version_id, dataset_version_id))",
           "CREATE TABLE aliases (model_id BIGINT NOT NULL REFERENCES models(id), alias TEXT NOT NULL,"
           " version_id BIGINT NOT NULL REFERENCES model_versions(id), updated_at BIGINT NOT NULL,"
           " updated_by TEXT NOT NULL, PRIMARY KEY (model_id, alias))",
           "CREATE TABLE alias_history (id @ID@, model_id BIGINT NOT NULL REFERENCES models(id), alias TEXT NOT NULL,"
           " from_version BIGINT, to_version BIGINT, moved_at BIGINT NOT NULL, moved_by TEXT NOT NULL)",
           "CREATE INDEX alias_history_by_alias ON alias_history (model_id, alias, id)",
           "CREATE TABLE iov_tags (id @ID@, name TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL)",
           "CREATE TABLE iovs (id @ID@, tag_id BIGINT NOT NULL REFERENCES iov_tags(id), first_run BIGINT NOT NULL,"
           " last_run BIGINT NOT NULL, first_time BIGINT, last_time BIGINT,"
           " version_id BIGINT NOT NULL REFERENCES model_versions(id), created_at BIGINT NOT NULL,"
           " created_by TEXT NOT NULL)",
           "CREATE UNIQUE INDEX iovs_by_tag_first_run ON iovs (tag_id, first_run)",
           "CREATE TABLE global_tags (id @ID@, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,"
           " created_at BIGINT NOT NULL)",
           "CREATE TABLE global_tag_entries (global_tag_id BIGINT NOT NULL REFERENCES global_tags(id),"
           " record TEXT NOT NULL, tag_id BIGINT NOT NULL REFERENCES iov_tags(id), PRIMARY KEY (global_tag_id, record))",
           "CREATE TABLE run_params (run_id BIGINT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,"
           " value TEXT NOT NULL, PRIMARY KEY (run_id, key))",
           "CREATE TABLE run_metrics (run_id BIGINT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,"
           " step BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL, logged_at BIGINT NOT NULL,"
           " PRIMARY KEY (run_id, key, step))",
           "CREATE TABLE run_inputs (run_id BIGINT NOT NULL REFERENCES runs(id),"
           " dataset_version_id BIGINT NOT NULL REFERENCES dataset_versions(id), PRIMARY KEY (run_id, dataset_version_id))",
           "CREATE TABLE run_artifacts (run_id BIGINT NOT NULL REFERENCES runs(id), name TEXT NOT NULL,"
           " sha256 TEXT NOT NULL, size BIGINT NOT NULL, manifest_id TEXT NOT NULL, PRIMARY KEY (run_id, name))",
           "CREATE INDEX model_versions_by_run ON model_versions (source_run_id)",
           "CREATE INDEX run_inputs_by_dataset ON run_inputs (dataset_version_id)",
           "CREATE INDEX model_version_datasets_by_dataset ON model_version_datasets (dataset_version_id)",
           "CREATE TABLE events (id @ID@, kind TEXT NOT NULL, payload_json TEXT NOT NULL, created_at BIGINT NOT NULL)",
           "CREATE TABLE hooks (id @ID@, event_kind TEXT NOT NULL, command TEXT NOT NULL, url TEXT NOT NULL,"
           " created_at BIGINT NOT NULL)",
       }},
      {2,
       "validity intervals by time: index on (tag, first_time)",
       {
           "CREATE INDEX iovs_by_tag_first_time ON iovs (tag_id, first_time)",
       }},
      {3,
       "experiments (named groups of runs) and run tags, for the MLflow-compatible REST API",
       {
           "CREATE TABLE experiments (id @ID@, name TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL,"
           " created_by TEXT NOT NULL)",
           // No REFERENCES: SQLite cannot drop such a column again, and the
           // store checks the experiment exists when a run names one.
           "ALTER TABLE runs ADD COLUMN experiment_id BIGINT",
           "CREATE INDEX runs_by_experiment ON runs (experiment_id, start_at)",
           "CREATE TABLE run_tags (run_id BIGINT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,"
           " value TEXT NOT NULL, PRIMARY KEY (run_id, key))",
       }},
      {4,
       "lineage beyond one level: dataset versions made by runs, runs reading model versions",
       {
           // No REFERENCES, as in migration 3; the store checks the run exists.
           "ALTER TABLE dataset_versions ADD COLUMN source_run_id BIGINT",
           "CREATE INDEX dataset_versions_by_run ON dataset_versions (source_run_id)",
           "CREATE TABLE run_model_inputs (run_id BIGINT NOT NULL REFERENCES runs(id),"
           " version_id BIGINT NOT NULL REFERENCES model_versions(id), PRIMARY KEY (run_id, version_id))",
           "CREATE INDEX run_model_inputs_by_version ON run_model_inputs (version_id)",
       }},
      {5,
       "MLflow lifecycle: deleted runs and experiments, experiment tags, model-version stages and descriptions",
       {
           // NULL: active; else when it was deleted (Unix ms).
           "ALTER TABLE runs ADD COLUMN deleted_at BIGINT",
           "ALTER TABLE experiments ADD COLUMN deleted_at BIGINT",
           "ALTER TABLE experiments ADD COLUMN updated_at BIGINT",
           "CREATE TABLE experiment_tags (experiment_id BIGINT NOT NULL REFERENCES experiments(id),"
           " key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (experiment_id, key))",
           "ALTER TABLE model_versions ADD COLUMN stage TEXT NOT NULL DEFAULT 'None'",
           "ALTER TABLE model_versions ADD COLUMN description TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE model_versions ADD COLUMN updated_at BIGINT",
           "CREATE INDEX model_versions_by_stage ON model_versions (model_id, stage)",
       }},
  };
  return kMigrations;
}

int LatestSchemaVersion() { return SchemaMigrations().back().version; }

absl::StatusOr<int> SchemaVersion(MetadataDb& db) {
  auto has = db.HasTable("schema_version");
  if (!has.ok()) return has.status();
  if (!*has) return 0;
  auto rows = db.Query("SELECT max(version) FROM schema_version");
  if (!rows.ok()) return rows.status();
  if (rows->empty() || (*rows)[0].IsNull(0)) return 0;
  return static_cast<int>((*rows)[0].Int(0));
}

absl::Status MigrateSchema(MetadataDb& db, int up_to) {
  const int target = up_to < 0 ? LatestSchemaVersion() : std::min(up_to, LatestSchemaVersion());
  const std::string id_type =
      db.dialect() == SqlDialect::kSqlite ? "INTEGER PRIMARY KEY" : "BIGSERIAL PRIMARY KEY";
  // Cheap check first: most opens find the schema current.
  auto current = SchemaVersion(db);
  if (!current.ok()) return current.status();
  if (*current == target) return absl::OkStatus();
  if (*current > LatestSchemaVersion()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "metadata database ", db.uri(), " has schema version ", *current, ", newer than this hepml understands (",
        LatestSchemaVersion(), "); use a newer hepml"));
  }
  for (const Migration& m : SchemaMigrations()) {
    if (m.version > target) break;
    absl::Status s = InTransaction(db, [&]() -> absl::Status {
      if (absl::Status l = db.LockForMigration(); !l.ok()) return l;
      if (absl::Status c = db.Exec("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY,"
                                   " description TEXT NOT NULL, applied_at BIGINT NOT NULL)");
          !c.ok()) {
        return c;
      }
      auto now = SchemaVersion(db);  // again, under the lock
      if (!now.ok()) return now.status();
      if (*now >= m.version) return absl::OkStatus();
      if (*now != m.version - 1) {
        return absl::FailedPreconditionError(
            absl::StrCat("metadata database ", db.uri(), " is at schema version ", *now, ", cannot apply ", m.version));
      }
      for (const std::string& stmt : m.statements) {
        if (absl::Status e = db.Exec(absl::StrReplaceAll(stmt, {{"@ID@", id_type}})); !e.ok()) {
          return absl::InternalError(absl::StrCat("schema migration ", m.version, " (", m.description,
                                                  ") failed: ", e.message()));
        }
      }
      return db.Exec("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                     {int64_t{m.version}, std::string(m.description), int64_t{0}});
    });
    if (!s.ok()) return s;
  }
  auto after = SchemaVersion(db);
  if (!after.ok()) return after.status();
  if (*after > LatestSchemaVersion()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "metadata database ", db.uri(), " has schema version ", *after, ", newer than this hepml understands (",
        LatestSchemaVersion(), "); use a newer hepml"));
  }
  return absl::OkStatus();
}

}  // namespace hepml::registry
