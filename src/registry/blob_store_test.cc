// The blob store on real folders (and a real xrootd): round trips, dedup,
// resumed pulls, damage found and named (flipped byte, missing chunk,
// truncated manifest), bad URIs, a full and a read-only file system, gc with
// its grace rule, and pushes killed at random points.
#include "registry/blob_store.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <tuple>

#include "nlohmann/json.hpp"
#include "registry/chunk_codec.h"
#include "registry/chunker.h"

namespace hepml::registry {
namespace {

namespace fs = std::filesystem;

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

// Half random, half text-like: some chunks compress, some do not.
std::string MixedBytes(size_t n, uint64_t seed) {
  std::string s = RandomBytes(n, seed);
  for (size_t i = 0; i < n / 2; ++i) s[i] = "hepml registry "[i % 15];
  return s;
}

ChunkerOptions Small() {
  ChunkerOptions o;
  o.min_size = 4 << 10;
  o.avg_size = 16 << 10;
  o.max_size = 64 << 10;
  return o;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

fs::path ChunkPath(const fs::path& root, const std::string& id) { return root / "chunks" / id.substr(0, 2) / id; }
fs::path ManifestPath(const fs::path& root, const std::string& id) {
  return root / "manifests" / id.substr(0, 2) / id;
}

size_t CountFiles(const fs::path& dir) {
  if (!fs::exists(dir)) return 0;
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

void AgeEverything(const fs::path& root, int seconds) {
  auto old = fs::file_time_type::clock::now() - std::chrono::seconds(seconds);
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) fs::last_write_time(e.path(), old);
  }
}

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hepml_blob_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    root_ = dir_ / "store";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<BlobStore> OpenStore(ChunkerOptions o = Small()) {
    auto s = BlobStore::Open("file://" + root_.string(), o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  fs::path dir_, root_;
};

TEST_F(BlobStoreTest, BytesRoundTripAndIdIsTheFileHash) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  EXPECT_TRUE(fs::is_directory(root_ / "chunks") && fs::is_directory(root_ / "manifests") &&
              fs::is_directory(root_ / "tmp"));
  for (size_t n : {size_t{0}, size_t{1}, size_t{5000}, size_t{3} << 20}) {
    std::string data = MixedBytes(n, n);
    PutStats stats;
    absl::StatusOr<Manifest> m = store->PutBytes(data, &stats);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->id, Sha256Hex(data));
    EXPECT_EQ(m->size, n);
    EXPECT_EQ(stats.bytes_in, n);
    EXPECT_EQ(stats.chunks_total, m->chunks.size());
    EXPECT_TRUE(store->HasManifest(m->id));
    absl::StatusOr<Manifest> back = store->GetManifest(m->id);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->chunks.size(), m->chunks.size());
    absl::StatusOr<std::string> got = store->GetBytes(m->id);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, data);
  }
  // The text half compresses: stored bytes are well under the input.
  std::string text(2 << 20, 'x');
  PutStats stats;
  ASSERT_TRUE(store->PutBytes(text + "!", &stats).ok());
  EXPECT_LT(stats.bytes_stored, text.size() / 20);
}

TEST_F(BlobStoreTest, FilesRoundTripAndChunksAreStoredOnce) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::string a = RandomBytes(4 << 20, 1);
  WriteFile(dir_ / "a.bin", a);
  PutStats s1;
  absl::StatusOr<Manifest> m1 = store->PutFile((dir_ / "a.bin").string(), &s1);
  ASSERT_TRUE(m1.ok()) << m1.status();
  EXPECT_GT(s1.chunks_total, 50u);
  EXPECT_EQ(s1.chunks_reused, 0u);

  // The same file again: nothing new is written.
  PutStats s2;
  ASSERT_TRUE(store->PutFile((dir_ / "a.bin").string(), &s2).ok());
  EXPECT_EQ(s2.chunks_reused, s2.chunks_total);
  EXPECT_EQ(s2.bytes_stored, 0u);

  // A few bytes inserted in the middle: most chunks are shared.
  std::string b = a;
  b.insert(b.size() / 2, "a small insertion");
  WriteFile(dir_ / "b.bin", b);
  PutStats s3;
  absl::StatusOr<Manifest> m3 = store->PutFile((dir_ / "b.bin").string(), &s3);
  ASSERT_TRUE(m3.ok());
  EXPECT_GE(s3.chunks_reused + 4, s3.chunks_total);
  EXPECT_NE(m3->id, m1->id);

  ASSERT_TRUE(store->GetFile(m1->id, (dir_ / "a.out").string()).ok());
  ASSERT_TRUE(store->GetFile(m3->id, (dir_ / "b.out").string()).ok());
  EXPECT_EQ(ReadFile(dir_ / "a.out"), a);
  EXPECT_EQ(ReadFile(dir_ / "b.out"), b);
  EXPECT_FALSE(fs::exists(dir_ / "a.out.partial"));
  // A pull over an existing file replaces it.
  ASSERT_TRUE(store->GetFile(m1->id, (dir_ / "b.out").string()).ok());
  EXPECT_EQ(ReadFile(dir_ / "b.out"), a);
  EXPECT_EQ(CountFiles(root_ / "tmp"), 0u);

  absl::StatusOr<FsckReport> report = store->Fsck({m1->id, m3->id});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->problems[0];
  EXPECT_EQ(report->manifests_checked, 2u);
}

