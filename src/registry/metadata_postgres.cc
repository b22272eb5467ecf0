// PostgreSQL backend of MetadataDb (libpq): `?` placeholders become $1..$n,
// every value is sent as a text parameter, and SQLSTATEs map to Status codes.
#include <libpq-fe.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "registry/metadata_db.h"

namespace hepml::registry {
namespace {

// Rewrites ? placeholders to $1, $2, ... (the store's SQL has no ? inside
// string literals).
std::string NumberPlaceholders(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  for (char c : sql) {
    if (c == '?') absl::StrAppend(&out, "$", ++n);
    else out.push_back(c);
  }
  return out;
}

void IgnoreNotice(void*, const char*) {}

class PostgresDb : public MetadataDb {
 public:
  PostgresDb(PGconn* conn, std::string uri) : conn_(conn), uri_(std::move(uri)) {}
  ~PostgresDb() override { PQfinish(conn_); }

  SqlDialect dialect() const override { return SqlDialect::kPostgres; }
  const std::string& uri() const override { return uri_; }

  absl::StatusOr<std::vector<SqlRow>> Query(const std::string& sql, const std::vector<SqlValue>& params) override {
    std::vector<std::string> text(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& v = params[i];
      if (std::holds_alternative<std::nullptr_t>(v)) continue;
      if (auto* n = std::get_if<int64_t>(&v)) text[i] = std::to_string(*n);
      else if (auto* d = std::get_if<double>(&v)) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.17g", *d);
        text[i] = buf;
      }
      else text[i] = std::get<std::string>(v);
      values[i] = text[i].c_str();
    }
    std::string numbered = NumberPlaceholders(sql);
    PGresult* res = PQexecParams(conn_, numbered.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                                 nullptr, nullptr, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      absl::Status s = Error(res);
      PQclear(res);
      return s;
    }
    std::vector<SqlRow> rows;
    int nrows = PQntuples(res), ncols = PQnfields(res);
    rows.reserve(nrows);
    for (int r = 0; r < nrows; ++r) {
      SqlRow row;
      row.cols.reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res, r, c)) row.cols.emplace_back(std::nullopt);
        else row.cols.emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
      }
      rows.push_back(std::move(row));
    }
    PQclear(res);
    return rows;
  }

  absl::Status Error(PGresult* res) {
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string sqlstate = state ? state : "";
    std::string msg = PQerrorMessage(conn_);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    msg = absl::StrCat("metadata database ", uri_, ": ", msg);
    if (PQstatus(conn_) != CONNECTION_OK) return absl::UnavailableError(msg);
    if (sqlstate == "23505") return absl::AlreadyExistsError(msg);
    if (sqlstate.rfind("23", 0) == 0) return absl::FailedPreconditionError(msg);
    if (sqlstate == "40001" || sqlstate == "40P01") return absl::AbortedError(msg);
    return absl::InternalError(msg);
  }

  absl::Status Begin() override { return Exec("BEGIN"); }
  absl::Status Commit() override { return Exec("COMMIT"); }
  void Rollback() override {
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE) Exec("ROLLBACK").IgnoreError();
  }
  absl::Status LockForMigration() override { return Exec("SELECT pg_advisory_xact_lock(7305871)"); }

  absl::StatusOr<bool> HasTable(const std::string& table) override {
    auto rows = Query(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?",
        {table});
    if (!rows.ok()) return rows.status();
    return !rows->empty();
  }

 private:
  PGconn* conn_;
  std::string uri_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetadataDb>> OpenPostgresDb(const std::string& conninfo, const std::string& uri) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("cannot connect to metadata database ", uri, ": ", msg));
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  return std::unique_ptr<MetadataDb>(std::make_unique<PostgresDb>(conn, uri));
}

}  // namespace hepml::registry
