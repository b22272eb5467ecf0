// Where the blob store keeps its objects: one small interface with a local
// folder (file://) and an XRootD server (root://) behind it. Names are
// relative to the store's root ("chunks/ab/abcd...", "manifests/..",
// "tmp/..."). Every method is thread-safe: the store calls them from several
// workers at once.
#ifndef HEPML_REGISTRY_BACKEND_H_
#define HEPML_REGISTRY_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hepml::registry {

// A Status for a failed system call: `what` and strerror(err), with the code
// a caller can act on (NotFound, ResourceExhausted for a full device or
// quota, PermissionDenied for a read-only or forbidden path,
// FailedPrecondition for a path of the wrong kind, Internal otherwise).
absl::Status ErrnoStatus(int err, const std::string& what);

struct ObjectInfo {
  std::string name;  // relative to the root, e.g. "chunks/ab/abcdef..."
  uint64_t size = 0;
  int64_t mtime = 0;  // seconds since the epoch
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const std::string& uri() const = 0;

  // Creates the root and chunks/, manifests/, tmp/ when they are missing.
  virtual absl::Status Init() = 0;

  // Writes `data` then `more` under `name` atomically and durably: into
  // tmp/ first, flushed to stable storage, then renamed into place
  // (replacing an object of that name). On error nothing is visible under
  // `name` and the temporary is removed. ResourceExhausted when the device
  // is full.
  virtual absl::Status Put(const std::string& name, std::string_view data, std::string_view more = {}) = 0;

  // Like Put, but the object need only be durable and visible once the
  // next Sync() returns (a push's chunks, which no one reads before the
  // manifest is written). Lets a backend batch the flushes: file:// starts
  // the write-back at once and waits for it, and renames, in Sync.
  // TouchIfExists sees it at once (so a chunk twice in one push is written
  // once); if the flush that was to place it fails, that Sync and every
  // later Sync and PutDeferred on this backend fail. The default is Put.
  virtual absl::Status PutDeferred(const std::string& name, std::string_view data, std::string_view more = {}) {
    return Put(name, data, more);
  }

  // The object's bytes; NotFound when it is absent.
  virtual absl::StatusOr<std::string> Get(const std::string& name) = 0;

  // The object's bytes into `buf`, grown when it is too small and never
  // shrunk (so a reused buffer costs no allocation and no zero-fill);
  // `size` is the object's length. NotFound when it is absent.
  virtual absl::Status GetInto(const std::string& name, std::string& buf, size_t& size) {
    absl::StatusOr<std::string> got = Get(name);
    if (!got.ok()) return got.status();
    buf = std::move(*got);
    size = buf.size();
    return absl::OkStatus();
  }

  // Size and modification time; NotFound when absent.
  virtual absl::StatusOr<ObjectInfo> Stat(const std::string& name) = 0;

  // Sets the object's modification time to now when it exists and says
  // whether it did (Gc keeps young objects, so a push that reuses a chunk
  // refreshes it first).
  virtual absl::StatusOr<bool> TouchIfExists(const std::string& name) = 0;

  // Every object below the folder `prefix` (recursively), with sizes and
  // times. An absent folder lists as empty.
  virtual absl::StatusOr<std::vector<ObjectInfo>> List(const std::string& prefix) = 0;

  // Removes one object; OK when it is already gone.
  virtual absl::Status Delete(const std::string& name) = 0;

  // Makes earlier PutDeferred objects durable and visible, and the renames
  // of earlier Puts durable (fsyncs the folders they touched, where the
  // backend needs it). On error the deferred objects not yet in place are
  // dropped (their temporaries removed).
  virtual absl::Status Sync() = 0;

  // How many Puts/Gets the store should keep in flight.
  virtual int parallelism() const = 0;
};

// `root`: an absolute local path.
absl::StatusOr<std::unique_ptr<Backend>> OpenFileBackend(const std::string& uri, const std::string& root);
// `server`: "root://host:port"; `root`: an absolute path on that server.
absl::StatusOr<std::unique_ptr<Backend>> OpenXRootDBackend(const std::string& uri, const std::string& server,
                                                           const std::string& root);

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_BACKEND_H_