TEST_F(BlobStoreTest, FileReadInSegmentsIsCutAndHashedLikeTheWholeBuffer) {
  // A push reads the file into 8 MiB segments (2 x max_size when larger)
  // and carries an unfinished chunk over to the next segment; the chunks,
  // their ids and the file's id must be those of cutting the whole buffer
  // at once, with every chunk's stored bytes hashing to its id.
  ChunkerOptions o;
  o.min_size = 16 << 10;
  o.avg_size = 64 << 10;
  o.max_size = 256 << 10;
  auto store = OpenStore(o);
  ASSERT_TRUE(store);
  std::string data = MixedBytes((21 << 20) + 12345, 9);
  std::vector<ChunkRef> expected;
  size_t pos = 0;
  ChunkStream stream(o, [&](char* buf, size_t n) -> absl::StatusOr<size_t> {
    size_t k = std::min(n, data.size() - pos);
    std::memcpy(buf, data.data() + pos, k);
    pos += k;
    return k;
  });
  for (;;) {
    absl::StatusOr<std::string_view> c = stream.Next();
    ASSERT_TRUE(c.ok());
    if (c->empty()) break;
    expected.push_back({Sha256Hex(*c), c->size()});
  }
  ASSERT_GT(expected.size(), 100u);
  WriteFile(dir_ / "big.bin", data);
  PutStats stats;
  absl::StatusOr<Manifest> m = store->PutFile((dir_ / "big.bin").string(), &stats);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->id, Sha256Hex(data));
  EXPECT_EQ(stats.bytes_in, data.size());
  ASSERT_EQ(m->chunks.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(m->chunks[i].id, expected[i].id) << "chunk " << i;
    ASSERT_EQ(m->chunks[i].size, expected[i].size) << "chunk " << i;
  }
  absl::StatusOr<FsckReport> report = store->Fsck({m->id});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->problems.front();
  // The same bytes from memory: the same manifest, every chunk reused.
  PutStats again;
  absl::StatusOr<Manifest> b = store->PutBytes(data, &again);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->id, m->id);
  EXPECT_EQ(again.chunks_reused, expected.size());
  ASSERT_TRUE(store->GetFile(m->id, (dir_ / "back.bin").string()).ok());
  EXPECT_EQ(ReadFile(dir_ / "back.bin"), data);
  // Without SHA-NI the workers hash the chunks: the same manifest.
  ::setenv("HEPML_REGISTRY_NO_SHA_NI", "1", 1);
  auto other = BlobStore::Open("file://" + (dir_ / "other").string(), o);
  ASSERT_TRUE(other.ok()) << other.status();
  absl::StatusOr<Manifest> c = (*other)->PutFile((dir_ / "big.bin").string());
  ::unsetenv("HEPML_REGISTRY_NO_SHA_NI");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->id, m->id);
  ASSERT_EQ(c->chunks.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) ASSERT_EQ(c->chunks[i].id, expected[i].id) << "chunk " << i;
  absl::StatusOr<FsckReport> other_report = (*other)->Fsck({c->id});
  ASSERT_TRUE(other_report.ok()) << other_report.status();
  EXPECT_TRUE(other_report->ok());
}

TEST_F(BlobStoreTest, PullResumesFromAVerifiedPartialFile) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::string data = RandomBytes(2 << 20, 7);
  absl::StatusOr<Manifest> m = store->PutBytes(data);
  ASSERT_TRUE(m.ok());
  ASSERT_GT(m->chunks.size(), 20u);
  // An earlier pull got the first ten chunks and half of the eleventh.
  uint64_t prefix = 0;
  for (int i = 0; i < 10; ++i) prefix += m->chunks[i].size;
  std::string dest = (dir_ / "out.bin").string();
  WriteFile(dest + ".partial", data.substr(0, prefix + m->chunks[10].size / 2));
  // Those ten chunks are no longer in the store: only a resumed pull can finish.
  for (int i = 0; i < 10; ++i) fs::remove(ChunkPath(root_, m->chunks[i].id));
  absl::Status s = store->GetFile(m->id, dest);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ReadFile(dest), data);
  EXPECT_FALSE(fs::exists(dest + ".partial"));

  // A partial file with wrong bytes is not trusted: it is rewritten from
  // the first chunk that does not check out.
  std::string wrong = data.substr(0, prefix);
  wrong[m->chunks[0].size + 3] ^= 1;  // inside chunk 1
  WriteFile(dest + ".partial", wrong);
  s = store->GetFile(m->id, dest);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;  // chunk 1 is gone from the store
  EXPECT_NE(std::string(s.message()).find(m->chunks[1].id), std::string::npos) << s;
  // What was verified stays for the next attempt.
  EXPECT_EQ(fs::file_size(dest + ".partial"), m->chunks[0].size);
}

