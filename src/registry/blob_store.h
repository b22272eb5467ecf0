// The registry's blob store: files are cut into content-defined chunks
// (FastCDC-style, so an insertion shifts only the chunks around it), each
// chunk is named by the SHA-256 of its bytes, compressed with zstd when
// that pays (chunk_codec.h) and stored once, whoever references it. A
// manifest lists a file's chunks in order; it is itself stored under the
// SHA-256 of the whole file.
//
// Layout under the store's root (file:// or root://):
//   chunks/ab/abcdef...   one chunk: header, then a zstd frame or the raw bytes
//                         (name = SHA-256 of the raw bytes)
//   manifests/ab/abc...   JSON manifest of one file (name = SHA-256 of the file)
//   tmp/                  partial writes; renamed into place once durable
//
// Durability: Put* returns OK only when every chunk and the manifest have
// been written, fsync'd and renamed into place (and the folders fsync'd).
// The metadata store commits a version only after that, so a version never
// points at missing data. Pushes are resumable: chunks already present are
// skipped (and counted in PutStats::chunks_reused).
#ifndef HEPML_REGISTRY_BLOB_STORE_H_
#define HEPML_REGISTRY_BLOB_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hepml::registry {

struct ChunkerOptions {
  // FastCDC sizes: chunks are cut between min and max bytes, about avg on
  // average. avg must be a power of two.
  uint64_t min_size = 256 << 10;
  uint64_t avg_size = 1 << 20;
  uint64_t max_size = 4 << 20;
  // zstd level of the chunks that are compressed.
  int zstd_level = 1;
  // A chunk is compressed only when zstd level 1 on its first 64 KiB saves
  // at least this fraction of them; otherwise it is stored raw and pulls
  // skip decompression. Float weights save ~8% and are stored raw; text,
  // sparse and pruned weights are compressed. 0 compresses every chunk zstd
  // shrinks at all; 1 stores every chunk raw.
  double min_compression_saving = 0.125;
  // Chunks hashed, compressed and written (or fetched and checked) at once;
  // 0 picks the backend's default (3 for file://, 8 for root://).
  int threads = 0;
};

struct ChunkRef {
  std::string id;     // lowercase hex SHA-256 of the uncompressed bytes
  uint64_t size = 0;  // uncompressed bytes
};

struct Manifest {
  std::string id;  // lowercase hex SHA-256 of the whole file
  uint64_t size = 0;
  std::vector<ChunkRef> chunks;  // in file order; sizes add up to `size`
  // The manifest carried a digest of its chunk list and it matched: every
  // chunk checked against its id then rebuilds exactly the pushed file, so
  // a pull need not hash the whole file again. False for manifests written
  // before the digest existed (their pulls hash the whole file).
  bool chunk_list_sealed = false;
};

struct PutStats {
  uint64_t bytes_in = 0;          // file bytes read
  uint64_t chunks_total = 0;
  uint64_t chunks_reused = 0;     // already in the store (dedup or resumed push)
  uint64_t bytes_stored = 0;      // compressed bytes newly written
};

struct FsckReport {
  uint64_t manifests_checked = 0;
  uint64_t chunks_checked = 0;
  std::vector<std::string> problems;  // one line each: what is wrong and where
  bool ok() const { return problems.empty(); }
};

struct GcReport {
  uint64_t chunks_removed = 0;
  uint64_t bytes_freed = 0;
  uint64_t manifests_removed = 0;
};

// Thread-safe: a store may be used from several threads at once (each call
// runs its own ChunkerOptions::threads workers). Memory per call stays
// bounded whatever the file size: at most about (4 * threads + 6) *
// max_size (the default options: 72 MiB for file://, 152 MiB for root://).
class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // `uri`: file:///ABS/PATH or root://HOST:PORT//ABS/PATH. Creates the
  // layout if it is missing.
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(const std::string& uri,
                                                         const ChunkerOptions& options = {});

  virtual const std::string& uri() const = 0;

  // Chunks, deduplicates and stores a local file (or bytes); durable on OK.
  virtual absl::StatusOr<Manifest> PutFile(const std::string& path, PutStats* stats = nullptr) = 0;
  virtual absl::StatusOr<Manifest> PutBytes(const std::string& bytes, PutStats* stats = nullptr) = 0;

  // Reads a stored manifest back (NotFound if absent, DataLoss if corrupt).
  virtual absl::StatusOr<Manifest> GetManifest(const std::string& manifest_id) = 0;
  virtual bool HasManifest(const std::string& manifest_id) = 0;

  // Writes the file described by `manifest_id` to `dest_path` (through a
  // temporary file renamed into place; resumable: an existing partial
  // temporary is checked chunk by chunk and continued). Every chunk's hash
  // and the whole file's hash are verified; a mismatch is DataLoss naming
  // the chunk.
  virtual absl::Status GetFile(const std::string& manifest_id, const std::string& dest_path) = 0;
  virtual absl::StatusOr<std::string> GetBytes(const std::string& manifest_id) = 0;

  // Checks that every manifest's chunks exist and every chunk's content
  // matches its name. `referenced` (manifest ids the metadata store points
  // at) must all exist.
  virtual absl::StatusOr<FsckReport> Fsck(const std::vector<std::string>& referenced) = 0;

  // Removes manifests not in `live_manifests` and chunks no live manifest
  // uses. Objects younger than `grace_seconds` are kept, so a push that is
  // writing chunks before its metadata commit is never raced.
  virtual absl::StatusOr<GcReport> Gc(const std::vector<std::string>& live_manifests,
                                      int64_t grace_seconds = 3600) = 0;
};

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_BLOB_STORE_H_
