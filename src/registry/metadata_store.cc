#include "registry/metadata_store.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "hepml/status.h"
#include "nlohmann/json.hpp"
#include "registry/metadata_schema.h"

namespace hepml::registry {
namespace {

using nlohmann::json;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// An optional value as a parameter (NULL when absent). The variant is built
// by emplace, not a conditional expression, which keeps g++ 12's
// -Wmaybe-uninitialized quiet.
template <typename T>
SqlValue Opt(const std::optional<T>& v) {
  SqlValue out;
  if (v) out.template emplace<T>(*v);
  else out.template emplace<std::nullptr_t>(nullptr);
  return out;
}


std::string SignatureJson(const std::vector<TensorSignature>& sig) {
  json j = json::array();
  for (const auto& s : sig) j.push_back({{"name", s.name}, {"type", s.type}});
  return j.dump();
}

std::vector<TensorSignature> ParseSignature(const std::string& text) {
  std::vector<TensorSignature> out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& e : j) out.push_back({e.value("name", ""), e.value("type", "")});
  return out;
}

template <typename Map>
std::string MapJson(const Map& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j.dump();
}

std::map<std::string, std::string> ParseStringMap(const std::string& text) {
  std::map<std::string, std::string> out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
  return out;
}

std::map<std::string, double> ParseDoubleMap(const std::string& text) {
  std::map<std::string, double> out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.value().is_number()) out[it.key()] = it.value().get<double>();
  return out;
}

const std::set<std::string>& EventKinds() {
  static const std::set<std::string> kKinds = {"model_version.created", "alias.moved", "dataset_version.created"};
  return kKinds;
}

}  // namespace

absl::Status CheckName(const std::string& what, const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " name is empty"));
  if (name.size() > 128) return absl::InvalidArgumentError(absl::StrCat(what, " name '", name, "' is longer than 128"));
  for (char c : name) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) {
      return absl::InvalidArgumentError(absl::StrCat(what, " name '", name, "' has '", std::string(1, c),
                                                     "': use letters, digits, '_', '.', '-'"));
    }
  }
  if (name[0] == '.' || name[0] == '-') {
    return absl::InvalidArgumentError(absl::StrCat(what, " name '", name, "' may not start with '", name.substr(0, 1), "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MetadataStore>> MetadataStore::Open(const std::string& uri, const std::string& user) {
  HEPML_ASSIGN_OR_RETURN(std::unique_ptr<MetadataDb> db, MetadataDb::Open(uri));
  HEPML_RETURN_IF_ERROR(MigrateSchema(*db));
  return std::unique_ptr<MetadataStore>(new MetadataStore(std::move(db), user));
}

template <typename Fn>
absl::Status MetadataStore::Write(Fn&& fn) {
  pending_events_.clear();
  absl::Status s = InTransaction(*db_, std::forward<Fn>(fn));
  if (s.ok()) {
    for (auto& e : pending_events_) committed_events_.push_back(std::move(e));
  }
  pending_events_.clear();
  return s;
}

absl::Status MetadataStore::RecordEvent(const std::string& kind, const std::string& payload_json) {
  Event e;
  e.kind = kind;
  e.payload_json = payload_json;
  e.created_at_ms = NowMs();
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("INSERT INTO events (kind, payload_json, created_at) VALUES (?, ?, ?)"
                                               " RETURNING id",
                                               {kind, payload_json, e.created_at_ms}));
  e.id = rows.at(0).Int(0);
  pending_events_.push_back(std::move(e));
  return absl::OkStatus();
}

std::vector<Event> MetadataStore::TakeCommittedEvents() { return std::exchange(committed_events_, {}); }

// ---------------------------------------------------------------------------
// Models and versions

absl::StatusOr<int64_t> MetadataStore::ModelId(const std::string& name) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT id FROM models WHERE name = ?", {name}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
  return rows[0].Int(0);
}

absl::StatusOr<int64_t> MetadataStore::LockModel(const std::string& name) {
  HEPML_ASSIGN_OR_RETURN(auto rows,
                         db_->Query("UPDATE models SET next_version = next_version WHERE name = ? RETURNING id", {name}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
  return rows[0].Int(0);
}

absl::StatusOr<int64_t> MetadataStore::VersionId(int64_t model_id, const std::string& model, int64_t version) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT id FROM model_versions WHERE model_id = ? AND version = ?",
                                               {model_id, version}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("model '", model, "' has no version ", version));
  return rows[0].Int(0);
}

absl::StatusOr<ModelInfo> MetadataStore::CreateModel(const std::string& name, const std::string& description) {
  HEPML_RETURN_IF_ERROR(CheckName("model", name));
  ModelInfo info;
  absl::Status s = Write([&]() -> absl::Status {
    info.name = name;
    info.description = description;
    info.created_at_ms = NowMs();
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("INSERT INTO models (name, description, created_at, created_by,"
                                                 " next_version) VALUES (?, ?, ?, ?, 1) RETURNING id",
                                                 {name, description, info.created_at_ms, user_}));
    info.id = rows.at(0).Int(0);
    return absl::OkStatus();
  });
  if (absl::IsAlreadyExists(s)) return absl::AlreadyExistsError(absl::StrCat("model '", name, "' already exists"));
  if (!s.ok()) return s;
  return info;
}

static const char* kModelColumns = "id, name, description, created_at, next_version - 1";

static ModelInfo ModelFromRow(const SqlRow& r) {
  ModelInfo m;
  m.id = r.Int(0);
  m.name = r.Text(1);
  m.description = r.Text(2);
  m.created_at_ms = r.Int(3);
  m.latest_version = r.Int(4);
  return m;
}

absl::StatusOr<std::vector<ModelInfo>> MetadataStore::ListModels() {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat("SELECT ", kModelColumns, " FROM models ORDER BY name")));
  std::vector<ModelInfo> out;
  for (const auto& r : rows) out.push_back(ModelFromRow(r));
  return out;
}

absl::StatusOr<ModelInfo> MetadataStore::GetModel(const std::string& name) {
  HEPML_ASSIGN_OR_RETURN(auto rows,
                         db_->Query(absl::StrCat("SELECT ", kModelColumns, " FROM models WHERE name = ?"), {name}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
  return ModelFromRow(rows[0]);
}

absl::StatusOr<int64_t> MetadataStore::DatasetVersionId(const DatasetVersionRef& ref) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT dv.id FROM dataset_versions dv JOIN datasets d ON d.id ="
                                               " dv.dataset_id WHERE d.name = ? AND dv.version = ?",
                                               {ref.dataset, ref.version}));
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat("unknown dataset version '", ref.dataset, "@", ref.version, "'"));
  }
  return rows[0].Int(0);
}

absl::StatusOr<ModelVersion> MetadataStore::PublishVersion(const std::string& model, const NewModelVersion& v) {
  if (v.files.empty()) return absl::InvalidArgumentError("a model version needs at least one file");
  std::set<std::string> names;
  for (const auto& f : v.files) {
    if (!names.insert(f.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("two files of the version are named '", f.name, "'"));
    }
  }
  int64_t version_id = 0, version = 0;
  absl::Status s = Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("UPDATE models SET next_version = next_version + 1 WHERE name = ?"
                                                 " RETURNING id, next_version - 1",
                                                 {model}));
    if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown model '", model, "'"));
    int64_t model_id = rows[0].Int(0);
    version = rows[0].Int(1);
    if (v.expected_version && *v.expected_version != version) {
      if (*v.expected_version < version && *v.expected_version >= 1) {
        return absl::AlreadyExistsError(absl::StrCat("model '", model, "' version ", *v.expected_version,
                                                     " is already published; published versions are immutable"
                                                     " (the next version is ",
                                                     version, ")"));
      }
      return absl::InvalidArgumentError(absl::StrCat("model '", model, "' cannot publish version ",
                                                     *v.expected_version, ": versions are numbered in order, the next is ",
                                                     version));
    }
    std::vector<int64_t> dataset_ids;
    for (const auto& d : v.options.datasets) {
      HEPML_ASSIGN_OR_RETURN(int64_t id, DatasetVersionId(d));
      dataset_ids.push_back(id);
    }
    if (v.options.source_run) HEPML_RETURN_IF_ERROR(RunStatus(*v.options.source_run).status());
    SqlValue run = Opt(v.options.source_run);
    HEPML_ASSIGN_OR_RETURN(
        auto ins, db_->Query("INSERT INTO model_versions (model_id, version, inputs_json, outputs_json, params_json,"
                             " metrics_json, tags_json, source_run_id, code_version, created_at, created_by)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                             {model_id, version, SignatureJson(v.inputs), SignatureJson(v.outputs),
                              MapJson(v.options.params), MapJson(v.options.metrics), MapJson(v.options.tags), run,
                              v.options.code_version, NowMs(), user_}));
    version_id = ins.at(0).Int(0);
    for (const auto& f : v.files) {
      HEPML_RETURN_IF_ERROR(db_->Exec("INSERT INTO model_files (version_id, name, sha256, size, manifest_id)"
                                      " VALUES (?, ?, ?, ?, ?)",
                                      {version_id, f.name, f.sha256, static_cast<int64_t>(f.size), f.manifest_id}));
    }
    for (int64_t id : dataset_ids) {
      HEPML_RETURN_IF_ERROR(db_->Exec(
          "INSERT INTO model_version_datasets (version_id, dataset_version_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
          {version_id, id}));
    }
    json payload = {{"model", model}, {"version", version}, {"version_id", version_id}, {"user", user_}};
    json files = json::array();
    for (const auto& f : v.files) files.push_back({{"name", f.name}, {"sha256", f.sha256}, {"size", f.size}});
    payload["files"] = files;
    return RecordEvent("model_version.created", payload.dump());
  });
  if (!s.ok()) return s;
  return GetVersion(model, version);
}