TEST_F(BlobStoreTest, FlippedByteIsDataLossNamingTheChunk) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::string data = MixedBytes(1 << 20, 3);
  absl::StatusOr<Manifest> m = store->PutBytes(data);
  ASSERT_TRUE(m.ok());
  for (size_t which : {size_t{0}, m->chunks.size() - 1}) {  // a compressed one and a raw one
    const std::string id = m->chunks[which].id;
    fs::path p = ChunkPath(root_, id);
    std::string stored = ReadFile(p);
    std::string flipped = stored;
    flipped[flipped.size() - 5] ^= 0x10;
    WriteFile(p, flipped);
    absl::StatusOr<std::string> got = store->GetBytes(m->id);
    ASSERT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
    EXPECT_NE(std::string(got.status().message()).find(id), std::string::npos) << got.status();
    std::string dest = (dir_ / "out").string();
    absl::Status s = store->GetFile(m->id, dest);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(std::string(s.message()).find(id), std::string::npos) << s;
    EXPECT_FALSE(fs::exists(dest));
    absl::StatusOr<FsckReport> r = store->Fsck({});
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->problems.size(), 1u);
    EXPECT_NE(r->problems[0].find(id), std::string::npos) << r->problems[0];
    WriteFile(p, stored);
  }
  absl::StatusOr<FsckReport> r = store->Fsck({m->id});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok());
}

// float32 weights drawn from N(0, 0.05): zstd saves ~8% on them.
std::string FloatWeights(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> w(0.0f, 0.05f);
  std::string s(n, '\0');
  for (size_t i = 0; i + 4 <= n; i += 4) {
    float v = w(rng);
    std::memcpy(s.data() + i, &v, 4);
  }
  return s;
}

// Byte 4 of a stored chunk's header: 0 raw, 1 zstd.
int StoredCodec(const fs::path& root, const std::string& id) { return static_cast<uint8_t>(ReadFile(ChunkPath(root, id))[4]); }

// Float weights do not pay for zstd and are stored raw (header + the bytes
// themselves); text and pruned weights (mostly zeros) are compressed. Both
// read back, and min_compression_saving moves the line.
TEST_F(BlobStoreTest, ChunksAreCompressedOnlyWhenZstdPays) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::string weights = FloatWeights(256 << 10, 4);
  std::string text;
  while (text.size() < (256 << 10)) text += "jet_pt,jet_eta,jet_phi,btag_score\n";
  std::string pruned = FloatWeights(256 << 10, 5);
  for (size_t i = 0; i < pruned.size(); i += 4) {
    if ((i / 4) % 5 != 0) std::memset(pruned.data() + i, 0, 4);  // 80% of the weights pruned
  }
  for (const auto& [name, data, want] : {std::tuple{"weights", weights, 0}, std::tuple{"text", text, 1},
                                         std::tuple{"pruned", pruned, 1}}) {
    PutStats stats;
    absl::StatusOr<Manifest> m = store->PutBytes(data, &stats);
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_GT(m->chunks.size(), 2u) << name;
    uint64_t raw_bytes = 0;
    for (const ChunkRef& c : m->chunks) {
      // (A tail of a few bytes may not shrink by 1/8 whatever it holds.)
      if (c.size >= 4096) {
        EXPECT_EQ(StoredCodec(root_, c.id), want) << name << " chunk " << c.id << " " << c.size;
      }
      if (want == 0) {
        EXPECT_EQ(fs::file_size(ChunkPath(root_, c.id)), 16 + c.size) << name;
      }
      raw_bytes += c.size;
    }
    if (want == 0) {
      EXPECT_EQ(stats.bytes_stored, raw_bytes + 16 * m->chunks.size()) << name;
    } else {
      EXPECT_LT(stats.bytes_stored, raw_bytes * 3 / 4) << name;
    }
    absl::StatusOr<std::string> back = store->GetBytes(m->id);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, data) << name;
    std::string dest = (dir_ / name).string();
    ASSERT_TRUE(store->GetFile(m->id, dest).ok());
    EXPECT_EQ(ReadFile(dest), data) << name;
  }
  // Every chunk compressed that zstd shrinks at all: the weights too.
  ChunkerOptions always = Small();
  always.min_compression_saving = 0;
  auto store0 = BlobStore::Open("file://" + (dir_ / "always").string(), always);
  ASSERT_TRUE(store0.ok());
  absl::StatusOr<Manifest> m = (*store0)->PutBytes(weights);
  ASSERT_TRUE(m.ok());
  for (const ChunkRef& c : m->chunks) {
    if (c.size >= 4096) {
      EXPECT_EQ(StoredCodec(dir_ / "always", c.id), 1) << c.size;
    }
  }
  ASSERT_TRUE((*store0)->GetBytes(m->id).ok());
  // Nothing compressed: the text too.
  ChunkerOptions never = Small();
  never.min_compression_saving = 1;
  auto store1 = BlobStore::Open("file://" + (dir_ / "never").string(), never);
  ASSERT_TRUE(store1.ok());
  m = (*store1)->PutBytes(text);
  ASSERT_TRUE(m.ok());
  for (const ChunkRef& c : m->chunks) EXPECT_EQ(StoredCodec(dir_ / "never", c.id), 0);
  EXPECT_EQ(*(*store1)->GetBytes(m->id), text);
  never.min_compression_saving = 1.5;
  EXPECT_TRUE(absl::IsInvalidArgument(BlobStore::Open("file://" + (dir_ / "bad").string(), never).status()));
}

