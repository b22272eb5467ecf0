// FastCDC: sizes stay within bounds, boundaries depend on content only (a
// stream read in odd pieces cuts where the whole buffer does), and an
// insertion in the middle of a file leaves most chunks shared.
#include "registry/chunker.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace hepml::registry {
namespace {

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, 8);
  }
  for (size_t i = n & ~size_t{7}; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

// Chunks of `data` read through a ChunkStream in pieces of at most `piece` bytes.
std::vector<std::string> Cut(const std::string& data, const ChunkerOptions& o, size_t piece = SIZE_MAX) {
  size_t pos = 0;
  ChunkStream stream(o, [&](char* buf, size_t n) -> absl::StatusOr<size_t> {
    size_t k = std::min({n, piece, data.size() - pos});
    std::memcpy(buf, data.data() + pos, k);
    pos += k;
    return k;
  });
  std::vector<std::string> out;
  for (;;) {
    absl::StatusOr<std::string_view> c = stream.Next();
    EXPECT_TRUE(c.ok());
    if (!c.ok() || c->empty()) break;
    out.emplace_back(*c);
  }
  return out;
}

ChunkerOptions Small() {
  ChunkerOptions o;
  o.min_size = 16 << 10;
  o.avg_size = 64 << 10;
  o.max_size = 256 << 10;
  return o;
}

TEST(Chunker, GearTableIsFixed) {
  // The table is part of the store format: these values must never change.
  const auto& g = GearTable();
  std::set<uint64_t> distinct(g.begin(), g.end());
  EXPECT_EQ(distinct.size(), 256u);
  uint64_t state = kGearSeed + 0x9e3779b97f4a7c15ULL;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  EXPECT_EQ(g[0], z ^ (z >> 31));
  Chunker c{ChunkerOptions{}};
  EXPECT_EQ(__builtin_popcountll(c.mask_small()), 22);  // log2(1 MiB) + 2
  EXPECT_EQ(__builtin_popcountll(c.mask_large()), 18);  // log2(1 MiB) - 2
}

TEST(Chunker, SizesWithinBoundsAndAverageNearTarget) {
  ChunkerOptions o = Small();
  std::string data = RandomBytes(20 << 20, 1);
  std::vector<std::string> chunks = Cut(data, o);
  std::string joined;
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_LE(chunks[i].size(), o.max_size);
    if (i + 1 < chunks.size()) EXPECT_GE(chunks[i].size(), o.min_size);
    joined += chunks[i];
  }
  EXPECT_EQ(joined, data);
  double avg = static_cast<double>(data.size()) / chunks.size();
  EXPECT_GT(avg, o.avg_size * 0.6);
  EXPECT_LT(avg, o.avg_size * 1.6);
}

TEST(Chunker, BoundariesDoNotDependOnHowTheStreamIsRead) {
  ChunkerOptions o = Small();
  std::string data = RandomBytes(5 << 20, 2);
  EXPECT_EQ(Cut(data, o), Cut(data, o, 4093));
  EXPECT_EQ(Cut(data, o), Cut(data, o, 1));
}

TEST(Chunker, ZerosAreCutAtTheMaximum) {
  ChunkerOptions o = Small();
  std::string data(1 << 20, '\0');
  std::vector<std::string> chunks = Cut(data, o);
  ASSERT_EQ(chunks.size(), 4u);
  for (const auto& c : chunks) EXPECT_EQ(c.size(), o.max_size);
  EXPECT_TRUE(Cut("", o).empty());
  EXPECT_EQ(Cut("abc", o), std::vector<std::string>{"abc"});
}

