// Where `hepml registry` and `hepml jobs` find the registry: --registry DIR
// (embedded: DIR/registry.db and DIR/blobs; also $HEPML_REGISTRY) or
// --metadata URI --blobs URI.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "hepml/registry.h"

namespace hepml::cli {

struct Where {
  std::string dir;
  std::string metadata;
  std::string blobs;
  double hook_timeout_s = 30;
};

// What is wrong with how the registry was named ("" when nothing): a bad
// command line, exit 2.
std::string WhereProblem(const Where& w);

// Opens it; `create`: make DIR and an empty registry when DIR has none.
absl::StatusOr<std::unique_ptr<registry::Registry>> OpenFrom(const Where& w, bool create);

// "YYYY-MM-DD HH:MM:SS UTC" of a Unix time in milliseconds.
std::string Time(int64_t ms);

}  // namespace hepml::cli