absl::StatusOr<std::vector<FileEntry>> MetadataStore::Files(const std::string& table, const std::string& key_column,
                                                            int64_t id) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat("SELECT name, sha256, size, manifest_id FROM ", table,
                                                            " WHERE ", key_column, " = ? ORDER BY name"),
                                               {id}));
  std::vector<FileEntry> out;
  for (const auto& r : rows) out.push_back({r.Text(0), r.Text(1), static_cast<uint64_t>(r.Int(2)), r.Text(3)});
  return out;
}

static const char* kVersionColumns =
    "v.id, m.name, v.version, v.inputs_json, v.outputs_json, v.params_json, v.metrics_json, v.tags_json,"
    " v.source_run_id, v.code_version, v.created_at, v.created_by, v.model_id, v.stage, v.description, v.updated_at";

absl::StatusOr<ModelVersion> MetadataStore::LoadVersion(const SqlRow& r) {
  ModelVersion v;
  v.id = r.Int(0);
  v.model = r.Text(1);
  v.version = r.Int(2);
  v.inputs = ParseSignature(r.Text(3));
  v.outputs = ParseSignature(r.Text(4));
  v.params = ParseStringMap(r.Text(5));
  v.metrics = ParseDoubleMap(r.Text(6));
  v.tags = ParseStringMap(r.Text(7));
  v.source_run = r.OptInt(8);
  v.code_version = r.Text(9);
  v.created_at_ms = r.Int(10);
  v.created_by = r.Text(11);
  v.stage = r.Text(13);
  v.description = r.Text(14);
  v.updated_at_ms = r.OptInt(15).value_or(v.created_at_ms);
  HEPML_ASSIGN_OR_RETURN(v.files, Files("model_files", "version_id", v.id));
  HEPML_ASSIGN_OR_RETURN(auto ds, db_->Query("SELECT d.name, dv.version FROM model_version_datasets x JOIN"
                                             " dataset_versions dv ON dv.id = x.dataset_version_id JOIN datasets d ON"
                                             " d.id = dv.dataset_id WHERE x.version_id = ? ORDER BY d.name, dv.version",
                                             {v.id}));
  for (const auto& d : ds) v.datasets.push_back({d.Text(0), d.Int(1)});
  HEPML_ASSIGN_OR_RETURN(auto al, db_->Query("SELECT alias FROM aliases WHERE version_id = ? ORDER BY alias", {v.id}));
  for (const auto& a : al) v.aliases.push_back(a.Text(0));
  return v;
}

absl::StatusOr<ModelVersion> MetadataStore::GetVersion(const std::string& model, int64_t version) {
  HEPML_ASSIGN_OR_RETURN(int64_t model_id, ModelId(model));
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat("SELECT ", kVersionColumns,
                                                            " FROM model_versions v JOIN models m ON m.id = v.model_id"
                                                            " WHERE v.model_id = ? AND v.version = ?"),
                                               {model_id, version}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("model '", model, "' has no version ", version));
  return LoadVersion(rows[0]);
}

absl::StatusOr<std::vector<ModelVersion>> MetadataStore::ListVersions(const std::string& model) {
  HEPML_ASSIGN_OR_RETURN(int64_t model_id, ModelId(model));
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat("SELECT ", kVersionColumns,
                                                            " FROM model_versions v JOIN models m ON m.id = v.model_id"
                                                            " WHERE v.model_id = ? ORDER BY v.version"),
                                               {model_id}));
  std::vector<ModelVersion> out;
  for (const auto& r : rows) {
    HEPML_ASSIGN_OR_RETURN(ModelVersion v, LoadVersion(r));
    out.push_back(std::move(v));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Aliases

static absl::Status CheckAlias(const std::string& alias) {
  HEPML_RETURN_IF_ERROR(CheckName("alias", alias));
  if (std::all_of(alias.begin(), alias.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return absl::InvalidArgumentError(
        absl::StrCat("alias name '", alias, "' is all digits (MODEL@", alias, " means version ", alias, ")"));
  }
  if (absl::StartsWith(alias, "tag")) {
    // "tag:..." never reaches here (':' is refused); plain "tag" is fine.
  }
  return absl::OkStatus();
}

absl::Status MetadataStore::SetAlias(const std::string& model, const std::string& alias, int64_t version) {
  HEPML_RETURN_IF_ERROR(CheckAlias(alias));
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(int64_t model_id, LockModel(model));
    HEPML_ASSIGN_OR_RETURN(int64_t version_id, VersionId(model_id, model, version));
    HEPML_ASSIGN_OR_RETURN(auto cur, db_->Query("SELECT v.version FROM aliases a JOIN model_versions v ON v.id ="
                                                " a.version_id WHERE a.model_id = ? AND a.alias = ?",
                                                {model_id, alias}));
    std::optional<int64_t> from;
    if (!cur.empty()) from = cur[0].Int(0);
    if (from == version) return absl::OkStatus();
    int64_t now = NowMs();
    HEPML_RETURN_IF_ERROR(db_->Exec(
        "INSERT INTO aliases (model_id, alias, version_id, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (model_id, alias) DO UPDATE SET version_id = excluded.version_id,"
        " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        {model_id, alias, version_id, now, user_}));
    HEPML_RETURN_IF_ERROR(db_->Exec("INSERT INTO alias_history (model_id, alias, from_version, to_version, moved_at,"
                                    " moved_by) VALUES (?, ?, ?, ?, ?, ?)",
                                    {model_id, alias, Opt(from), version, now, user_}));
    json payload = {{"model", model}, {"alias", alias}, {"to", version}, {"user", user_}};
    payload["from"] = from ? json(*from) : json(nullptr);
    return RecordEvent("alias.moved", payload.dump());
  });
}

absl::Status MetadataStore::RemoveAlias(const std::string& model, const std::string& alias) {
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(int64_t model_id, LockModel(model));
    HEPML_ASSIGN_OR_RETURN(auto cur, db_->Query("SELECT v.version FROM aliases a JOIN model_versions v ON v.id ="
                                                " a.version_id WHERE a.model_id = ? AND a.alias = ?",
                                                {model_id, alias}));
    if (cur.empty()) return absl::NotFoundError(absl::StrCat("model '", model, "' has no alias '", alias, "'"));
    int64_t from = cur[0].Int(0);
    HEPML_RETURN_IF_ERROR(db_->Exec("DELETE FROM aliases WHERE model_id = ? AND alias = ?", {model_id, alias}));
    HEPML_RETURN_IF_ERROR(db_->Exec("INSERT INTO alias_history (model_id, alias, from_version, to_version, moved_at,"
                                    " moved_by) VALUES (?, ?, ?, NULL, ?, ?)",
                                    {model_id, alias, from, NowMs(), user_}));
    json payload = {{"model", model}, {"alias", alias}, {"from", from}, {"to", nullptr}, {"user", user_}};
    return RecordEvent("alias.moved", payload.dump());
  });
}

absl::StatusOr<int64_t> MetadataStore::AliasVersion(const std::string& model, const std::string& alias) {
  HEPML_ASSIGN_OR_RETURN(int64_t model_id, ModelId(model));
  HEPML_ASSIGN_OR_RETURN(auto cur, db_->Query("SELECT v.version FROM aliases a JOIN model_versions v ON v.id ="
                                              " a.version_id WHERE a.model_id = ? AND a.alias = ?",
                                              {model_id, alias}));
  if (cur.empty()) return absl::NotFoundError(absl::StrCat("model '", model, "' has no alias '", alias, "'"));
  return cur[0].Int(0);
}

absl::StatusOr<std::vector<AliasMove>> MetadataStore::AliasHistory(const std::string& model, const std::string& alias) {
  HEPML_ASSIGN_OR_RETURN(int64_t model_id, ModelId(model));
  std::string sql = "SELECT alias, from_version, to_version, moved_by, moved_at FROM alias_history WHERE model_id = ?";
  std::vector<SqlValue> params = {model_id};
  if (!alias.empty()) {
    sql += " AND alias = ?";
    params.push_back(alias);
  }
  sql += " ORDER BY id";
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(sql, params));
  std::vector<AliasMove> out;
  for (const auto& r : rows) {
    out.push_back({model, r.Text(0), r.OptInt(1), r.OptInt(2), r.Text(3), r.Int(4)});
  }
  return out;
}