// A raw chunk has no zstd frame to fail on: a flipped byte in its payload,
// or a payload cut short, is found by its SHA-256 (or its size) on pull and
// by fsck, naming the chunk; the pull leaves no file.
TEST_F(BlobStoreTest, CorruptRawChunkIsFoundByPullAndFsck) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::string data = FloatWeights(512 << 10, 6);
  absl::StatusOr<Manifest> m = store->PutBytes(data);
  ASSERT_TRUE(m.ok());
  ASSERT_GT(m->chunks.size(), 3u);
  const ChunkRef& victim = m->chunks[m->chunks.size() / 2];
  ASSERT_EQ(StoredCodec(root_, victim.id), 0);
  fs::path p = ChunkPath(root_, victim.id);
  const std::string stored = ReadFile(p);
  std::string flipped = stored;
  flipped[16 + victim.size / 2] ^= 0x01;  // one bit of one weight
  std::string truncated = stored.substr(0, stored.size() - 4);
  for (int k = 0; k < 2; ++k) {
    const std::string& bad = k == 0 ? flipped : truncated;
    WriteFile(p, bad);
    std::string dest = (dir_ / "out.bin").string();
    absl::Status s = store->GetFile(m->id, dest);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_NE(std::string(s.message()).find(victim.id), std::string::npos) << s;
    EXPECT_FALSE(fs::exists(dest));
    // The chunks before it were verified and stay for a resumed pull.
    EXPECT_LE(fs::file_size(dest + ".partial"), data.size());
    absl::StatusOr<std::string> bytes = store->GetBytes(m->id);
    EXPECT_EQ(bytes.status().code(), absl::StatusCode::kDataLoss);
    absl::StatusOr<FsckReport> r = store->Fsck({m->id});
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->problems.size(), 1u);
    EXPECT_NE(r->problems[0].find(victim.id), std::string::npos) << r->problems[0];
    EXPECT_NE(r->problems[0].find(k == 0 ? "hashes to" : "bytes stored"), std::string::npos)
        << r->problems[0];
  }
  // Repaired (the same push writes the chunk back), it all checks out.
  fs::remove(p);
  ASSERT_TRUE(store->PutBytes(data).ok());
  EXPECT_TRUE(store->Fsck({m->id})->ok());
  std::string dest = (dir_ / "out.bin").string();
  ASSERT_TRUE(store->GetFile(m->id, dest).ok());
  EXPECT_EQ(ReadFile(dest), data);
}

