// Versioned schema of the registry's metadata store. Migrations are ordered
// steps of SQL; each is applied in its own transaction together with the
// schema_version row that records it, so a database is always at exactly one
// version. A database newer than this binary knows is refused.
#ifndef HEPML_REGISTRY_METADATA_SCHEMA_H_
#define HEPML_REGISTRY_METADATA_SCHEMA_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "registry/metadata_db.h"

namespace hepml::registry {

struct Migration {
  int version;
  const char* description;
  // Statements; "@ID@" becomes the dialect's auto-increment primary key.
  std::vector<std::string> statements;
};

const std::vector<Migration>& SchemaMigrations();
int LatestSchemaVersion();

// The version recorded in `db` (0 for an empty database).
absl::StatusOr<int> SchemaVersion(MetadataDb& db);

// Brings `db` to LatestSchemaVersion(); FailedPrecondition when it is newer.
// `up_to` stops at an older version (tests build registries as older
// binaries left them).
absl::Status MigrateSchema(MetadataDb& db, int up_to = -1);

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_METADATA_SCHEMA_H_
