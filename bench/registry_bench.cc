// The registry blob store's figures (bench/registry_bench.sh drives it):
//   registry_bench gen FILE MB               a model-like file: float32 weights ~ N(0, 0.05)
//   registry_bench dedup DIR MB VERSIONS     VERSIONS versions of an MB file, each changing 1% of
//                                            the bytes, pushed to file://DIR/store; prints the
//                                            stored bytes over one version's size
//   registry_bench push URI FILE             one push; prints seconds and stats (JSON)
//   registry_bench pull URI ID DEST          one pull; prints seconds (JSON)
//   registry_bench parts FILE [ROUNDS]       each stage of a push alone on one thread, over the
//                                            file in memory: the chunker's cuts, the paired
//                                            SHA-256 (file + chunk streams), one SHA-256 stream;
//                                            best and median GB/s of ROUNDS (default 5)
// Versions alternate: odd ones overwrite one contiguous 1% region in place
// (one layer retrained), even ones insert a 1% block at a random offset (a
// layer added), so every later offset shifts.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <iostream>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"

#include "registry/blob_store.h"
#include "registry/chunker.h"
#include "registry/sha256_pair.h"

namespace {

using hepml::registry::BlobStore;
using hepml::registry::Manifest;
using hepml::registry::PutStats;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Weights(size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> w(0.0f, 0.05f);
  std::string s(bytes, '\0');
  for (size_t i = 0; i + 4 <= bytes; i += 4) {
    float v = w(rng);
    std::memcpy(s.data() + i, &v, 4);
  }
  return s;
}

bool Write(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(out);
}

int Fail(const absl::Status& s) {
  std::cerr << "registry_bench: " << s << "\n";
  return 1;
}

}  // namespace