TEST_F(BlobStoreTest, MissingChunkAndTruncatedManifestAreReported) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  absl::StatusOr<Manifest> m = store->PutBytes(RandomBytes(300 << 10, 4));
  absl::StatusOr<Manifest> m2 = store->PutBytes(RandomBytes(300 << 10, 5));
  ASSERT_TRUE(m.ok() && m2.ok());
  const std::string gone = m->chunks[2].id;
  fs::remove(ChunkPath(root_, gone));
  absl::Status s = store->GetFile(m->id, (dir_ / "out").string());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(s.message()).find(gone), std::string::npos) << s;
  EXPECT_NE(std::string(s.message()).find("missing"), std::string::npos) << s;
  EXPECT_FALSE(fs::exists(dir_ / "out"));

  fs::path mp = ManifestPath(root_, m2->id);
  std::string text = ReadFile(mp);
  WriteFile(mp, text.substr(0, text.size() / 2));
  absl::StatusOr<Manifest> bad = store->GetManifest(m2->id);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  EXPECT_NE(std::string(bad.status().message()).find(m2->id), std::string::npos);

  const std::string unknown(64, 'a');
  absl::StatusOr<FsckReport> r = store->Fsck({m->id, unknown});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->problems.size(), 3u);
  std::string all = r->problems[0] + "\n" + r->problems[1] + "\n" + r->problems[2];
  EXPECT_NE(all.find(gone), std::string::npos) << all;
  EXPECT_NE(all.find(m2->id), std::string::npos) << all;
  EXPECT_NE(all.find(unknown + " is referenced but not in the store"), std::string::npos) << all;

  EXPECT_EQ(store->GetManifest(unknown).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->GetManifest("../../etc/passwd").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(store->HasManifest("nothex"));
  EXPECT_EQ(store->GetFile(unknown, (dir_ / "x").string()).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->PutFile((dir_ / "no-such-file").string()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->PutFile(dir_.string()).status().code(), absl::StatusCode::kInvalidArgument);
}

// A manifest seals its chunk list with a digest, so a pull checks each
// chunk against its id and skips the whole-file hash. A chunk list altered
// behind the digest's back is caught when the manifest is read; a manifest
// without the digest (written before it existed) is still checked by the
// whole-file hash.
TEST_F(BlobStoreTest, ChunkListDigestCatchesAReorderedManifest) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  const std::string data = RandomBytes(300 << 10, 6);
  absl::StatusOr<Manifest> m = store->PutBytes(data);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_GE(m->chunks.size(), 3u);
  absl::StatusOr<Manifest> read = store->GetManifest(m->id);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->chunk_list_sealed);
  ASSERT_TRUE(store->GetFile(m->id, (dir_ / "out").string()).ok());
  EXPECT_EQ(ReadFile(dir_ / "out"), data);

  fs::path mp = ManifestPath(root_, m->id);
  nlohmann::json j = nlohmann::json::parse(ReadFile(mp));
  ASSERT_TRUE(j.contains("chunks_sha256"));
  std::swap(j["chunks"][0], j["chunks"][1]);
  WriteFile(mp, j.dump());
  absl::StatusOr<Manifest> bad = store->GetManifest(m->id);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  EXPECT_NE(std::string(bad.status().message()).find("chunks_sha256"), std::string::npos) << bad.status();
  EXPECT_EQ(store->GetFile(m->id, (dir_ / "swapped").string()).code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(fs::exists(dir_ / "swapped"));

  // The same reordering in a manifest without the digest: every chunk
  // checks out, the whole file does not.
  j.erase("chunks_sha256");
  WriteFile(mp, j.dump());
  read = store->GetManifest(m->id);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_FALSE(read->chunk_list_sealed);
  absl::Status s = store->GetFile(m->id, (dir_ / "old").string());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(std::string(s.message()).find("hashes to"), std::string::npos) << s;
  EXPECT_FALSE(fs::exists(dir_ / "old"));
  EXPECT_EQ(store->GetBytes(m->id).status().code(), absl::StatusCode::kDataLoss);

  // Put back in order, the old-format manifest pulls whole.
  std::swap(j["chunks"][0], j["chunks"][1]);
  WriteFile(mp, j.dump());
  absl::StatusOr<std::string> back = store->GetBytes(m->id);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, data);
}