// ---------------------------------------------------------------------------
// Validity intervals and global tags

static const char* kIntervalSelect =
    "SELECT t.name, i.first_run, i.last_run, i.first_time, i.last_time, m.name, v.version, v.id"
    " FROM iov_tags t JOIN iovs i ON i.tag_id = t.id JOIN model_versions v ON v.id = i.version_id"
    " JOIN models m ON m.id = v.model_id";

static Interval IntervalFromRow(const SqlRow& r) {
  Interval iv;
  iv.tag = r.Text(0);
  iv.range.first_run = r.Int(1);
  iv.range.last_run = r.Int(2);
  iv.range.first_time = r.OptInt(3);
  iv.range.last_time = r.OptInt(4);
  iv.model = r.Text(5);
  iv.version = r.Int(6);
  iv.version_id = r.Int(7);
  return iv;
}

absl::Status MetadataStore::AddInterval(const std::string& tag, const std::string& model, int64_t version,
                                        const IntervalSpec& range) {
  HEPML_RETURN_IF_ERROR(CheckName("IOV tag", tag));
  if (range.first_run > range.last_run) {
    return absl::InvalidArgumentError(
        absl::StrCat("interval runs ", range.first_run, "-", range.last_run, ": the first run is after the last"));
  }
  if (range.first_time.has_value() != range.last_time.has_value()) {
    return absl::InvalidArgumentError("an interval's time range needs both its first and last time");
  }
  if (range.first_time && *range.first_time > *range.last_time) {
    return absl::InvalidArgumentError(absl::StrCat("interval times ", *range.first_time, "-", *range.last_time,
                                                   ": the first time is after the last"));
  }
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(int64_t model_id, ModelId(model));
    HEPML_ASSIGN_OR_RETURN(int64_t version_id, VersionId(model_id, model, version));
    int64_t now = NowMs();
    // Creates the tag or locks its row (PostgreSQL), so two writers never
    // both pass the overlap check below.
    HEPML_ASSIGN_OR_RETURN(auto tag_rows,
                           db_->Query("INSERT INTO iov_tags (name, created_at, updated_at) VALUES (?, ?, ?)"
                                      " ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at RETURNING id",
                                      {tag, now, now}));
    int64_t tag_id = tag_rows.at(0).Int(0);
    // Intervals of a tag never overlap, so sorted by first run their last
    // runs are sorted too: only the last one starting at or before the new
    // interval's end can overlap it.
    HEPML_ASSIGN_OR_RETURN(
        auto prev, db_->Query(absl::StrCat(kIntervalSelect,
                                           " WHERE i.tag_id = ? AND i.first_run <= ? ORDER BY i.tag_id DESC, i.first_run DESC LIMIT 1"),
                              {tag_id, range.last_run}));
    if (!prev.empty() && prev[0].Int(2) >= range.first_run) {
      Interval other = IntervalFromRow(prev[0]);
      return absl::FailedPreconditionError(absl::StrCat(
          "interval runs ", range.first_run, "-", range.last_run, " overlaps runs ", other.range.first_run, "-",
          other.range.last_run, " of tag '", tag, "' (", other.model, "@", other.version,
          "); intervals of one tag may not overlap"));
    }
    if (range.first_time) {
      // Time ranges of one tag may not overlap either (same argument).
      HEPML_ASSIGN_OR_RETURN(
          auto prev_t, db_->Query(absl::StrCat(kIntervalSelect,
                                               " WHERE i.tag_id = ? AND i.first_time IS NOT NULL AND i.first_time <= ?"
                                               " ORDER BY i.tag_id DESC, i.first_time DESC LIMIT 1"),
                                  {tag_id, *range.last_time}));
      if (!prev_t.empty() && prev_t[0].Int(4) >= *range.first_time) {
        Interval other = IntervalFromRow(prev_t[0]);
        return absl::FailedPreconditionError(absl::StrCat(
            "interval times ", *range.first_time, "-", *range.last_time, " overlap times ", *other.range.first_time,
            "-", *other.range.last_time, " of tag '", tag, "' (", other.model, "@", other.version,
            ", runs ", other.range.first_run, "-", other.range.last_run, "); intervals of one tag may not overlap"));
      }
    }
    SqlValue ft = Opt(range.first_time);
    SqlValue lt = Opt(range.last_time);
    return db_->Exec("INSERT INTO iovs (tag_id, first_run, last_run, first_time, last_time, version_id, created_at,"
                     " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     {tag_id, range.first_run, range.last_run, ft, lt, version_id, now, user_});
  });
}

absl::StatusOr<std::vector<Interval>> MetadataStore::ListIntervals(const std::string& tag) {
  HEPML_ASSIGN_OR_RETURN(auto t, db_->Query("SELECT id FROM iov_tags WHERE name = ?", {tag}));
  if (t.empty()) return absl::NotFoundError(absl::StrCat("unknown IOV tag '", tag, "'"));
  HEPML_ASSIGN_OR_RETURN(auto rows,
                         db_->Query(absl::StrCat(kIntervalSelect, " WHERE i.tag_id = ? ORDER BY i.first_run"),
                                    {t[0].Int(0)}));
  std::vector<Interval> out;
  for (const auto& r : rows) out.push_back(IntervalFromRow(r));
  return out;
}

// The tag id comes from a scalar subquery and the ORDER BY names both index
// columns, so both planners walk the (tag_id, first_run) index backwards and
// stop at the first row; with a join on the tag's name instead, PostgreSQL
// sorts every earlier interval of the tag (O(intervals) per call).
absl::StatusOr<Interval> MetadataStore::Resolve(const std::string& tag, int64_t run) {
  auto cached = iov_cache_.find(tag);
  if (cached != iov_cache_.end()) {
    const auto& by_first = cached->second.by_first_run;
    auto it = by_first.upper_bound(run);
    if (it != by_first.begin() && std::prev(it)->second.range.last_run >= run) return std::prev(it)->second;
  } else if (iov_cached_ < kIovCacheLimit) {
    // First use of the tag: all its intervals in one query.
    absl::StatusOr<std::vector<Interval>> all = ListIntervals(tag);
    if (absl::IsNotFound(all.status())) return all.status();
    if (all.ok() && iov_cached_ + all->size() <= kIovCacheLimit) {
      IovCache& c = iov_cache_[tag];
      for (Interval& iv : *all) c.by_first_run.emplace(iv.range.first_run, std::move(iv));
      iov_cached_ += c.by_first_run.size();
      auto it = c.by_first_run.upper_bound(run);
      if (it != c.by_first_run.begin() && std::prev(it)->second.range.last_run >= run) return std::prev(it)->second;
    }
  }
  absl::StatusOr<Interval> found = ResolveUncached(tag, run);
  if (found.ok()) {
    auto c = iov_cache_.find(tag);
    if (c != iov_cache_.end() && iov_cached_ < kIovCacheLimit &&
        c->second.by_first_run.emplace(found->range.first_run, *found).second) {
      ++iov_cached_;
    }
  }
  return found;
}

absl::StatusOr<Interval> MetadataStore::ResolveUncached(const std::string& tag, int64_t run) {
  HEPML_ASSIGN_OR_RETURN(
      auto rows, db_->Query(absl::StrCat(kIntervalSelect,
                                         " WHERE i.tag_id = (SELECT id FROM iov_tags WHERE name = ?) AND i.first_run"
                                         " <= ? ORDER BY i.tag_id DESC, i.first_run DESC LIMIT 1"),
                            {tag, run}));
  if (!rows.empty() && rows[0].Int(2) >= run) return IntervalFromRow(rows[0]);
  HEPML_ASSIGN_OR_RETURN(auto t, db_->Query("SELECT id FROM iov_tags WHERE name = ?", {tag}));
  if (t.empty()) return absl::NotFoundError(absl::StrCat("unknown IOV tag '", tag, "'"));
  return absl::NotFoundError(absl::StrCat("no interval of tag '", tag, "' covers run ", run));
}

absl::StatusOr<Interval> MetadataStore::ResolveTime(const std::string& tag, int64_t unix_seconds) {
  HEPML_ASSIGN_OR_RETURN(
      auto rows, db_->Query(absl::StrCat(kIntervalSelect,
                                         " WHERE i.tag_id = (SELECT id FROM iov_tags WHERE name = ?) AND i.first_time"
                                         " IS NOT NULL AND i.first_time <= ? ORDER BY i.tag_id DESC, i.first_time DESC"
                                         " LIMIT 1"),
                            {tag, unix_seconds}));
  if (!rows.empty() && rows[0].Int(4) >= unix_seconds) return IntervalFromRow(rows[0]);
  HEPML_ASSIGN_OR_RETURN(auto t, db_->Query("SELECT id FROM iov_tags WHERE name = ?", {tag}));
  if (t.empty()) return absl::NotFoundError(absl::StrCat("unknown IOV tag '", tag, "'"));
  return absl::NotFoundError(absl::StrCat("no interval of tag '", tag, "' covers time ", unix_seconds));
}

