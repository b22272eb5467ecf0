// resolve(tag, run) latency of the registry's metadata store with many
// validity intervals in one tag. Not a test: prints figures for
// docs/benchmarks.md ("Registry metadata").
//
//   registry_resolve_bench [--intervals 100000] [--lookups 200000] [--dir DIR]
//                          [--metadata postgresql://...]
//
// Builds a registry (SQLite in DIR, or the given metadata URI with blobs in
// DIR), pushes 10 versions of one model, adds N adjacent intervals of 10
// runs each through Registry::AddInterval (each its own transaction, with
// the overlap check), then times each Resolve(tag, run) call for random runs
// inside the covered range (and 1% outside it) through a second registry
// handle that has not seen the tag: its first call loads the tag's
// intervals (timed on its own), covered runs are then answered from them,
// runs outside every interval are asked of the database each time. Figures
// for all calls and for the two kinds apart.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "hepml/registry.h"

namespace {

double Percentile(std::vector<double>& v, double p) {
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t intervals = 100000, lookups = 200000;
  std::string dir = "/tmp/hepml_registry_bench", metadata;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--intervals")) intervals = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--lookups")) lookups = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--metadata")) metadata = argv[i + 1];
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  std::string model_path = (fs::path(dir) / "model.onnx").string();
  fs::copy_file(fs::path(HEPML_SOURCE_DIR) / "examples/models/trigger_mlp.onnx", model_path, ec);
  if (ec) {
    std::fprintf(stderr, "cannot copy the example model: %s\n", ec.message().c_str());
    return 1;
  }
  auto reg = metadata.empty()
                 ? hepml::registry::Registry::OpenDir((fs::path(dir) / "reg").string())
                 : hepml::registry::Registry::Open(metadata, "file://" + (fs::path(dir) / "blobs").string());
  if (!reg.ok()) {
    std::fprintf(stderr, "%s\n", std::string(reg.status().message()).c_str());
    return 1;
  }
  auto& r = **reg;
  if (!r.CreateModel("btag").ok()) return 1;
  for (int v = 0; v < 10; ++v) {
    if (!r.PushModelVersion("btag", {model_path}).ok()) return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < intervals; ++i) {
    hepml::registry::IntervalSpec s;
    s.first_run = 1 + i * 10;
    s.last_run = s.first_run + 9;
    auto st = r.AddInterval("bench", "btag", 1 + i % 10, s);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
      return 1;
    }
  }
  double fill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // A second handle, as a job that resolves runs would open it.
  auto reader = metadata.empty()
                    ? hepml::registry::Registry::OpenDir((fs::path(dir) / "reg").string())
                    : hepml::registry::Registry::Open(metadata, "file://" + (fs::path(dir) / "blobs").string());
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", std::string(reader.status().message()).c_str());
    return 1;
  }
  auto& q = **reader;
  auto f0 = std::chrono::steady_clock::now();
  if (!q.Resolve("bench", 1).ok()) return 1;
  double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - f0).count();

  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> run_dist(1, intervals * 10 + intervals / 10);
  std::vector<double> us, hit_us, miss_us;
  us.reserve(lookups);
  int64_t misses = 0, wrong = 0;
  for (int64_t i = 0; i < lookups; ++i) {
    int64_t run = run_dist(rng);
    auto a = std::chrono::steady_clock::now();
    auto iv = q.Resolve("bench", run);
    auto b = std::chrono::steady_clock::now();
    double t = std::chrono::duration<double, std::micro>(b - a).count();
    us.push_back(t);
    (iv.ok() ? hit_us : miss_us).push_back(t);
    if (!iv.ok()) ++misses;
    else if (iv->version != 1 + ((run - 1) / 10) % 10) ++wrong;
  }
  std::printf("backend %s\nintervals %lld (added in %.1f s, %.0f us each)\nlookups %lld (misses %lld, wrong %lld)\n",
              r.metadata_uri().substr(0, r.metadata_uri().find(':')).c_str(), static_cast<long long>(intervals),
              fill_s, fill_s * 1e6 / intervals, static_cast<long long>(lookups), static_cast<long long>(misses),
              static_cast<long long>(wrong));
  std::printf("first resolve of the tag (loads its intervals): %.1f ms\n", first_ms);
  auto report = [](const char* what, std::vector<double>& v) {
    if (v.empty()) return;
    double mean = 0;
    for (double x : v) mean += x;
    mean /= v.size();
    double p50 = Percentile(v, 0.50), p99 = Percentile(v, 0.99), p999 = Percentile(v, 0.999);
    double max = *std::max_element(v.begin(), v.end());
    std::printf("%s (%zu): mean %.1f p50 %.1f p99 %.1f p99.9 %.1f max %.1f\n", what, v.size(), mean, p50, p99,
                p999, max);
  };
  report("resolve latency us, all calls", us);
  report("resolve latency us, covered runs", hit_us);
  report("resolve latency us, runs no interval covers", miss_us);
  fs::remove_all(dir, ec);
  return wrong == 0 ? 0 : 1;
}