TEST_F(BlobStoreTest, BadUrisAndUnusableFolders) {
  for (const std::string uri : {"", "s3://bucket/x", "file://relative/path", "file:///a/../b", "root://",
                                "root://host", "root://host:1094/relative", "/just/a/path"}) {
    auto s = BlobStore::Open(uri);
    ASSERT_FALSE(s.ok()) << uri;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << uri << ": " << s.status();
    EXPECT_NE(std::string(s.status().message()).find("expected file:///"), std::string::npos) << s.status();
  }
  ChunkerOptions bad;
  bad.avg_size = 1000;
  EXPECT_EQ(BlobStore::Open("file://" + root_.string(), bad).status().code(), absl::StatusCode::kInvalidArgument);
  // A store below a regular file.
  WriteFile(dir_ / "plain", "x");
  auto s = BlobStore::Open("file://" + (dir_ / "plain" / "store").string());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("plain"), std::string::npos) << s.status();
  // Pushing what is not a regular file: a clear error, not a wait for a
  // writer that never comes.
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0644), 0);
  for (const fs::path& p : {dir_ / "fifo", dir_}) {
    absl::StatusOr<Manifest> m = store->PutFile(p.string());
    ASSERT_FALSE(m.ok()) << p;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
    EXPECT_NE(std::string(m.status().message()).find("not a regular file"), std::string::npos) << m.status();
  }
  // A server that is not there.
  auto r = BlobStore::Open("root://127.0.0.1:1//tmp/store");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(BlobStoreTest, GcRemovesWhatNoLiveManifestUsesAfterTheGracePeriod) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::string a = RandomBytes(1 << 20, 10), b = a;
  b.replace(100000, 200000, RandomBytes(200000, 11));
  absl::StatusOr<Manifest> ma = store->PutBytes(a), mb = store->PutBytes(b);
  ASSERT_TRUE(ma.ok() && mb.ok());
  size_t chunks_before = CountFiles(root_ / "chunks");

  // Everything is young: nothing goes.
  absl::StatusOr<GcReport> g = store->Gc({ma->id});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->chunks_removed + g->manifests_removed, 0u);

  // A live manifest that is not there stops gc before it removes anything.
  g = store->Gc({std::string(64, 'b')}, 0);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CountFiles(root_ / "chunks"), chunks_before);

  // Old enough: b's manifest and the chunks only b used go.
  AgeEverything(root_, 7200);
  g = store->Gc({ma->id}, 3600);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->manifests_removed, 1u);
  EXPECT_GT(g->chunks_removed, 0u);
  EXPECT_GT(g->bytes_freed, 0u);
  EXPECT_EQ(CountFiles(root_ / "chunks"), chunks_before - g->chunks_removed);
  EXPECT_FALSE(store->HasManifest(mb->id));
  absl::StatusOr<std::string> got = store->GetBytes(ma->id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, a);
  absl::StatusOr<FsckReport> r = store->Fsck({ma->id});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok());
  // Nothing live: everything goes.
  g = store->Gc({}, 3600);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(CountFiles(root_ / "chunks"), 0u);
  EXPECT_EQ(CountFiles(root_ / "manifests"), 0u);
}

TEST_F(BlobStoreTest, GcKeepsChunksAPushJustReused) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::string a = RandomBytes(1 << 20, 12);
  absl::StatusOr<Manifest> ma = store->PutBytes(a);
  ASSERT_TRUE(ma.ok());
  // The version was deleted long ago, its chunks are old garbage...
  AgeEverything(root_, 7200);
  // ...when a new push of the same bytes reuses them, before its metadata
  // commit (so gc does not see it as live).
  PutStats stats;
  ASSERT_TRUE(store->PutBytes(a, &stats).ok());
  EXPECT_EQ(stats.chunks_reused, stats.chunks_total);
  absl::StatusOr<GcReport> g = store->Gc({}, 3600);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->chunks_removed, 0u);
  EXPECT_EQ(g->manifests_removed, 0u);
  absl::StatusOr<std::string> got = store->GetBytes(ma->id);
  ASSERT_TRUE(got.ok()) << got.status();
}

// Mounts a tmpfs for the test; skips when mounting is not allowed.
class BlobStoreTmpfsTest : public BlobStoreTest {
 protected:
  void SetUp() override {
    BlobStoreTest::SetUp();
    mnt_ = dir_ / "mnt";
    fs::create_directories(mnt_);
    if (::mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=8m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(errno) << "); the full-disk test needs one";
    }
    mounted_ = true;
    root_ = mnt_ / "store";
  }
  void TearDown() override {
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
    BlobStoreTest::TearDown();
  }
  fs::path mnt_;
  bool mounted_ = false;
};

TEST_F(BlobStoreTmpfsTest, FullDiskIsAClearErrorAndLeavesNothingHalfVisible) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  absl::StatusOr<Manifest> small = store->PutBytes(RandomBytes(1 << 20, 20));
  ASSERT_TRUE(small.ok());
  std::string big = RandomBytes(12 << 20, 21);  // random: stored raw, more than the 8 MiB
  WriteFile(dir_ / "big.bin", big);
  absl::StatusOr<Manifest> m = store->PutFile((dir_ / "big.bin").string());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted) << m.status();
  EXPECT_NE(std::string(m.status().message()).find("No space left on device"), std::string::npos) << m.status();
  EXPECT_FALSE(store->HasManifest(Sha256Hex(big)));
  EXPECT_EQ(CountFiles(root_ / "tmp"), 0u);
  absl::StatusOr<FsckReport> r = store->Fsck({small->id});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok()) << r->problems[0];
  // Gc frees the orphaned chunks; the store works again.
  ASSERT_TRUE(store->Gc({small->id}, 0).ok());
  absl::StatusOr<Manifest> again = store->PutBytes(RandomBytes(1 << 20, 22));
  EXPECT_TRUE(again.ok()) << again.status();
  // Pulling onto the full device: a clear error, no destination file.
  std::string filler = (mnt_ / "filler").string();
  WriteFile(filler, std::string(8 << 20, 'f'));
  absl::Status s = store->GetFile(small->id, (mnt_ / "out.bin").string());
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_FALSE(fs::exists(mnt_ / "out.bin"));
}

