// Decode throughput of hepml's dataset readers: reads the chosen columns of
// a file REPEATS times, each time from a freshly opened Dataset (so every
// basket is read and decompressed again), and prints one JSON line with the
// read time only (opening excluded), entries/s and MB/s of the columns'
// uncompressed bytes. bench/data_throughput.sh runs it beside JSROOT.
//
//   data_bench FILE TREE COLUMNS REPEATS
//
// Batch mode (bench/data_hdf5_vs_h5py.sh): iterates all entries in batches
// of BATCH from one opened Dataset, READ_AHEAD batches decoded ahead (0: none),
// and prints the wall and CPU (user + sys, all threads) time of opening and
// the loop, and the bytes of the batches' values.
// COLUMNS may be "" for all.
//
//   data_bench --batches FILE TREE COLUMNS BATCH READ_AHEAD
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_split.h"
#include "hepml/data.h"

double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

int Batches(char** argv) {
  const double cpu0 = CpuSeconds();
  hepml::data::DatasetOptions options;
  options.tree = argv[2];
  // HEPML_GATHER_THREADS: DatasetOptions::gather_threads (default 0: automatic).
  if (const char* g = std::getenv("HEPML_GATHER_THREADS")) options.gather_threads = std::atoi(g);
  auto t0 = std::chrono::steady_clock::now();
  auto ds = hepml::data::Dataset::Open({argv[1]}, options);
  if (!ds.ok()) {
    std::fprintf(stderr, "%s\n", std::string(ds.status().message()).c_str());
    return 1;
  }
  hepml::data::BatchOptions bo;
  bo.columns = absl::StrSplit(argv[3], ',', absl::SkipEmpty());
  bo.batch_size = std::atoll(argv[4]);
  bo.read_ahead_batches = std::atoi(argv[5]);
  auto it = (*ds)->Batches(bo);
  hepml::data::Batch batch;
  int64_t entries = 0, bytes = 0;
  while (true) {
    auto more = it.Next(&batch);
    if (!more.ok()) {
      std::fprintf(stderr, "%s\n", std::string(more.status().message()).c_str());
      return 1;
    }
    if (!*more) break;
    entries += batch.num_entries;
    for (const auto& c : batch.columns) bytes += static_cast<int64_t>(c.values.nbytes());
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"seconds\": %.6f, \"cpu_seconds\": %.6f, \"entries\": %lld, \"bytes\": %lld}\n", seconds,
              CpuSeconds() - cpu0, static_cast<long long>(entries), static_cast<long long>(bytes));
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 7 && std::string(argv[1]) == "--batches") return Batches(argv + 1);
  if (argc != 5) {
    std::fprintf(stderr, "usage: data_bench FILE TREE COLUMNS REPEATS\n");
    return 2;
  }
  std::string file = argv[1], tree = argv[2];
  std::vector<std::string> columns = absl::StrSplit(argv[3], ',', absl::SkipEmpty());
  int repeats = std::atoi(argv[4]);
  double seconds = 0;
  int64_t entries = 0, bytes = 0;
  for (int r = 0; r < repeats; ++r) {
    hepml::data::DatasetOptions options;
    options.tree = tree;
    auto ds = hepml::data::Dataset::Open({file}, options);
    if (!ds.ok()) {
      std::fprintf(stderr, "%s\n", std::string(ds.status().message()).c_str());
      return 1;
    }
    if (r == 0) {
      for (const std::string& c : columns) {
        int i = (*ds)->schema().IndexOf(c);
        if (i < 0) {
          std::fprintf(stderr, "no column %s\n", c.c_str());
          return 1;
        }
        bytes += (*ds)->schema().columns[i].uncompressed_bytes;
      }
    }
    hepml::data::ReadOptions ro;
    ro.columns = columns;
    auto t0 = std::chrono::steady_clock::now();
    auto batch = (*ds)->Read(0, (*ds)->num_entries(), ro);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!batch.ok()) {
      std::fprintf(stderr, "%s\n", std::string(batch.status().message()).c_str());
      return 1;
    }
    entries += batch->num_entries;
  }
  std::printf("{\"seconds\": %.6f, \"entries\": %lld, \"bytes\": %lld}\n", seconds,
              static_cast<long long>(entries), static_cast<long long>(bytes) * repeats);
  return 0;
}