absl::Status MetadataStore::CreateGlobalTag(const std::string& name, const std::string& description) {
  HEPML_RETURN_IF_ERROR(CheckName("global tag", name));
  absl::Status s = Write([&]() -> absl::Status {
    return db_->Exec("INSERT INTO global_tags (name, description, created_at) VALUES (?, ?, ?)",
                     {name, description, NowMs()});
  });
  if (absl::IsAlreadyExists(s)) return absl::AlreadyExistsError(absl::StrCat("global tag '", name, "' already exists"));
  return s;
}

absl::Status MetadataStore::AddToGlobalTag(const std::string& global_tag, const std::string& tag,
                                           const std::string& record_in) {
  std::string record = record_in.empty() ? tag : record_in;
  HEPML_RETURN_IF_ERROR(CheckName("record", record));
  absl::Status s = Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(auto g, db_->Query("SELECT id FROM global_tags WHERE name = ?", {global_tag}));
    if (g.empty()) return absl::NotFoundError(absl::StrCat("unknown global tag '", global_tag, "'"));
    HEPML_ASSIGN_OR_RETURN(auto t, db_->Query("SELECT id FROM iov_tags WHERE name = ?", {tag}));
    if (t.empty()) return absl::NotFoundError(absl::StrCat("unknown IOV tag '", tag, "'"));
    return db_->Exec("INSERT INTO global_tag_entries (global_tag_id, record, tag_id) VALUES (?, ?, ?)",
                     {g[0].Int(0), record, t[0].Int(0)});
  });
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(
        absl::StrCat("global tag '", global_tag, "' already pins record '", record, "'; a global tag's entries are fixed"));
  }
  return s;
}

absl::StatusOr<std::vector<GlobalTagEntry>> MetadataStore::ListGlobalTag(const std::string& global_tag) {
  HEPML_ASSIGN_OR_RETURN(auto g, db_->Query("SELECT id FROM global_tags WHERE name = ?", {global_tag}));
  if (g.empty()) return absl::NotFoundError(absl::StrCat("unknown global tag '", global_tag, "'"));
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT e.record, t.name FROM global_tag_entries e JOIN iov_tags t ON"
                                               " t.id = e.tag_id WHERE e.global_tag_id = ? ORDER BY e.record",
                                               {g[0].Int(0)}));
  std::vector<GlobalTagEntry> out;
  for (const auto& r : rows) out.push_back({r.Text(0), r.Text(1)});
  return out;
}

absl::StatusOr<Interval> MetadataStore::ResolveGlobal(const std::string& global_tag, const std::string& record,
                                                      int64_t run) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT t.name FROM global_tags g JOIN global_tag_entries e ON"
                                               " e.global_tag_id = g.id JOIN iov_tags t ON t.id = e.tag_id"
                                               " WHERE g.name = ? AND e.record = ?",
                                               {global_tag, record}));
  if (rows.empty()) {
    HEPML_ASSIGN_OR_RETURN(auto g, db_->Query("SELECT id FROM global_tags WHERE name = ?", {global_tag}));
    if (g.empty()) return absl::NotFoundError(absl::StrCat("unknown global tag '", global_tag, "'"));
    return absl::NotFoundError(absl::StrCat("global tag '", global_tag, "' has no record '", record, "'"));
  }
  return Resolve(rows[0].Text(0), run);
}

// ---------------------------------------------------------------------------
// Datasets

static const char* kDatasetVersionColumns =
    "dv.id, d.name, dv.version, dv.schema_json, dv.entries, dv.stats_json, dv.created_by, dv.created_at,"
    " dv.source_run_id";

absl::StatusOr<DatasetVersion> MetadataStore::LoadDatasetVersion(const SqlRow& r) {
  DatasetVersion v;
  v.id = r.Int(0);
  v.dataset = r.Text(1);
  v.version = r.Int(2);
  v.schema_json = r.Text(3);
  v.entries = r.OptInt(4);
  v.stats_json = r.Text(5);
  v.created_by = r.Text(6);
  v.created_at_ms = r.Int(7);
  v.source_run = r.OptInt(8);
  HEPML_ASSIGN_OR_RETURN(v.files, Files("dataset_files", "dataset_version_id", v.id));
  return v;
}

absl::StatusOr<DatasetVersion> MetadataStore::AddDatasetVersion(const std::string& dataset,
                                                                const std::vector<FileEntry>& files,
                                                                const DatasetOptions& options) {
  HEPML_RETURN_IF_ERROR(CheckName("dataset", dataset));
  if (files.empty()) return absl::InvalidArgumentError("a dataset version needs at least one file");
  for (const auto* text : {&options.schema_json, &options.stats_json}) {
    if (!text->empty() && json::parse(*text, nullptr, false).is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat("dataset ", text == &options.schema_json ? "schema" : "statistics",
                                                     " is not valid JSON: ", text->substr(0, 80)));
    }
  }
  if (options.entries && *options.entries < 0) return absl::InvalidArgumentError("dataset entries must be >= 0");
  std::set<std::string> names;
  for (const auto& f : files) {
    if (!names.insert(f.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("two files of the dataset version are named '", f.name, "'"));
    }
  }
  int64_t version = 0;
  absl::Status s = Write([&]() -> absl::Status {
    int64_t now = NowMs();
    if (options.source_run) HEPML_RETURN_IF_ERROR(RunStatus(*options.source_run).status());
    HEPML_RETURN_IF_ERROR(db_->Exec("INSERT INTO datasets (name, description, created_at, next_version)"
                                    " VALUES (?, ?, ?, 1) ON CONFLICT (name) DO NOTHING",
                                    {dataset, options.description, now}));
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("UPDATE datasets SET next_version = next_version + 1 WHERE name = ?"
                                                 " RETURNING id, next_version - 1",
                                                 {dataset}));
    int64_t dataset_id = rows.at(0).Int(0);
    version = rows[0].Int(1);
    SqlValue entries = Opt(options.entries);
    HEPML_ASSIGN_OR_RETURN(auto ins, db_->Query("INSERT INTO dataset_versions (dataset_id, version, schema_json,"
                                                " entries, stats_json, created_at, created_by, source_run_id) VALUES"
                                                " (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                                                {dataset_id, version, options.schema_json, entries, options.stats_json,
                                                 now, user_, Opt(options.source_run)}));
    int64_t id = ins.at(0).Int(0);
    for (const auto& f : files) {
      HEPML_RETURN_IF_ERROR(db_->Exec("INSERT INTO dataset_files (dataset_version_id, name, sha256, size,"
                                      " manifest_id) VALUES (?, ?, ?, ?, ?)",
                                      {id, f.name, f.sha256, static_cast<int64_t>(f.size), f.manifest_id}));
    }
    json payload = {{"dataset", dataset}, {"version", version}, {"files", files.size()}, {"user", user_}};
    if (options.source_run) payload["source_run"] = *options.source_run;
    return RecordEvent("dataset_version.created", payload.dump());
  });
  if (!s.ok()) return s;
  return GetDatasetVersion(dataset, version);
}

absl::StatusOr<DatasetVersion> MetadataStore::GetDatasetVersion(const std::string& dataset, int64_t version) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat("SELECT ", kDatasetVersionColumns,
                                                            " FROM dataset_versions dv JOIN datasets d ON d.id ="
                                                            " dv.dataset_id WHERE d.name = ? AND dv.version = ?"),
                                               {dataset, version}));
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat("unknown dataset version '", dataset, "@", version, "'"));
  }
  return LoadDatasetVersion(rows[0]);
}

absl::StatusOr<std::vector<DatasetVersion>> MetadataStore::ListDatasetVersions(const std::string& dataset) {
  HEPML_ASSIGN_OR_RETURN(auto d, db_->Query("SELECT id FROM datasets WHERE name = ?", {dataset}));
  if (d.empty()) return absl::NotFoundError(absl::StrCat("unknown dataset '", dataset, "'"));
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat("SELECT ", kDatasetVersionColumns,
                                                            " FROM dataset_versions dv JOIN datasets d ON d.id ="
                                                            " dv.dataset_id WHERE d.id = ? ORDER BY dv.version"),
                                               {d[0].Int(0)}));
  std::vector<DatasetVersion> out;
  for (const auto& r : rows) {
    HEPML_ASSIGN_OR_RETURN(DatasetVersion v, LoadDatasetVersion(r));
    out.push_back(std::move(v));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Runs

absl::StatusOr<std::string> MetadataStore::RunStatus(int64_t run) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT status FROM runs WHERE id = ?", {run}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown run ", run));
  return rows[0].Text(0);
}