TEST(Chunker, InsertionInTheMiddleKeepsMostChunks) {
  ChunkerOptions o;  // the defaults: 256 KiB / 1 MiB / 4 MiB
  std::string a = RandomBytes(50 << 20, 3);
  std::string b = a;
  b.insert(25 << 20, RandomBytes(1000, 4));
  std::vector<std::string> ca = Cut(a, o), cb = Cut(b, o);
  std::set<std::string> sa(ca.begin(), ca.end());
  size_t shared = 0;
  for (const auto& c : cb) shared += sa.count(c);
  // One or two chunks around the insertion change; the rest are shared.
  EXPECT_GE(shared + 3, cb.size()) << shared << " of " << cb.size() << " shared";
  EXPECT_GE(cb.size(), 30u);
  // Overwriting bytes in place also touches only the chunks around them.
  std::string c = a;
  for (size_t i = 0; i < 4096; ++i) c[(10 << 20) + i] ^= 0x5a;
  std::vector<std::string> cc = Cut(c, o);
  shared = 0;
  for (const auto& x : cc) shared += sa.count(x);
  EXPECT_GE(shared + 3, cc.size());
}

// The cut rule written as one sequential loop (the definition of the store
// format's boundaries); Chunker::Cut scans several slices at once and must
// find exactly the same cut points.
size_t SequentialCut(const ChunkerOptions& o, const uint8_t* data, size_t n) {
  if (n <= o.min_size) return n;
  n = std::min<size_t>(n, o.max_size);
  Chunker c(o);
  const auto& gear = GearTable();
  size_t normal = std::min<size_t>(o.avg_size, n);
  uint64_t fp = 0;
  size_t i = o.min_size;
  for (; i < normal; ++i) {
    fp = (fp << 1) + gear[data[i]];
    if ((fp & c.mask_small()) == 0) return i + 1;
  }
  for (; i < n; ++i) {
    fp = (fp << 1) + gear[data[i]];
    if ((fp & c.mask_large()) == 0) return i + 1;
  }
  return n;
}

TEST(Chunker, CutPointsAreThoseOfTheSequentialScan) {
  ChunkerOptions tiny_min;  // cuts fall anywhere, also in the first bytes of a slice
  tiny_min.min_size = 64;
  tiny_min.avg_size = 64 << 10;
  tiny_min.max_size = 256 << 10;
  // Low-entropy bytes: text over a seven-letter alphabet.
  std::string text(8 << 20, '\0');
  std::mt19937_64 letters(7);
  for (char& c : text) c = "weights"[letters() % 7];
  for (const ChunkerOptions& o : {ChunkerOptions{}, Small(), tiny_min}) {
    Chunker chunker(o);
    for (const std::string& data : {RandomBytes(40 << 20, 5), text}) {
      const auto* d = reinterpret_cast<const uint8_t*>(data.data());
      size_t cuts = 0;
      for (size_t pos = 0; pos < data.size(); ++cuts) {
        size_t want = SequentialCut(o, d + pos, data.size() - pos);
        ASSERT_EQ(chunker.Cut(d + pos, data.size() - pos), want) << "chunk " << cuts << " at " << pos;
        pos += want;
      }
      EXPECT_GT(cuts, 2 * data.size() / o.max_size);  // most cuts are found, not forced
      // From arbitrary offsets and with arbitrary amounts available.
      std::mt19937_64 rng(6);
      for (int k = 0; k < 300; ++k) {
        size_t pos = rng() % data.size();
        size_t n = std::min<size_t>(data.size() - pos, rng() % (o.max_size + o.max_size / 2));
        ASSERT_EQ(chunker.Cut(d + pos, n), SequentialCut(o, d + pos, n)) << pos << " + " << n;
      }
    }
  }
}

TEST(Chunker, RejectsBadOptions) {
  ChunkerOptions o;
  o.avg_size = 3 << 20;
  EXPECT_EQ(ValidateChunkerOptions(o).code(), absl::StatusCode::kInvalidArgument);
  o = ChunkerOptions{};
  o.min_size = o.avg_size;
  EXPECT_FALSE(ValidateChunkerOptions(o).ok());
  o = ChunkerOptions{};
  o.max_size = o.avg_size;
  EXPECT_FALSE(ValidateChunkerOptions(o).ok());
  o = ChunkerOptions{};
  o.zstd_level = 99;
  EXPECT_FALSE(ValidateChunkerOptions(o).ok());
  EXPECT_TRUE(ValidateChunkerOptions(ChunkerOptions{}).ok());
}

}  // namespace
}  // namespace hepml::registry