TEST_F(BlobStoreTmpfsTest, ReadOnlyStoreRefusesPushesAndStillServesPulls) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::string data = RandomBytes(200 << 10, 30);
  absl::StatusOr<Manifest> m = store->PutBytes(data);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(::mount("tmpfs", mnt_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=8m"), 0) << std::strerror(errno);
  absl::StatusOr<Manifest> w = store->PutBytes(RandomBytes(200 << 10, 31));
  EXPECT_EQ(w.status().code(), absl::StatusCode::kPermissionDenied) << w.status();
  absl::StatusOr<std::string> got = store->GetBytes(m->id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, data);
  // A read-only store opens for pulls; a store that cannot be created does not.
  auto reopened = BlobStore::Open("file://" + root_.string(), Small());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  got = (*reopened)->GetBytes(m->id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, data);
  EXPECT_EQ((*reopened)->PutBytes("new bytes").status().code(), absl::StatusCode::kPermissionDenied);
  auto fresh = BlobStore::Open("file://" + (mnt_ / "other").string(), Small());
  EXPECT_EQ(fresh.status().code(), absl::StatusCode::kPermissionDenied) << fresh.status();
  EXPECT_NE(std::string(fresh.status().message()).find("Read-only file system"), std::string::npos);
}

TEST_F(BlobStoreTest, ConcurrentPushesThroughOneHandleShareChunksPlacedAhead) {
  // Four threads push through one store handle files of 24 MiB (more than
  // the file backend's 16 MiB between background syncfs-and-place rounds)
  // that share their first 20 MiB: a chunk one push wrote and the flusher
  // has not placed yet counts as present for the others, and every push
  // returns only once what it counted on is in place.
  auto store = OpenStore();
  ASSERT_TRUE(store);
  const std::string base = RandomBytes(20 << 20, 70);
  std::vector<std::string> files;
  for (int t = 0; t < 4; ++t) files.push_back(base + RandomBytes(4 << 20, 71 + t));
  std::vector<absl::StatusOr<Manifest>> got(files.size(), absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < files.size(); ++t) threads.emplace_back([&, t] { got[t] = store->PutBytes(files[t]); });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < files.size(); ++t) {
    ASSERT_TRUE(got[t].ok()) << got[t].status();
    EXPECT_EQ(got[t]->id, Sha256Hex(files[t]));
    // Every chunk is in place now, not in tmp/.
    for (const auto& c : got[t]->chunks) ASSERT_TRUE(fs::exists(ChunkPath(root_, c.id))) << c.id;
  }
  auto fresh = OpenStore();
  ASSERT_TRUE(fresh);
  for (size_t t = 0; t < files.size(); ++t) {
    absl::StatusOr<std::string> back = fresh->GetBytes(got[t]->id);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(*back == files[t]) << "file " << t;
  }
  absl::StatusOr<FsckReport> r = fresh->Fsck({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ok()) << r->problems[0];
}

TEST_F(BlobStoreTest, PushKilledAtRandomPointsLeavesAConsistentStore) {
  std::string data = RandomBytes(32 << 20, 40);
  data.replace(0, 8 << 20, std::string(8 << 20, 'z'));  // some compression work too
  WriteFile(dir_ / "big.bin", data);
  const std::string id = Sha256Hex(data);
  std::mt19937 rng(41);
  int killed = 0;
  for (int iter = 0; iter < 8; ++iter) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = BlobStore::Open("file://" + root_.string(), Small());
      if (!s.ok()) ::_exit(2);
      // A different tail each time, so every push has new chunks to write.
      std::string mine = data + RandomBytes(1 << 20, 100 + iter);
      auto m = (*s)->PutBytes(mine);
      if (!m.ok()) std::fprintf(stderr, "push failed: %s\n", m.status().ToString().c_str());
      ::_exit(m.ok() ? 0 : 1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(5, 400)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) ++killed;
    else ASSERT_EQ(WEXITSTATUS(status), 0);

    auto store = OpenStore();
    ASSERT_TRUE(store);
    absl::StatusOr<FsckReport> r = store->Fsck({});
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->ok()) << "after kill " << iter << ": " << r->problems[0];
    // Every manifest there is complete: its file reads back whole.
    for (const auto& e : fs::recursive_directory_iterator(root_ / "manifests")) {
      if (!e.is_regular_file()) continue;
      std::string mid = e.path().filename().string();
      absl::StatusOr<std::string> got = store->GetBytes(mid);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->substr(0, data.size()), data);
    }
  }
  EXPECT_GT(killed, 0);
  // A push after the crashes reuses what they left and completes.
  auto store = OpenStore();
  ASSERT_TRUE(store);
  PutStats stats;
  absl::StatusOr<Manifest> m = store->PutFile((dir_ / "big.bin").string(), &stats);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->id, id);
  EXPECT_GT(stats.chunks_reused, 0u);
  absl::StatusOr<FsckReport> r = store->Fsck({id});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok());
  // Gc clears what the killed pushes left (temporaries, unreferenced chunks).
  AgeEverything(root_, 7200);
  absl::StatusOr<GcReport> g = store->Gc({id}, 3600);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(CountFiles(root_ / "tmp"), 0u);
  EXPECT_EQ(CountFiles(root_ / "manifests"), 1u);
  absl::StatusOr<std::string> got = store->GetBytes(id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, data);
}