absl::StatusOr<std::string> MetadataStore::WritableRunStatus(int64_t run) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT status, deleted_at FROM runs WHERE id = ?", {run}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown run ", run));
  if (!rows[0].IsNull(1)) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run, " is deleted; restore it before changing it"));
  }
  return rows[0].Text(0);
}

static absl::Status CheckRunning(int64_t run, const std::string& status) {
  if (status != "running") {
    return absl::FailedPreconditionError(absl::StrCat("run ", run, " has ended (", status, "); its record is closed"));
  }
  return absl::OkStatus();
}

// SQLite stores NaN as NULL, so NaN is refused on both backends alike.
static absl::Status CheckMetricValue(const std::string& key, double value) {
  if (std::isnan(value)) {
    return absl::InvalidArgumentError(absl::StrCat("metric '", key, "': NaN cannot be stored (infinities can)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MetadataStore::StartRun(const RunStart& start, const std::string& host) {
  int64_t id = 0;
  absl::Status s = Write([&]() -> absl::Status {
    std::vector<int64_t> inputs, model_inputs;
    for (const auto& d : start.inputs) {
      HEPML_ASSIGN_OR_RETURN(int64_t dv, DatasetVersionId(d));
      inputs.push_back(dv);
    }
    for (const auto& m : start.model_inputs) {
      HEPML_ASSIGN_OR_RETURN(int64_t model_id, ModelId(m.model));
      HEPML_ASSIGN_OR_RETURN(int64_t mv, VersionId(model_id, m.model, m.version));
      model_inputs.push_back(mv);
    }
    if (start.experiment_id) {
      HEPML_ASSIGN_OR_RETURN(Experiment e, GetExperiment(*start.experiment_id));
      if (e.deleted) {
        return absl::FailedPreconditionError(absl::StrCat("experiment ", e.id, " ('", e.name,
                                                          "') is deleted; restore it before starting runs in it"));
      }
    }
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("INSERT INTO runs (name, status, host, code_version, created_by,"
                                                 " start_at, experiment_id) VALUES (?, 'running', ?, ?, ?, ?, ?)"
                                                 " RETURNING id",
                                                 {start.name, host, start.code_version, user_,
                                                  start.start_ms.value_or(NowMs()),
                                                  Opt(start.experiment_id)}));
    id = rows.at(0).Int(0);
    for (const auto& [k, v] : start.params) {
      HEPML_RETURN_IF_ERROR(db_->Exec("INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?)", {id, k, v}));
    }
    for (int64_t dv : inputs) {
      HEPML_RETURN_IF_ERROR(db_->Exec(
          "INSERT INTO run_inputs (run_id, dataset_version_id) VALUES (?, ?) ON CONFLICT DO NOTHING", {id, dv}));
    }
    for (int64_t mv : model_inputs) {
      HEPML_RETURN_IF_ERROR(db_->Exec(
          "INSERT INTO run_model_inputs (run_id, version_id) VALUES (?, ?) ON CONFLICT DO NOTHING", {id, mv}));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return id;
}

absl::Status MetadataStore::LogParam(int64_t run, const std::string& key, const std::string& value) {
  if (key.empty()) return absl::InvalidArgumentError("parameter name is empty");
  absl::Status s = Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(std::string status, WritableRunStatus(run));
    HEPML_RETURN_IF_ERROR(CheckRunning(run, status));
    return db_->Exec("INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?)", {run, key, value});
  });
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(absl::StrCat("run ", run, " already has parameter '", key, "'"));
  }
  return s;
}

absl::Status MetadataStore::LogMetric(int64_t run, const std::string& key, double value, int64_t step) {
  if (key.empty()) return absl::InvalidArgumentError("metric name is empty");
  HEPML_RETURN_IF_ERROR(CheckMetricValue(key, value));
  absl::Status s = Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(std::string status, WritableRunStatus(run));
    HEPML_RETURN_IF_ERROR(CheckRunning(run, status));
    return db_->Exec("INSERT INTO run_metrics (run_id, key, step, value, logged_at) VALUES (?, ?, ?, ?, ?)",
                     {run, key, step, value, NowMs()});
  });
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(absl::StrCat("run ", run, " already has metric '", key, "' at step ", step));
  }
  return s;
}

absl::Status MetadataStore::AddArtifact(int64_t run, const FileEntry& f) {
  absl::Status s = Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(std::string status, WritableRunStatus(run));
    HEPML_RETURN_IF_ERROR(CheckRunning(run, status));
    return db_->Exec("INSERT INTO run_artifacts (run_id, name, sha256, size, manifest_id) VALUES (?, ?, ?, ?, ?)",
                     {run, f.name, f.sha256, static_cast<int64_t>(f.size), f.manifest_id});
  });
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(absl::StrCat("run ", run, " already has an artifact named '", f.name, "'"));
  }
  return s;
}

absl::Status MetadataStore::EndRun(int64_t run, const RunEnd& end) {
  if (end.status != "finished" && end.status != "failed" && end.status != "killed") {
    return absl::InvalidArgumentError(
        absl::StrCat("run status '", end.status, "': expected finished, failed or killed"));
  }
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(std::string status, WritableRunStatus(run));
    HEPML_RETURN_IF_ERROR(CheckRunning(run, status));
    return db_->Exec("UPDATE runs SET status = ?, end_at = ?, cpu_seconds = ?, gpu_seconds = ?,"
                     " peak_memory_bytes = ? WHERE id = ?",
                     {end.status, end.end_ms.value_or(NowMs()), Opt(end.cpu_seconds), Opt(end.gpu_seconds),
                      Opt(end.peak_memory_bytes), run});
  });
}

absl::StatusOr<RunInfo> MetadataStore::GetRun(int64_t run) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT id, name, status, host, code_version, created_by, start_at,"
                                               " end_at, cpu_seconds, gpu_seconds, peak_memory_bytes, experiment_id, deleted_at"
                                               " FROM runs"
                                               " WHERE id = ?",
                                               {run}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown run ", run));
  const SqlRow& r = rows[0];
  RunInfo info;
  info.id = r.Int(0);
  info.name = r.Text(1);
  info.status = r.Text(2);
  info.host = r.Text(3);
  info.code_version = r.Text(4);
  info.created_by = r.Text(5);
  info.start_ms = r.Int(6);
  info.end_ms = r.OptInt(7);
  if (!r.IsNull(8)) info.cpu_seconds = r.Double(8);
  if (!r.IsNull(9)) info.gpu_seconds = r.Double(9);
  info.peak_memory_bytes = r.OptInt(10);
  info.experiment_id = r.OptInt(11);
  info.deleted = !r.IsNull(12);
  HEPML_ASSIGN_OR_RETURN(auto tags, db_->Query("SELECT key, value FROM run_tags WHERE run_id = ? ORDER BY key", {run}));
  for (const auto& t : tags) info.tags[t.Text(0)] = t.Text(1);
  HEPML_ASSIGN_OR_RETURN(auto params, db_->Query("SELECT key, value FROM run_params WHERE run_id = ? ORDER BY key", {run}));
  for (const auto& p : params) info.params[p.Text(0)] = p.Text(1);
  HEPML_ASSIGN_OR_RETURN(auto metrics, db_->Query("SELECT key, step, value, logged_at FROM run_metrics WHERE run_id = ?"
                                                  " ORDER BY key, step",
                                                  {run}));
  for (const auto& m : metrics) info.metrics.push_back({m.Text(0), m.Int(1), m.Double(2), m.Int(3)});
  HEPML_ASSIGN_OR_RETURN(info.artifacts, Files("run_artifacts", "run_id", run));
  HEPML_ASSIGN_OR_RETURN(auto inputs, db_->Query("SELECT d.name, dv.version FROM run_inputs x JOIN dataset_versions dv"
                                                 " ON dv.id = x.dataset_version_id JOIN datasets d ON d.id ="
                                                 " dv.dataset_id WHERE x.run_id = ? ORDER BY d.name, dv.version",
                                                 {run}));
  for (const auto& i : inputs) info.inputs.push_back({i.Text(0), i.Int(1)});
  HEPML_ASSIGN_OR_RETURN(auto models, db_->Query("SELECT m.name, v.version FROM run_model_inputs x JOIN model_versions v"
                                                 " ON v.id = x.version_id JOIN models m ON m.id = v.model_id"
                                                 " WHERE x.run_id = ? ORDER BY m.name, v.version",
                                                 {run}));
  for (const auto& m : models) info.model_inputs.push_back({m.Text(0), m.Int(1)});
  return info;
}

