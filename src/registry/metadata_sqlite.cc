// SQLite backend of MetadataDb: WAL journal (readers never block the writer),
// a busy timeout so concurrent writers queue instead of failing, foreign
// keys on, and prepared statements cached by their SQL text.
#include <sqlite3.h>

#include <cstdio>
#include <map>

#include "absl/strings/str_cat.h"
#include "registry/metadata_db.h"

namespace hepml::registry {
namespace {

constexpr int kBusyTimeoutMs = 60000;

class SqliteDb : public MetadataDb {
 public:
  SqliteDb(sqlite3* db, std::string path, std::string uri) : db_(db), path_(std::move(path)), uri_(std::move(uri)) {}
  ~SqliteDb() override {
    for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  SqlDialect dialect() const override { return SqlDialect::kSqlite; }
  const std::string& uri() const override { return uri_; }

  absl::Status Error(int rc, const std::string& what) {
    std::string msg = absl::StrCat("metadata database ", path_, ": ", what, ": ", sqlite3_errmsg(db_));
    int primary = rc & 0xff;
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) return absl::AlreadyExistsError(msg);
    if (primary == SQLITE_CONSTRAINT) return absl::FailedPreconditionError(msg);
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return absl::UnavailableError(msg);
    if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) {
      return absl::DataLossError(absl::StrCat("metadata database ", path_, " is not a readable registry database (",
                                              sqlite3_errmsg(db_), ")"));
    }
    return absl::InternalError(msg);
  }

  absl::StatusOr<std::vector<SqlRow>> Query(const std::string& sql, const std::vector<SqlValue>& params) override {
    sqlite3_stmt* stmt = nullptr;
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) {
      stmt = it->second;
    } else {
      int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
      if (rc != SQLITE_OK) return Error(rc, absl::StrCat("preparing '", sql, "'"));
      stmts_.emplace(sql, stmt);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    for (size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i + 1);
      const SqlValue& v = params[i];
      if (std::holds_alternative<std::nullptr_t>(v)) sqlite3_bind_null(stmt, idx);
      else if (auto* n = std::get_if<int64_t>(&v)) sqlite3_bind_int64(stmt, idx, *n);
      else if (auto* d = std::get_if<double>(&v)) sqlite3_bind_double(stmt, idx, *d);
      else {
        const std::string& s = std::get<std::string>(v);
        sqlite3_bind_text(stmt, idx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
      }
    }
    std::vector<SqlRow> rows;
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        absl::Status s = Error(sqlite3_extended_errcode(db_), "query failed");
        sqlite3_reset(stmt);
        return s;
      }
      int n = sqlite3_column_count(stmt);
      SqlRow row;
      row.cols.reserve(n);
      for (int c = 0; c < n; ++c) {
        int type = sqlite3_column_type(stmt, c);
        if (type == SQLITE_NULL) {
          row.cols.emplace_back(std::nullopt);
        } else if (type == SQLITE_FLOAT) {
          // sqlite's own text form keeps 15 digits; doubles need 17.
          char buf[32];
          std::snprintf(buf, sizeof(buf), "%.17g", sqlite3_column_double(stmt, c));
          row.cols.emplace_back(std::string(buf));
        } else {
          const unsigned char* text = sqlite3_column_text(stmt, c);
          int len = sqlite3_column_bytes(stmt, c);
          row.cols.emplace_back(std::string(reinterpret_cast<const char*>(text), len));
        }
      }
      rows.push_back(std::move(row));
    }
    sqlite3_reset(stmt);
    return rows;
  }

  absl::Status Simple(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (err) sqlite3_free(err);
    if (rc != SQLITE_OK) return Error(sqlite3_extended_errcode(db_), sql);
    return absl::OkStatus();
  }

  absl::Status Begin() override { return Simple("BEGIN IMMEDIATE"); }
  absl::Status Commit() override { return Simple("COMMIT"); }
  void Rollback() override {
    if (!sqlite3_get_autocommit(db_)) Simple("ROLLBACK").IgnoreError();
  }
  absl::Status LockForMigration() override { return absl::OkStatus(); }

  absl::StatusOr<bool> HasTable(const std::string& table) override {
    auto rows = Query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", {table});
    if (!rows.ok()) return rows.status();
    return !rows->empty();
  }

  absl::Status Configure() {
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    // Reading the schema first turns a non-database file into a clear error.
    if (auto s = Query("SELECT count(*) FROM sqlite_master", {}); !s.ok()) return s.status();
    if (auto s = Query("PRAGMA journal_mode=WAL", {}); !s.ok()) return s.status();
    if (auto s = Simple("PRAGMA foreign_keys=ON"); !s.ok()) return s;
    return Simple("PRAGMA synchronous=NORMAL");
  }

 private:
  sqlite3* db_;
  std::string path_;
  std::string uri_;
  std::map<std::string, sqlite3_stmt*> stmts_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetadataDb>> OpenSqliteDb(const std::string& path, const std::string& uri) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (db) sqlite3_close_v2(db);
    return absl::UnavailableError(absl::StrCat("cannot open metadata database ", path, ": ", msg));
  }
  auto out = std::make_unique<SqliteDb>(db, path, uri);
  if (absl::Status s = out->Configure(); !s.ok()) return s;
  return std::unique_ptr<MetadataDb>(std::move(out));
}

}  // namespace hepml::registry
