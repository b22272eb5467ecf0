#include "cli/registry_where.h"

#include "absl/time/time.h"

namespace hepml::cli {

std::string WhereProblem(const Where& w) {
  if (!w.dir.empty() && (!w.metadata.empty() || !w.blobs.empty())) {
    return "give either --registry DIR or --metadata URI --blobs URI, not both";
  }
  if (w.dir.empty() && w.metadata.empty() && w.blobs.empty()) {
    return "no registry: give --registry DIR (or set HEPML_REGISTRY), or --metadata URI --blobs URI";
  }
  if (w.dir.empty() && (w.metadata.empty() || w.blobs.empty())) return "--metadata and --blobs go together";
  return "";
}

absl::StatusOr<std::unique_ptr<registry::Registry>> OpenFrom(const Where& w, bool create) {
  registry::RegistryOptions o;
  o.create_if_missing = create;
  o.hook_timeout_s = w.hook_timeout_s;
  if (!w.dir.empty()) return registry::Registry::OpenDir(w.dir, o);
  return registry::Registry::Open(w.metadata, w.blobs, o);
}

std::string Time(int64_t ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

}  // namespace hepml::cli
