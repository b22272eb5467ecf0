#include "registry/metadata_db.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace hepml::registry {

const std::string& SqlRow::Text(size_t i) const {
  static const std::string kEmpty;
  return cols[i] ? *cols[i] : kEmpty;
}

int64_t SqlRow::Int(size_t i) const { return cols[i] ? std::strtoll(cols[i]->c_str(), nullptr, 10) : 0; }

double SqlRow::Double(size_t i) const { return cols[i] ? std::strtod(cols[i]->c_str(), nullptr) : 0.0; }

std::optional<int64_t> SqlRow::OptInt(size_t i) const {
  if (!cols[i]) return std::nullopt;
  return Int(i);
}

std::string RedactPassword(const std::string& uri) {
  auto scheme = uri.find("://");
  if (scheme == std::string::npos) return uri;
  auto at = uri.find('@', scheme + 3);
  auto slash = uri.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return uri;
  auto colon = uri.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon + 1) + "***" + uri.substr(at);
}

absl::StatusOr<std::unique_ptr<MetadataDb>> MetadataDb::Open(const std::string& uri) {
  if (absl::StartsWith(uri, "sqlite://")) {
    std::string path = uri.substr(9);
    if (path.empty() || path[0] != '/' || path.back() == '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata URI '", uri, "': expected sqlite:///ABSOLUTE/PATH of a database file"));
    }
    return OpenSqliteDb(path, uri);
  }
  if (absl::StartsWith(uri, "postgresql://") || absl::StartsWith(uri, "postgres://")) {
    std::string rest = uri.substr(uri.find("://") + 3);
    if (rest.empty() || rest.find('/') == std::string::npos || rest.back() == '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata URI '", uri, "': expected postgresql://USER@HOST:PORT/DATABASE"));
    }
    return OpenPostgresDb(uri, RedactPassword(uri));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "metadata URI '", uri, "': unknown scheme (expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB)"));
}

}  // namespace hepml::registry