absl::Status MetadataStore::SetRunTag(int64_t run, const std::string& key, const std::string& value) {
  if (key.empty()) return absl::InvalidArgumentError("tag name is empty");
  return Write([&]() -> absl::Status {
    HEPML_RETURN_IF_ERROR(WritableRunStatus(run).status());
    return db_->Exec("INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)"
                     " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                     {run, key, value});
  });
}

absl::Status MetadataStore::DeleteRunTag(int64_t run, const std::string& key) {
  return Write([&]() -> absl::Status {
    HEPML_RETURN_IF_ERROR(WritableRunStatus(run).status());
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT 1 FROM run_tags WHERE run_id = ? AND key = ?", {run, key}));
    if (rows.empty()) return absl::NotFoundError(absl::StrCat("run ", run, " has no tag '", key, "'"));
    return db_->Exec("DELETE FROM run_tags WHERE run_id = ? AND key = ?", {run, key});
  });
}

absl::Status MetadataStore::LogBatch(int64_t run, const RunBatch& b) {
  for (const auto& [k, v] : b.params)
    if (k.empty()) return absl::InvalidArgumentError("parameter name is empty");
  for (const auto& m : b.metrics) {
    if (m.key.empty()) return absl::InvalidArgumentError("metric name is empty");
    HEPML_RETURN_IF_ERROR(CheckMetricValue(m.key, m.value));
  }
  for (const auto& [k, v] : b.tags)
    if (k.empty()) return absl::InvalidArgumentError("tag name is empty");
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(std::string status, WritableRunStatus(run));
    if (!b.params.empty() || !b.metrics.empty()) HEPML_RETURN_IF_ERROR(CheckRunning(run, status));
    // Parameters already there are compared, not inserted: a failed INSERT
    // would abort the whole transaction on PostgreSQL.
    std::map<std::string, std::string> have;
    if (!b.params.empty()) {
      HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT key, value FROM run_params WHERE run_id = ?", {run}));
      for (const auto& r : rows) have[r.Text(0)] = r.Text(1);
    }
    for (const auto& [k, v] : b.params) {
      auto it = have.find(k);
      if (it != have.end()) {
        if (it->second == v) continue;
        return absl::AlreadyExistsError(absl::StrCat("run ", run, " already has parameter '", k, "' = '", it->second,
                                                     "'; parameters cannot change"));
      }
      HEPML_RETURN_IF_ERROR(db_->Exec("INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?)", {run, k, v}));
      have[k] = v;
    }
    const int64_t now = NowMs();
    for (const auto& m : b.metrics) {
      absl::Status e = db_->Exec("INSERT INTO run_metrics (run_id, key, step, value, logged_at) VALUES (?, ?, ?, ?, ?)",
                                 {run, m.key, m.step, m.value, m.time_ms > 0 ? m.time_ms : now});
      if (absl::IsAlreadyExists(e)) {
        return absl::AlreadyExistsError(
            absl::StrCat("run ", run, " already has metric '", m.key, "' at step ", m.step));
      }
      HEPML_RETURN_IF_ERROR(e);
    }
    for (const auto& [k, v] : b.tags) {
      HEPML_RETURN_IF_ERROR(db_->Exec("INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)"
                                      " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                                      {run, k, v}));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<RunInfo>> MetadataStore::SearchRuns(const std::vector<int64_t>& experiment_ids,
                                                               int64_t max_results, LifecycleView view) {
  if (max_results <= 0) return absl::InvalidArgumentError("max_results must be positive");
  std::vector<RunInfo> out;
  if (experiment_ids.empty()) return out;
  std::string where;
  std::vector<SqlValue> args;
  for (int64_t e : experiment_ids) {
    if (!where.empty()) where += " OR ";
    if (e == 0) {
      where += "experiment_id IS NULL";
    } else {
      where += "experiment_id = ?";
      args.push_back(e);
    }
  }
  args.push_back(max_results);
  where = absl::StrCat("(", where, ")");
  if (view == LifecycleView::kActiveOnly) where += " AND deleted_at IS NULL";
  if (view == LifecycleView::kDeletedOnly) where += " AND deleted_at IS NOT NULL";
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat("SELECT id FROM runs WHERE ", where,
                                                            " ORDER BY start_at DESC, id DESC LIMIT ?"),
                                               args));
  for (const auto& r : rows) {
    HEPML_ASSIGN_OR_RETURN(RunInfo info, GetRun(r.Int(0)));
    out.push_back(std::move(info));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Experiments

namespace {
constexpr const char* kExperimentSelect =
    "SELECT id, name, created_by, created_at, updated_at, deleted_at FROM experiments";
Experiment ExperimentFromRow(const SqlRow& r) {
  Experiment e;
  e.id = r.Int(0);
  e.name = r.Text(1);
  e.created_by = r.Text(2);
  e.created_at_ms = r.Int(3);
  e.updated_at_ms = r.OptInt(4).value_or(e.created_at_ms);
  e.deleted = !r.IsNull(5);
  return e;
}
}  // namespace

absl::StatusOr<Experiment> MetadataStore::CreateExperiment(const std::string& name) {
  if (name.empty() || name.size() > 256) {
    return absl::InvalidArgumentError("experiment name must be 1-256 characters");
  }
  Experiment e;
  absl::Status s = Write([&]() -> absl::Status {
    e.name = name;
    e.created_by = user_;
    e.created_at_ms = NowMs();
    e.updated_at_ms = e.created_at_ms;
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("INSERT INTO experiments (name, created_at, created_by)"
                                                 " VALUES (?, ?, ?) RETURNING id",
                                                 {name, e.created_at_ms, user_}));
    e.id = rows.at(0).Int(0);
    return absl::OkStatus();
  });
  if (absl::IsAlreadyExists(s)) {
    auto old = GetExperimentByName(name);
    return absl::AlreadyExistsError(absl::StrCat("experiment '", name, "' already exists",
                                                 old.ok() && old->deleted ? " (deleted; restore it or pick another name)"
                                                                          : ""));
  }
  if (!s.ok()) return s;
  return e;
}

absl::Status MetadataStore::RenameExperiment(int64_t id, const std::string& new_name) {
  if (new_name.empty() || new_name.size() > 256) {
    return absl::InvalidArgumentError("experiment name must be 1-256 characters");
  }
  absl::Status s = Write([&]() -> absl::Status {
    HEPML_RETURN_IF_ERROR(GetExperiment(id).status());
    return db_->Exec("UPDATE experiments SET name = ?, updated_at = ? WHERE id = ?", {new_name, NowMs(), id});
  });
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(absl::StrCat("experiment '", new_name, "' already exists"));
  }
  return s;
}

absl::StatusOr<Experiment> MetadataStore::GetExperiment(int64_t id) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat(kExperimentSelect, " WHERE id = ?"), {id}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown experiment ", id));
  std::vector<Experiment> out = {ExperimentFromRow(rows[0])};
  HEPML_RETURN_IF_ERROR(LoadExperimentTags(out));
  return out[0];
}

absl::StatusOr<Experiment> MetadataStore::GetExperimentByName(const std::string& name) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat(kExperimentSelect, " WHERE name = ?"), {name}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown experiment '", name, "'"));
  std::vector<Experiment> out = {ExperimentFromRow(rows[0])};
  HEPML_RETURN_IF_ERROR(LoadExperimentTags(out));
  return out[0];
}

absl::StatusOr<std::vector<Experiment>> MetadataStore::ListExperiments() {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(absl::StrCat(kExperimentSelect, " ORDER BY id")));
  std::vector<Experiment> out;
  for (const auto& r : rows) out.push_back(ExperimentFromRow(r));
  HEPML_RETURN_IF_ERROR(LoadExperimentTags(out));
  return out;
}

absl::Status MetadataStore::LoadExperimentTags(std::vector<Experiment>& experiments) {
  if (experiments.empty()) return absl::OkStatus();
  std::string sql = "SELECT experiment_id, key, value FROM experiment_tags";
  std::vector<SqlValue> args;
  if (experiments.size() == 1) {
    sql += " WHERE experiment_id = ?";
    args.push_back(experiments[0].id);
  }
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(sql, args));
  std::map<int64_t, Experiment*> by_id;
  for (Experiment& e : experiments) by_id[e.id] = &e;
  for (const auto& r : rows) {
    auto it = by_id.find(r.Int(0));
    if (it != by_id.end()) it->second->tags[r.Text(1)] = r.Text(2);
  }
  return absl::OkStatus();
}

