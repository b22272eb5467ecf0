// How one chunk is stored, and the hashing shared by the store.
//
// A chunk object is a 16-byte header and a payload:
//   bytes 0-3   "HPC1"
//   byte  4     codec: 0 = raw, 1 = zstd frame
//   bytes 5-7   zero
//   bytes 8-15  uncompressed size, little endian
// Chunks whose first 64 KiB do not compress (random float weights, already
// compressed data) are stored raw: zstd would spend time for nothing.
// Decoding checks the header, the size and the SHA-256 of the result.
#ifndef HEPML_REGISTRY_CHUNK_CODEC_H_
#define HEPML_REGISTRY_CHUNK_CODEC_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hepml::registry {

// Incremental SHA-256 (OpenSSL).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data);
  std::string HexDigest();  // finishes the hash

 private:
  void* ctx_;
};

std::string Sha256Hex(std::string_view data);
bool IsHexId(std::string_view id);  // 64 lowercase hex digits

// Per-thread compression state; not thread-safe.
class ChunkEncoder {
 public:
  explicit ChunkEncoder(int level);
  ~ChunkEncoder();
  ChunkEncoder(const ChunkEncoder&) = delete;
  ChunkEncoder& operator=(const ChunkEncoder&) = delete;
  absl::StatusOr<std::string> Encode(std::string_view raw);

 private:
  int level_;
  void* cctx_;
};

// Decodes a stored chunk and checks it is the chunk `id` (of `expected_size`
// bytes when that is not UINT64_MAX). DataLoss naming `id` otherwise.
absl::StatusOr<std::string> DecodeChunk(const std::string& id, std::string_view stored,
                                        uint64_t expected_size = UINT64_MAX);
// The same, reusing `stored`'s buffer for a raw chunk (no second copy).
absl::StatusOr<std::string> DecodeChunk(const std::string& id, std::string&& stored,
                                        uint64_t expected_size = UINT64_MAX);

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_CHUNK_CODEC_H_
