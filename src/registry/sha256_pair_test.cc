// Sha256Pair against OpenSSL: the whole-file and per-chunk digests of random
// bytes cut at random boundaries (most not on 64-byte multiples, so the two
// streams see different block alignments), fed in random pieces, on the
// SHA-NI path (when the CPU has it) and the OpenSSL path.
#include "registry/sha256_pair.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "registry/chunk_codec.h"

namespace hepml::registry {
namespace {

std::string RandomBytes(size_t n, std::mt19937_64& rng) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

void CheckRandomCuts(bool use_sha_ni, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 60; ++round) {
    size_t n = std::uniform_int_distribution<size_t>(0, round < 30 ? 700 : 300000)(rng);
    std::string data = RandomBytes(n, rng);
    Sha256Pair pair(use_sha_ni);
    size_t pos = 0;
    while (pos < n) {
      size_t max_chunk = round % 3 == 0 ? 200 : 70000;
      size_t len = std::min(n - pos, std::uniform_int_distribution<size_t>(1, max_chunk)(rng));
      // Feed the chunk in a few pieces of random sizes.
      size_t fed = 0;
      while (fed < len) {
        size_t piece = std::min(len - fed, std::uniform_int_distribution<size_t>(1, 9000)(rng));
        pair.UpdateBoth(std::string_view(data).substr(pos + fed, piece));
        fed += piece;
      }
      ASSERT_EQ(pair.FinishChunk(), Sha256Hex(std::string_view(data).substr(pos, len)))
          << "chunk at " << pos << " of " << len << " bytes, file of " << n << ", round " << round;
      pos += len;
    }
    ASSERT_EQ(pair.FinishFile(), Sha256Hex(data)) << n << " bytes, round " << round;
  }
}

TEST(Sha256Pair, MatchesOpenSslOnRandomChunkBoundaries) {
  if (!Sha256Pair::CpuHasShaNi()) GTEST_SKIP() << "this CPU has no SHA-NI; the OpenSSL path is tested below";
  Sha256Pair probe;
  EXPECT_TRUE(probe.sha_ni());
  CheckRandomCuts(true, 1);
  CheckRandomCuts(true, 2);
}

TEST(Sha256Pair, OpenSslPathMatchesOpenSsl) {
  Sha256Pair probe(false);
  EXPECT_FALSE(probe.sha_ni());
  CheckRandomCuts(false, 3);
}

TEST(Sha256Pair, PaddingEdgesAndFileOnlyBytes) {
  // Lengths around the padding edge (55/56 bytes left in the last block),
  // empty chunks, and bytes that belong to the file stream only.
  std::mt19937_64 rng(4);
  for (bool ni : {true, false}) {
    for (size_t n : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000}) {
      std::string a = RandomBytes(n, rng), b = RandomBytes(n / 2 + 1, rng);
      Sha256Pair pair(ni);
      EXPECT_EQ(pair.FinishChunk(), Sha256Hex(""));
      pair.UpdateFile(b);
      pair.UpdateBoth(a);
      EXPECT_EQ(pair.FinishChunk(), Sha256Hex(a)) << n;
      pair.UpdateBoth(b);
      EXPECT_EQ(pair.FinishChunk(), Sha256Hex(b)) << n;
      EXPECT_EQ(pair.FinishFile(), Sha256Hex(b + a + b)) << n;
    }
  }
}

}  // namespace
}  // namespace hepml::registry
