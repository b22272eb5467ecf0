// How one chunk is stored, and the hashing shared by the store.
//
// A chunk object is a 16-byte header and a payload:
//   bytes 0-3   "HPC1"
//   byte  4     codec: 0 = raw, 1 = zstd frame
//   bytes 5-7   zero
//   bytes 8-15  uncompressed size, little endian
// A chunk is compressed only when zstd pays: zstd level 1 on its first
// 64 KiB must save at least ChunkerOptions::min_compression_saving (default
// 1/8). Float weights (about 8% smaller at any level), random and already
// compressed bytes are stored raw, so pushes skip the compressor and pulls
// the decompressor; text, sparse or pruned weights are compressed.
// Decoding checks the header, the size and the SHA-256 of the result, once.
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

// The stored object of one chunk: `head` followed by `body`. For a raw
// chunk `head` is the header alone and `body` views the caller's bytes, so
// they are written without a copy; for a compressed one `head` holds the
// header and the zstd frame and `body` is empty.
struct EncodedChunk {
  std::string head;
  std::string_view body;
  bool raw = false;
  uint64_t size() const { return head.size() + body.size(); }
};

// Per-thread compression state; not thread-safe.
class ChunkEncoder {
 public:
  // `level`: zstd level; `min_saving`: the fraction of the probe zstd must
  // save for the chunk to be compressed (see above).
  ChunkEncoder(int level, double min_saving);
  ~ChunkEncoder();
  ChunkEncoder(const ChunkEncoder&) = delete;
  ChunkEncoder& operator=(const ChunkEncoder&) = delete;
  // REQUIRES: `raw` outlives the result (a raw chunk's body views it).
  absl::StatusOr<EncodedChunk> Encode(std::string_view raw);

 private:
  int level_;
  double min_saving_;
  void* cctx_;
  std::string probe_;
};

// A decoded chunk's bytes: `size` bytes of `buf` from `offset` (a raw chunk
// keeps the stored object's buffer and skips its header instead of moving
// the bytes; the buffer may be longer, when it is a reused one).
struct DecodedChunk {
  std::string buf;
  size_t offset = 0;
  size_t size = 0;
  std::string_view bytes() const { return std::string_view(buf.data() + offset, size); }
};

// Decodes a stored chunk and checks it is the chunk `id` (of `expected_size`
// bytes when that is not UINT64_MAX). DataLoss naming `id` otherwise.
absl::StatusOr<std::string> DecodeChunk(const std::string& id, std::string_view stored,
                                        uint64_t expected_size = UINT64_MAX);
// The same for the first `stored_size` bytes of `stored`, taking its buffer
// for a raw chunk (no copy; `stored` is left empty) and leaving it to the
// caller otherwise.
absl::StatusOr<DecodedChunk> DecodeChunk(const std::string& id, std::string& stored, size_t stored_size,
                                         uint64_t expected_size = UINT64_MAX);

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_CHUNK_CODEC_H_