// Deleting an experiment marks its active runs deleted at the same instant;
// restoring it restores the runs deleted at or after that instant (those
// its deletion marked, and any deleted one by one since).
absl::Status MetadataStore::SetExperimentDeleted(int64_t id, bool deleted) {
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT name, deleted_at FROM experiments WHERE id = ?", {id}));
    if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown experiment ", id));
    const bool is_deleted = !rows[0].IsNull(1);
    if (is_deleted == deleted) {
      return absl::FailedPreconditionError(absl::StrCat("experiment ", id, " ('", rows[0].Text(0), "') is ",
                                                        deleted ? "already deleted" : "not deleted"));
    }
    const int64_t now = NowMs();
    if (deleted) {
      HEPML_RETURN_IF_ERROR(
          db_->Exec("UPDATE experiments SET deleted_at = ?, updated_at = ? WHERE id = ?", {now, now, id}));
      return db_->Exec("UPDATE runs SET deleted_at = ? WHERE experiment_id = ? AND deleted_at IS NULL", {now, id});
    }
    const int64_t since = rows[0].Int(1);
    HEPML_RETURN_IF_ERROR(
        db_->Exec("UPDATE experiments SET deleted_at = NULL, updated_at = ? WHERE id = ?", {now, id}));
    return db_->Exec("UPDATE runs SET deleted_at = NULL WHERE experiment_id = ? AND deleted_at >= ?", {id, since});
  });
}

absl::Status MetadataStore::SetExperimentTag(int64_t id, const std::string& key, const std::string& value) {
  if (key.empty()) return absl::InvalidArgumentError("experiment tag name is empty");
  if (key.size() > 250) return absl::InvalidArgumentError(absl::StrCat("experiment tag name '", key, "' is longer than 250"));
  return Write([&]() -> absl::Status {
    HEPML_RETURN_IF_ERROR(GetExperiment(id).status());
    HEPML_RETURN_IF_ERROR(db_->Exec("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)"
                                    " ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                                    {id, key, value}));
    return db_->Exec("UPDATE experiments SET updated_at = ? WHERE id = ?", {NowMs(), id});
  });
}

absl::Status MetadataStore::SetRunDeleted(int64_t run, bool deleted) {
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT deleted_at, experiment_id FROM runs WHERE id = ?", {run}));
    if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown run ", run));
    const bool is_deleted = !rows[0].IsNull(0);
    if (is_deleted == deleted) {
      return absl::FailedPreconditionError(
          absl::StrCat("run ", run, " is ", deleted ? "already deleted" : "not deleted"));
    }
    if (!deleted && !rows[0].IsNull(1)) {
      HEPML_ASSIGN_OR_RETURN(Experiment e, GetExperiment(rows[0].Int(1)));
      if (e.deleted) {
        return absl::FailedPreconditionError(absl::StrCat("run ", run, " is in experiment ", e.id, " ('", e.name,
                                                          "'), which is deleted; restore the experiment first"));
      }
    }
    return db_->Exec("UPDATE runs SET deleted_at = ? WHERE id = ?",
                     {Opt(deleted ? std::optional<int64_t>(NowMs()) : std::nullopt), run});
  });
}

// ---------------------------------------------------------------------------
// Model and version annotations

namespace {
// MLflow's stages, matched case-insensitively, returned as MLflow spells them.
absl::StatusOr<std::string> CanonicalStage(const std::string& stage) {
  static const char* kStages[] = {"None", "Staging", "Production", "Archived"};
  for (const char* s : kStages) {
    if (absl::AsciiStrToLower(stage) == absl::AsciiStrToLower(s)) return std::string(s);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("stage '", stage, "' is not one of None, Staging, Production, Archived"));
}
}  // namespace

absl::Status MetadataStore::UpdateModelDescription(const std::string& model, const std::string& description) {
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(int64_t model_id, LockModel(model));
    return db_->Exec("UPDATE models SET description = ? WHERE id = ?", {description, model_id});
  });
}

absl::Status MetadataStore::RenameModel(const std::string& model, const std::string& new_name) {
  HEPML_RETURN_IF_ERROR(CheckName("model", new_name));
  absl::Status s = Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(int64_t model_id, LockModel(model));
    return db_->Exec("UPDATE models SET name = ? WHERE id = ?", {new_name, model_id});
  });
  if (absl::IsAlreadyExists(s)) return absl::AlreadyExistsError(absl::StrCat("model '", new_name, "' already exists"));
  return s;
}

absl::Status MetadataStore::DeleteModel(const std::string& model) {
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(int64_t model_id, LockModel(model));
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT count(*) FROM model_versions WHERE model_id = ?", {model_id}));
    if (rows.at(0).Int(0) > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model '", model, "' has ", rows[0].Int(0),
          " published version(s); published versions are kept (aliases, validity intervals and lineage point at"
          " them), so the model cannot be deleted; move versions to stage Archived instead"));
    }
    HEPML_RETURN_IF_ERROR(db_->Exec("DELETE FROM alias_history WHERE model_id = ?", {model_id}));
    return db_->Exec("DELETE FROM models WHERE id = ?", {model_id});
  });
}

absl::Status MetadataStore::SetVersionStage(const std::string& model, int64_t version, const std::string& stage,
                                            bool archive_existing) {
  HEPML_ASSIGN_OR_RETURN(std::string canonical, CanonicalStage(stage));
  if (archive_existing && canonical != "Staging" && canonical != "Production") {
    return absl::InvalidArgumentError(absl::StrCat("archive_existing_versions applies to stages Staging and"
                                                   " Production, not '", canonical, "'"));
  }
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(int64_t model_id, LockModel(model));
    HEPML_ASSIGN_OR_RETURN(int64_t version_id, VersionId(model_id, model, version));
    const int64_t now = NowMs();
    if (archive_existing) {
      HEPML_RETURN_IF_ERROR(db_->Exec("UPDATE model_versions SET stage = 'Archived', updated_at = ?"
                                      " WHERE model_id = ? AND stage = ? AND id <> ?",
                                      {now, model_id, canonical, version_id}));
    }
    return db_->Exec("UPDATE model_versions SET stage = ?, updated_at = ? WHERE id = ?", {canonical, now, version_id});
  });
}

absl::Status MetadataStore::UpdateVersionDescription(const std::string& model, int64_t version,
                                                     const std::string& description) {
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(int64_t model_id, LockModel(model));
    HEPML_ASSIGN_OR_RETURN(int64_t version_id, VersionId(model_id, model, version));
    return db_->Exec("UPDATE model_versions SET description = ?, updated_at = ? WHERE id = ?",
                     {description, NowMs(), version_id});
  });
}

absl::Status MetadataStore::SetVersionTag(const std::string& model, int64_t version, const std::string& key,
                                          const std::optional<std::string>& value) {
  if (key.empty()) return absl::InvalidArgumentError("model version tag name is empty");
  return Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(int64_t model_id, LockModel(model));
    HEPML_ASSIGN_OR_RETURN(int64_t version_id, VersionId(model_id, model, version));
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT tags_json FROM model_versions WHERE id = ?", {version_id}));
    std::map<std::string, std::string> tags = ParseStringMap(rows.at(0).Text(0));
    if (value) {
      tags[key] = *value;
    } else if (tags.erase(key) == 0) {
      return absl::NotFoundError(absl::StrCat("model '", model, "' version ", version, " has no tag '", key, "'"));
    }
    return db_->Exec("UPDATE model_versions SET tags_json = ?, updated_at = ? WHERE id = ?",
                     {MapJson(tags), NowMs(), version_id});
  });
}

// ---------------------------------------------------------------------------
// Lineage

enum class LineageNodeKind { kModelVersion, kRun, kDatasetVersion };

namespace {

using NodeKind = LineageNodeKind;

const char* KindName(NodeKind k) {
  switch (k) {
    case NodeKind::kModelVersion:
      return "model_version";
    case NodeKind::kRun:
      return "run";
    case NodeKind::kDatasetVersion:
      return "dataset_version";
  }
  return "";
}

// A node by its row id, so a model and a dataset of the same name and
// version stay two nodes.
struct NodeKey {
  NodeKind kind;
  int64_t id;
  bool operator<(const NodeKey& o) const { return std::tie(kind, id) < std::tie(o.kind, o.id); }
};

}  // namespace