// --- root:// against a real xrootd --------------------------------------

int FreePort() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

bool Accepts(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(s);
  return ok;
}

// An xrootd exporting a writable temporary folder, as user nobody.
class XRootDServer {
 public:
  bool Start() {
    dir_ = fs::temp_directory_path() / ("hepml_blob_xrd_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "export");
    const passwd* pw = ::getpwnam("nobody");
    if (pw == nullptr) return false;
    (void)::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid);
    (void)::chown((dir_ / "export").c_str(), pw->pw_uid, pw->pw_gid);
    port_ = FreePort();
    std::string log = (dir_ / "xrootd.log").string();
    std::string port = std::to_string(port_);
    std::string exported = (dir_ / "export").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execlp("xrootd", "xrootd", "-R", "nobody", "-p", port.c_str(), "-l", log.c_str(), exported.c_str(),
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (Accepts(port_)) return true;
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  ~XRootDServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path Local(const std::string& name) const { return dir_ / "export" / name; }
  std::string Uri(const std::string& name) const {
    return "root://127.0.0.1:" + std::to_string(port_) + "/" + Local(name).string();
  }

 private:
  fs::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST(BlobStoreXRootD, PushPullFsckGcOnARealServer) {
  if (::getuid() != 0) GTEST_SKIP() << "xrootd is started as user nobody, which needs root";
  if (std::system("command -v xrootd > /dev/null") != 0) GTEST_SKIP() << "xrootd not installed";
  XRootDServer server;
  ASSERT_TRUE(server.Start()) << "xrootd did not start";
  auto opened = BlobStore::Open(server.Uri("store"), Small());
  ASSERT_TRUE(opened.ok()) << opened.status();
  BlobStore& store = **opened;
  fs::path root = server.Local("store");
  EXPECT_TRUE(fs::is_directory(root / "chunks"));

  std::string a = MixedBytes(2 << 20, 50), b = a;
  b.insert(1 << 20, "inserted");
  PutStats sa, sb;
  absl::StatusOr<Manifest> ma = store.PutBytes(a, &sa);
  ASSERT_TRUE(ma.ok()) << ma.status();
  absl::StatusOr<Manifest> mb = store.PutBytes(b, &sb);
  ASSERT_TRUE(mb.ok()) << mb.status();
  EXPECT_GE(sb.chunks_reused + 4, sb.chunks_total);
  EXPECT_EQ(CountFiles(root / "tmp"), 0u);

  fs::path tmp = fs::temp_directory_path() / ("hepml_blob_xrd_out_" + std::to_string(::getpid()));
  ASSERT_TRUE(store.GetFile(ma->id, tmp.string()).ok());
  EXPECT_EQ(ReadFile(tmp), a);
  fs::remove(tmp);
  absl::StatusOr<std::string> got = store.GetBytes(mb->id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, b);

  absl::StatusOr<FsckReport> r = store.Fsck({ma->id, mb->id});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ok()) << r->problems[0];
  EXPECT_EQ(r->manifests_checked, 2u);

  // A flipped byte on the server's disk: DataLoss naming the chunk.
  const std::string id = ma->chunks[5].id;
  fs::path cp = ChunkPath(root, id);
  std::string stored = ReadFile(cp);
  std::string flipped = stored;
  flipped[20] ^= 1;
  WriteFile(cp, flipped);
  got = store.GetBytes(ma->id);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(got.status().message()).find(id), std::string::npos) << got.status();
  r = store.Fsck({});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_NE(r->problems[0].find(id), std::string::npos);
  WriteFile(cp, stored);

  // Gc with the grace rule: a reuse refreshes the chunk's time on the server.
  AgeEverything(root, 7200);
  PutStats again;
  ASSERT_TRUE(store.PutBytes(a, &again).ok());
  EXPECT_EQ(again.chunks_reused, again.chunks_total);
  absl::StatusOr<GcReport> g = store.Gc({}, 3600);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->manifests_removed, 1u);  // b's, old; a's was just refreshed
  EXPECT_GT(g->chunks_removed, 0u);     // the chunks only b used
  got = store.GetBytes(ma->id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(store.HasManifest(mb->id));
  g = store.Gc({}, 0);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(CountFiles(root / "chunks"), 0u);
  EXPECT_EQ(CountFiles(root / "manifests"), 0u);
}

}  // namespace
}  // namespace hepml::registry
