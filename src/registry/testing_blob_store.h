// TEST ONLY: a minimal file-based BlobStore for the registry's tests until
// the real chunked store (blob_store.cc) is in the tree. Whole files are
// stored under the SHA-256 of their bytes (one "chunk" per file); no
// compression, no dedup below file level. Never linked into the library.
#ifndef HEPML_REGISTRY_TESTING_BLOB_STORE_H_
#define HEPML_REGISTRY_TESTING_BLOB_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "registry/blob_store.h"

namespace hepml::registry {

// `root`: a local folder (created if missing).
absl::StatusOr<std::unique_ptr<BlobStore>> OpenTestingBlobStore(const std::string& root);

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_TESTING_BLOB_STORE_H_