absl::StatusOr<Lineage> MetadataStore::Walk(LineageNodeKind start_kind, int64_t start_id, bool upstream,
                                            const LineageOptions& options) {
  if (options.max_nodes < 1) return absl::InvalidArgumentError("lineage max_nodes must be at least 1");
  // Every kind of edge once: "newer RELATION older", with the query from a
  // newer row to its older ones (upstream) and back (downstream); each
  // returns row ids.
  struct EdgeKind {
    NodeKind newer;
    const char* relation;
    NodeKind older;
    const char* up_sql;
    const char* down_sql;
  };
  static const EdgeKind kEdges[] = {
      {NodeKind::kModelVersion, "produced_by", NodeKind::kRun,
       "SELECT source_run_id FROM model_versions WHERE id = ? AND source_run_id IS NOT NULL",
       "SELECT id FROM model_versions WHERE source_run_id = ? ORDER BY id"},
      {NodeKind::kModelVersion, "trained_on", NodeKind::kDatasetVersion,
       "SELECT dataset_version_id FROM model_version_datasets WHERE version_id = ? ORDER BY dataset_version_id",
       "SELECT version_id FROM model_version_datasets WHERE dataset_version_id = ? ORDER BY version_id"},
      {NodeKind::kRun, "consumed", NodeKind::kDatasetVersion,
       "SELECT dataset_version_id FROM run_inputs WHERE run_id = ? ORDER BY dataset_version_id",
       "SELECT run_id FROM run_inputs WHERE dataset_version_id = ? ORDER BY run_id"},
      {NodeKind::kRun, "consumed", NodeKind::kModelVersion,
       "SELECT version_id FROM run_model_inputs WHERE run_id = ? ORDER BY version_id",
       "SELECT run_id FROM run_model_inputs WHERE version_id = ? ORDER BY run_id"},
      {NodeKind::kDatasetVersion, "produced_by", NodeKind::kRun,
       "SELECT source_run_id FROM dataset_versions WHERE id = ? AND source_run_id IS NOT NULL",
       "SELECT id FROM dataset_versions WHERE source_run_id = ? ORDER BY id"},
  };

  Lineage out;
  std::map<NodeKey, std::string> refs;  // visited nodes and their refs
  // Edges by their nodes' keys: a model and a dataset may share NAME@V.
  std::set<std::tuple<NodeKey, std::string, NodeKey>> edges;
  // MODEL@V, NAME@V or run:ID.
  auto ref_of = [&](const NodeKey& k) -> absl::StatusOr<std::string> {
    if (k.kind == NodeKind::kRun) return absl::StrCat("run:", k.id);
    const char* sql = k.kind == NodeKind::kModelVersion
                          ? "SELECT m.name, v.version FROM model_versions v JOIN models m ON m.id = v.model_id"
                            " WHERE v.id = ?"
                          : "SELECT d.name, dv.version FROM dataset_versions dv JOIN datasets d ON d.id = dv.dataset_id"
                            " WHERE dv.id = ?";
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(sql, {k.id}));
    if (rows.empty()) {
      return absl::DataLossError(absl::StrCat("lineage names ", KindName(k.kind), " row ", k.id, ", which is missing"));
    }
    return absl::StrCat(rows[0].Text(0), "@", rows[0].Int(1));
  };
  // Downstream, what points at a model version: its aliases (MODEL@ALIAS)
  // and the IOV tags with an interval on it. Leaves: nothing is made from a
  // pointer, so the walk does not go on from them.
  auto add_pointers = [&](const NodeKey& version, int depth) -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(auto aliases, db_->Query("SELECT m.name, a.alias FROM aliases a JOIN models m ON"
                                                    " m.id = a.model_id WHERE a.version_id = ? ORDER BY a.alias",
                                                    {version.id}));
    HEPML_ASSIGN_OR_RETURN(auto tags, db_->Query("SELECT DISTINCT t.name FROM iovs i JOIN iov_tags t ON"
                                                 " t.id = i.tag_id WHERE i.version_id = ? ORDER BY t.name",
                                                 {version.id}));
    std::vector<std::pair<const char*, std::string>> pointers;
    for (const auto& r : aliases) pointers.push_back({"alias", absl::StrCat(r.Text(0), "@", r.Text(1))});
    for (const auto& r : tags) pointers.push_back({"iov_tag", r.Text(0)});
    for (const auto& [kind, ref] : pointers) {
      if (static_cast<int64_t>(out.nodes.size()) >= options.max_nodes) {
        out.truncated = true;
        break;
      }
      out.nodes.push_back({kind, ref, depth + 1});
      out.edges.push_back({ref, "points_to", refs[version]});
    }
    return absl::OkStatus();
  };
  std::vector<std::pair<NodeKey, int>> queue;  // BFS: nodes in visiting order, with their depth
  NodeKey start{start_kind, start_id};
  HEPML_ASSIGN_OR_RETURN(std::string start_ref, ref_of(start));
  refs[start] = start_ref;
  out.nodes.push_back({KindName(start_kind), start_ref, 0});
  queue.push_back({start, 0});
  for (size_t head = 0; head < queue.size() && !out.truncated; ++head) {
    auto [here, depth] = queue[head];
    if (options.max_depth >= 0 && depth >= options.max_depth) continue;
    for (const EdgeKind& kind : kEdges) {
      if ((upstream ? kind.newer : kind.older) != here.kind) continue;
      HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query(upstream ? kind.up_sql : kind.down_sql, {here.id}));
      for (const auto& r : rows) {
        NodeKey next{upstream ? kind.older : kind.newer, r.Int(0)};
        if (!refs.count(next)) {
          if (static_cast<int64_t>(out.nodes.size()) >= options.max_nodes) {
            out.truncated = true;
            break;
          }
          HEPML_ASSIGN_OR_RETURN(std::string ref, ref_of(next));
          refs.emplace(next, ref);
          out.nodes.push_back({KindName(next.kind), ref, depth + 1});
          queue.push_back({next, depth + 1});
        }
        // Edges read newer -> older whichever way the walk goes.
        const NodeKey& from = upstream ? here : next;
        const NodeKey& to = upstream ? next : here;
        if (edges.insert({from, kind.relation, to}).second) {
          out.edges.push_back({refs[from], kind.relation, refs[to]});
        }
      }
      if (out.truncated) break;
    }
    if (!upstream && here.kind == NodeKind::kModelVersion && !out.truncated) {
      HEPML_RETURN_IF_ERROR(add_pointers(here, depth));
    }
  }
  return out;
}

absl::StatusOr<Lineage> MetadataStore::Upstream(const std::string& model, int64_t version,
                                                const LineageOptions& options) {
  HEPML_ASSIGN_OR_RETURN(int64_t model_id, ModelId(model));
  HEPML_ASSIGN_OR_RETURN(int64_t id, VersionId(model_id, model, version));
  return Walk(NodeKind::kModelVersion, id, /*upstream=*/true, options);
}

absl::StatusOr<Lineage> MetadataStore::Downstream(const std::string& dataset, int64_t version,
                                                  const LineageOptions& options) {
  HEPML_ASSIGN_OR_RETURN(int64_t id, DatasetVersionId({dataset, version}));
  return Walk(NodeKind::kDatasetVersion, id, /*upstream=*/false, options);
}

absl::StatusOr<Lineage> MetadataStore::DownstreamOfModel(const std::string& model, int64_t version,
                                                         const LineageOptions& options) {
  HEPML_ASSIGN_OR_RETURN(int64_t model_id, ModelId(model));
  HEPML_ASSIGN_OR_RETURN(int64_t id, VersionId(model_id, model, version));
  return Walk(NodeKind::kModelVersion, id, /*upstream=*/false, options);
}

absl::StatusOr<Lineage> MetadataStore::DownstreamOfRun(int64_t run, const LineageOptions& options) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT id FROM runs WHERE id = ?", {run}));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown run ", run));
  return Walk(NodeKind::kRun, run, /*upstream=*/false, options);
}

// ---------------------------------------------------------------------------
// Events, hooks, blob references

absl::StatusOr<std::vector<Event>> MetadataStore::Events(int64_t after_id) {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT id, kind, payload_json, created_at FROM events WHERE id > ?"
                                               " ORDER BY id",
                                               {after_id}));
  std::vector<Event> out;
  for (const auto& r : rows) out.push_back({r.Int(0), r.Text(1), r.Text(2), r.Int(3)});
  return out;
}

absl::StatusOr<Hook> MetadataStore::AddHook(const std::string& event_kind, const std::string& target) {
  if (event_kind != "*" && !EventKinds().count(event_kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hook event '", event_kind, "': expected model_version.created, alias.moved, dataset_version.created or *"));
  }
  if (target.empty()) return absl::InvalidArgumentError("hook command or URL is empty");
  Hook h;
  h.event_kind = event_kind;
  if (absl::StartsWith(target, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat("hook URL '", target, "': only http:// URLs are supported"));
  }
  if (absl::StartsWith(target, "http://")) h.url = target;
  else h.command = target;
  absl::Status s = Write([&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("INSERT INTO hooks (event_kind, command, url, created_at)"
                                                 " VALUES (?, ?, ?, ?) RETURNING id",
                                                 {h.event_kind, h.command, h.url, NowMs()}));
    h.id = rows.at(0).Int(0);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return h;
}

absl::StatusOr<std::vector<Hook>> MetadataStore::ListHooks() {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT id, event_kind, command, url FROM hooks ORDER BY id"));
  std::vector<Hook> out;
  for (const auto& r : rows) out.push_back({r.Int(0), r.Text(1), r.Text(2), r.Text(3)});
  return out;
}

absl::StatusOr<std::vector<std::string>> MetadataStore::ReferencedManifests() {
  HEPML_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT manifest_id FROM model_files UNION SELECT manifest_id FROM"
                                               " dataset_files UNION SELECT manifest_id FROM run_artifacts"));
  std::set<std::string> ids;
  for (const auto& r : rows) ids.insert(r.Text(0));
  return std::vector<std::string>(ids.begin(), ids.end());
}

}  // namespace hepml::registry
