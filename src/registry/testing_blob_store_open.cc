// TEST ONLY: BlobStore::Open over the testing blob store, for builds where
// the real blob store (blob_store.cc) is not in the tree yet. CMake links it
// only into the registry's tests and, in that case only, the `hepml` command;
// it is never part of hepml_registry.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "registry/testing_blob_store.h"

namespace hepml::registry {

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& uri, const ChunkerOptions&) {
  if (!absl::StartsWith(uri, "file:///")) {
    return absl::InvalidArgumentError(absl::StrCat("blob URI '", uri, "': expected file:///ABSOLUTE/PATH"));
  }
  return OpenTestingBlobStore(uri.substr(7));
}

}  // namespace hepml::registry