// REGISTRY_BENCH_THREADS, REGISTRY_BENCH_LEVEL and REGISTRY_BENCH_MIN_SAVING
// override the options, to see where the time goes.
hepml::registry::ChunkerOptions Options() {
  hepml::registry::ChunkerOptions o;
  if (const char* t = std::getenv("REGISTRY_BENCH_THREADS")) o.threads = std::atoi(t);
  if (const char* l = std::getenv("REGISTRY_BENCH_LEVEL")) o.zstd_level = std::atoi(l);
  if (const char* m = std::getenv("REGISTRY_BENCH_MIN_SAVING")) o.min_compression_saving = std::atof(m);
  return o;
}

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "gen" && argc == 4) {
    return Write(argv[2], Weights(std::stoull(argv[3]) << 20, 1)) ? 0 : 1;
  }
  if (mode == "dedup" && argc == 5) {
    std::string dir = argv[2];
    size_t size = std::stoull(argv[3]) << 20;
    int versions = std::stoi(argv[4]);
    auto store = BlobStore::Open("file://" + dir + "/store", Options());
    if (!store.ok()) return Fail(store.status());
    std::mt19937_64 rng(7);
    std::string data = Weights(size, 2);
    uint64_t stored = 0;
    std::unordered_map<std::string, uint64_t> unique;  // chunk id -> uncompressed size
    std::printf("%-8s %-9s %12s %8s %8s %14s\n", "version", "change", "bytes", "chunks", "reused", "stored bytes");
    for (int v = 0; v < versions; ++v) {
      const char* change = "first";
      if (v > 0) {
        size_t delta = size / 100;
        size_t at = std::uniform_int_distribution<size_t>(0, data.size() - delta)(rng);
        if (v % 2 == 1) {
          data.replace(at, delta, Weights(delta, 100 + v));
          change = "in place";
        } else {
          data.insert(at, Weights(delta, 100 + v));
          change = "insert";
        }
      }
      std::string path = dir + "/version.bin";
      if (!Write(path, data)) return Fail(absl::InternalError("cannot write " + path));
      PutStats stats;
      auto m = (*store)->PutFile(path, &stats);
      if (!m.ok()) return Fail(m.status());
      stored += stats.bytes_stored;
      for (const auto& c : m->chunks) unique.emplace(c.id, c.size);
      std::printf("%-8d %-9s %12zu %8lu %8lu %14lu\n", v, change, data.size(),
                  static_cast<unsigned long>(stats.chunks_total), static_cast<unsigned long>(stats.chunks_reused),
                  static_cast<unsigned long>(stats.bytes_stored));
    }
    uint64_t unique_raw = 0;
    for (const auto& [id, n] : unique) unique_raw += n;
    std::printf("stored bytes / one version's size (%zu): %.3f (compressed); unique chunk bytes before "
                "compression / size: %.3f\n",
                size, static_cast<double>(stored) / size, static_cast<double>(unique_raw) / size);
    return 0;
  }
  if (mode == "push" && argc == 4) {
    auto store = BlobStore::Open(argv[2], Options());
    if (!store.ok()) return Fail(store.status());
    PutStats stats;
    double t0 = Now();
    auto m = (*store)->PutFile(argv[3], &stats);
    double t = Now() - t0;
    if (!m.ok()) return Fail(m.status());
    std::printf("{\"seconds\": %.4f, \"id\": \"%s\", \"bytes\": %lu, \"chunks\": %lu, \"stored\": %lu}\n", t,
                m->id.c_str(), static_cast<unsigned long>(stats.bytes_in),
                static_cast<unsigned long>(stats.chunks_total), static_cast<unsigned long>(stats.bytes_stored));
    return 0;
  }
  if (mode == "pull" && argc == 5) {
    auto store = BlobStore::Open(argv[2], Options());
    if (!store.ok()) return Fail(store.status());
    double t0 = Now();
    absl::Status s = (*store)->GetFile(argv[3], argv[4]);
    double t = Now() - t0;
    if (!s.ok()) return Fail(s);
    std::printf("{\"seconds\": %.4f}\n", t);
    return 0;
  }
  if (mode == "parts" && (argc == 3 || argc == 4)) {
    std::ifstream in(argv[2], std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (data.empty()) return Fail(absl::InvalidArgumentError(absl::StrCat("cannot read ", argv[2])));
    const int rounds = argc == 4 ? std::max(1, std::atoi(argv[3])) : 5;
    const hepml::registry::ChunkerOptions options = Options();
    const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
    // The cut points, kept by the first stage for the hashing stages.
    std::vector<size_t> cuts;
    hepml::registry::Chunker chunker(options);
    auto time = [&](const char* name, const std::function<void()>& fn) {
      std::vector<double> t;
      for (int r = 0; r < rounds; ++r) {
        double t0 = Now();
        fn();
        t.push_back(Now() - t0);
      }
      std::sort(t.begin(), t.end());
      const double gb = static_cast<double>(data.size()) / 1e9;
      std::printf("%-28s %6.2f GB/s best, %6.2f median (%zu chunks)\n", name, gb / t.front(), gb / t[t.size() / 2],
                  cuts.size());
    };
    size_t sink = 0;
    time("cut", [&] {
      cuts.clear();
      for (size_t pos = 0; pos < data.size();) {
        pos += chunker.Cut(bytes + pos, data.size() - pos);
        cuts.push_back(pos);
      }
    });
    time("sha256 pair (file + chunks)", [&] {
      hepml::registry::Sha256Pair hash(true);
      size_t begin = 0;
      for (size_t end : cuts) {
        hash.UpdateBoth(std::string_view(data.data() + begin, end - begin));
        sink += hash.FinishChunk().size();
        begin = end;
      }
      sink += hash.FinishFile().size();
    });
    time("sha256 one stream", [&] {
      hepml::registry::Sha256Pair hash(true);
      hash.UpdateFile(data);
      sink += hash.FinishFile().size();
    });
    return sink == 0 ? 1 : 0;
  }
  std::cerr << "usage: registry_bench gen FILE MB | dedup DIR MB VERSIONS | push URI FILE | pull URI ID DEST | "
               "parts FILE [ROUNDS]\n";
  return 2;
}
