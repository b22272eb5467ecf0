// Two SHA-256 streams over the same bytes in one pass: a push hashes every
// byte twice, once for the whole file (the file's id) and once for the chunk
// it falls in (the chunk's id). With the x86 SHA extensions (SHA-NI) one
// stream is bound by the latency of the round instruction; compressing a
// block of each stream interleaved keeps the unit busy and hashes both in
// little more than the time of one. Without SHA-NI both streams go through
// OpenSSL (EVP) one after the other.
//
// The two streams need not be block-aligned with each other (a chunk starts
// at any byte of the file): each keeps its own partial block; only the runs
// where both have whole blocks in the input are interleaved, the rest is
// compressed one stream at a time.
//
// Not thread-safe; one object per hashing thread.
#ifndef HEPML_REGISTRY_SHA256_PAIR_H_
#define HEPML_REGISTRY_SHA256_PAIR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace hepml::registry {

class Sha256Pair {
 public:
  // `use_sha_ni`: false forces the OpenSSL path (tests compare both); true
  // uses SHA-NI when the CPU has it.
  explicit Sha256Pair(bool use_sha_ni = true);
  ~Sha256Pair();
  Sha256Pair(const Sha256Pair&) = delete;
  Sha256Pair& operator=(const Sha256Pair&) = delete;

  // Both streams take `data`.
  void UpdateBoth(std::string_view data);
  // The whole-file stream only (bytes of no chunk, e.g. in tests).
  void UpdateFile(std::string_view data);
  // Finishes the chunk stream: its hex digest; the next UpdateBoth starts a
  // new chunk.
  std::string FinishChunk();
  // Finishes the whole-file stream: its hex digest. Call once, last.
  std::string FinishFile();

  // Whether this object hashes with SHA-NI.
  bool sha_ni() const { return impl_ == nullptr; }
  // Whether the CPU has the SHA extensions (and SSE4.1, SSSE3 they need).
  static bool CpuHasShaNi();

 private:
  struct Stream {
    uint32_t state[8];
    uint8_t block[64];
    size_t buffered = 0;
    uint64_t length = 0;  // bytes taken
    void Reset();
  };
  static void Update(Stream& s, const uint8_t* p, size_t n);
  static std::string Finish(Stream& s);

  Stream file_, chunk_;
  struct Evp;
  std::unique_ptr<Evp> impl_;  // set when SHA-NI is not used
};

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_SHA256_PAIR_H_
