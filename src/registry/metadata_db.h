// The SQL connection under the registry's metadata store: one interface, two
// backends (SQLite embedded, PostgreSQL through libpq), so the store's SQL is
// written once. Statements use `?` placeholders (rewritten to $1.. for
// PostgreSQL) and always take their values as parameters, never spliced into
// the text.
//
// Thread safety: a MetadataDb is one connection; callers serialize access.
#ifndef HEPML_REGISTRY_METADATA_DB_H_
#define HEPML_REGISTRY_METADATA_DB_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hepml::registry {

// One bound parameter: NULL, an integer, a double or text.
using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string>;

// One result row: each column as text (SQL NULL is nullopt).
struct SqlRow {
  std::vector<std::optional<std::string>> cols;
  bool IsNull(size_t i) const { return !cols[i].has_value(); }
  const std::string& Text(size_t i) const;  // "" for NULL
  int64_t Int(size_t i) const;              // 0 for NULL
  double Double(size_t i) const;            // 0 for NULL
  std::optional<int64_t> OptInt(size_t i) const;
};

enum class SqlDialect { kSqlite, kPostgres };

class MetadataDb {
 public:
  virtual ~MetadataDb() = default;

  // `uri`: sqlite:///ABS/PATH (the file is created if missing) or
  // postgresql://USER@HOST:PORT/DB (also postgres://). Errors name the URI.
  static absl::StatusOr<std::unique_ptr<MetadataDb>> Open(const std::string& uri);

  virtual SqlDialect dialect() const = 0;
  // The URI opened, with any password replaced by *** (safe to print).
  virtual const std::string& uri() const = 0;

  // Runs one statement; rows are returned for SELECT and ... RETURNING.
  // A unique-constraint violation is AlreadyExists; other failures are
  // Internal/Unavailable with the database's message.
  virtual absl::StatusOr<std::vector<SqlRow>> Query(const std::string& sql,
                                                    const std::vector<SqlValue>& params = {}) = 0;
  absl::Status Exec(const std::string& sql, const std::vector<SqlValue>& params = {}) {
    return Query(sql, params).status();
  }

  // A write transaction. SQLite takes the write lock at BEGIN (BEGIN
  // IMMEDIATE) so concurrent writers queue on the busy timeout instead of
  // failing at commit; PostgreSQL runs READ COMMITTED and the store locks the
  // rows it counts on (UPDATE ... RETURNING).
  virtual absl::Status Begin() = 0;
  virtual absl::Status Commit() = 0;
  virtual void Rollback() = 0;

  // Serializes schema migrations between processes (PostgreSQL: a
  // transaction-scoped advisory lock; SQLite: the write lock of Begin()).
  virtual absl::Status LockForMigration() = 0;

  // Whether `table` exists.
  virtual absl::StatusOr<bool> HasTable(const std::string& table) = 0;
};

// `uri` with any password replaced by *** (for messages and uri()).
std::string RedactPassword(const std::string& uri);

absl::StatusOr<std::unique_ptr<MetadataDb>> OpenSqliteDb(const std::string& path, const std::string& uri);
absl::StatusOr<std::unique_ptr<MetadataDb>> OpenPostgresDb(const std::string& conninfo, const std::string& uri);

// Runs `fn` inside Begin()/Commit(), rolling back when it (or the commit)
// fails.
template <typename Fn>
absl::Status InTransaction(MetadataDb& db, Fn&& fn) {
  if (absl::Status s = db.Begin(); !s.ok()) return s;
  absl::Status s = fn();
  if (!s.ok()) {
    db.Rollback();
    return s;
  }
  s = db.Commit();
  if (!s.ok()) db.Rollback();
  return s;
}

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_METADATA_DB_H_
