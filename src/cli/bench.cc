// `hepml bench MODEL.onnx [--input NAME=FILE.npy ...] [--batch B] [--dim NAME=V ...]
//  [--threads T] [--iterations N] [--warmup W] [--json] [--profile [--trace FILE.json]]
//  [--sweep 1,4,16 --html FILE.html] [--disable-pass NAME ...] [--precision fp32|fp16|bf16]
//  [--batch-split on|off] [--slice-spin-us US]`
//
// Latency and throughput of one model. Without inputs it makes random ones of
// the right dtype: a symbolic first dimension is the batch B, other symbolic
// dimensions come from --dim. Timings are wall-clock medians over the
// iterations; cpu_us_per_call is the process's CPU time (every thread,
// spinning workers included) over the timed runs divided by their number;
// peak_rss_mib is the process's high-water mark (VmHWM); weight_mib what the
// Session holds of the model's initializers. batch_slices: how many slices
// of rows a call ran as (SessionOptions::batch_split).
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include <time.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/commands.h"
#include "common/npy.h"
#include "hepml/session.h"
#include "nlohmann/json.hpp"

namespace hepml::cli {
namespace {

using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  std::vector<std::string> inputs;
  std::vector<std::string> dims;
  int64_t batch = 1;
  int threads = 1;
  int iterations = 100;
  int warmup = 10;
  bool json = false;
  bool profile = false;
  std::string trace;
  std::string sweep;
  std::string html;
  uint64_t seed = 1;
  std::vector<std::string> disabled_passes;
  std::string precision = "fp32";
  std::string batch_split = "on";
  int slice_spin_us = -1;
};

// CPU time of the whole process (all threads), in seconds.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double PeakRssMib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      int64_t kb = 0;
      absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(absl::StripAsciiWhitespace(line.substr(6)), "kB")), &kb);
      return static_cast<double>(kb) / 1024.0;
    }
  }
  return 0;
}

absl::StatusOr<Tensor> RandomTensor(const TensorInfo& info, int64_t batch,
                                    const std::map<std::string, int64_t>& dims, std::mt19937_64& rng) {
  if (info.kind != "tensor") {
    return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' is a ", info.kind, "; give it with --input"));
  }
  if (!info.has_shape) {
    return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' has no declared shape; give it with --input"));
  }
  Shape shape;
  for (size_t d = 0; d < info.shape.size(); ++d) {
    if (info.shape[d] >= 0) {
      shape.push_back(info.shape[d]);
      continue;
    }
    const std::string& name = info.dim_names[d];
    auto it = dims.find(name);
    if (!name.empty() && it != dims.end()) shape.push_back(it->second);
    else if (d == 0) shape.push_back(batch);
    else {
      return absl::InvalidArgumentError(absl::StrCat(
          "dimension ", d, " ('", name.empty() ? "?" : name, "') of input '", info.name,
          "' is not fixed: give --dim ", name.empty() ? "NAME" : name, "=VALUE or the input itself"));
    }
  }
  Tensor t = Tensor::Empty(info.dtype, shape);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  std::uniform_int_distribution<int> small(0, 9);
  const int64_t n = t.size();
  switch (info.dtype) {
    case DType::kFloat32: for (int64_t i = 0; i < n; ++i) t.mutable_data<float>()[i] = uni(rng); break;
    case DType::kFloat64: for (int64_t i = 0; i < n; ++i) t.mutable_data<double>()[i] = uni(rng); break;
    case DType::kFloat16: for (int64_t i = 0; i < n; ++i) t.mutable_data<Float16>()[i] = Float16(uni(rng)); break;
    case DType::kBFloat16: for (int64_t i = 0; i < n; ++i) t.mutable_data<BFloat16>()[i] = BFloat16(uni(rng)); break;
    case DType::kBool: for (int64_t i = 0; i < n; ++i) t.mutable_data<bool>()[i] = small(rng) < 5; break;
    case DType::kInt64: for (int64_t i = 0; i < n; ++i) t.mutable_data<int64_t>()[i] = small(rng); break;
    case DType::kInt32: for (int64_t i = 0; i < n; ++i) t.mutable_data<int32_t>()[i] = small(rng); break;
    case DType::kInt8: for (int64_t i = 0; i < n; ++i) t.mutable_data<int8_t>()[i] = static_cast<int8_t>(small(rng)); break;
    case DType::kUInt8: for (int64_t i = 0; i < n; ++i) t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(small(rng)); break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "': no random data for ",
                                                     DTypeName(info.dtype), "; give it with --input"));
  }
  return t;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

struct BenchResult {
  int64_t batch = 0;
  std::vector<double> latencies_us;
  double total_s = 0;
  std::map<std::string, double> op_ns;  // per operator, summed over profiled runs
  std::map<std::string, std::pair<std::string, double>> node_ns;  // node -> (op, ns)
  RunProfile last_profile;
  int profiled_runs = 0;
  double cpu_s = 0;      // process CPU time over the timed runs
  int batch_slices = 1;  // of an untimed call after the warmup
};

absl::StatusOr<BenchResult> RunBench(const Session& session, const Args& a, int64_t batch,
                                     const Session::NamedTensors& given,
                                     const std::map<std::string, int64_t>& dims) {
  std::mt19937_64 rng(a.seed);
  Session::NamedTensors feed = given;
  for (const TensorInfo& info : session.inputs()) {
    bool provided = std::any_of(given.begin(), given.end(), [&](const auto& p) { return p.first == info.name; });
    if (provided) continue;
    HEPML_ASSIGN_OR_RETURN(Tensor t, RandomTensor(info, batch, dims, rng));
    feed.emplace_back(info.name, std::move(t));
  }
  BenchResult r;
  r.batch = batch;
  for (int i = 0; i < a.warmup; ++i) {
    auto out = session.Run(feed);
    if (!out.ok()) return out.status();
  }
  RunProfile profile;
  {
    auto out = session.Run(feed, {}, &profile);  // how the calls run: batch slices
    if (!out.ok()) return out.status();
    r.batch_slices = profile.batch_slices;
  }
  const double cpu_start = ProcessCpuSeconds();
  auto t_start = Clock::now();
  for (int i = 0; i < a.iterations; ++i) {
    auto t0 = Clock::now();
    auto out = session.Run(feed, {}, a.profile ? &profile : nullptr);
    auto t1 = Clock::now();
    if (!out.ok()) return out.status();
    r.latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    if (a.profile) {
      for (const ProfileEvent& e : profile.events) {
        r.op_ns[e.op_type] += static_cast<double>(e.duration_ns);
        auto& node = r.node_ns[e.node];
        node.first = e.op_type;
        node.second += static_cast<double>(e.duration_ns);
      }
      ++r.profiled_runs;
    }
  }
  r.total_s = std::chrono::duration<double>(Clock::now() - t_start).count();
  r.cpu_s = ProcessCpuSeconds() - cpu_start;
  r.last_profile = profile;
  return r;
}

ordered_json LatencyJson(const BenchResult& r) {
  double mean = 0;
  for (double v : r.latencies_us) mean += v;
  mean /= std::max<size_t>(1, r.latencies_us.size());
  return {{"p50", Percentile(r.latencies_us, 50)}, {"p90", Percentile(r.latencies_us, 90)},
          {"p99", Percentile(r.latencies_us, 99)}, {"mean", mean}};
}

double Throughput(const BenchResult& r) {
  return r.total_s > 0 ? static_cast<double>(r.batch) * static_cast<double>(r.latencies_us.size()) / r.total_s : 0;
}

ordered_json ProfileJson(const BenchResult& r) {
  double total = 0;
  for (const auto& [op, ns] : r.op_ns) total += ns;
  ordered_json ops = ordered_json::array();
  std::vector<std::pair<double, std::string>> sorted;
  for (const auto& [op, ns] : r.op_ns) sorted.emplace_back(ns, op);
  std::sort(sorted.rbegin(), sorted.rend());
  double runs = std::max(1, r.profiled_runs);
  for (const auto& [ns, op] : sorted) {
    ops.push_back({{"op", op}, {"mean_us", ns / runs / 1e3}, {"share", total > 0 ? ns / total : 0}});
  }
  std::vector<std::tuple<double, std::string, std::string>> nodes;
  for (const auto& [node, v] : r.node_ns) nodes.emplace_back(v.second, node, v.first);
  std::sort(nodes.rbegin(), nodes.rend());
  ordered_json node_list = ordered_json::array();
  for (const auto& [ns, node, op] : nodes) {
    node_list.push_back({{"node", node}, {"op", op}, {"mean_us", ns / runs / 1e3}, {"share", total > 0 ? ns / total : 0}});
  }
  return {{"operators", ops}, {"nodes", node_list}};
}

void PrintProfileTable(const BenchResult& r) {
  ordered_json p = ProfileJson(r);
  std::cout << "per operator (mean per run):\n";
  for (const auto& row : p["operators"]) {
    std::printf("  %-28s %10.2f us  %5.1f%%\n", row["op"].get<std::string>().c_str(), row["mean_us"].get<double>(),
                100 * row["share"].get<double>());
  }
  std::cout << "per node (top 20):\n";
  int shown = 0;
  for (const auto& row : p["nodes"]) {
    if (shown++ == 20) break;
    std::printf("  %-40s %-16s %10.2f us  %5.1f%%\n", row["node"].get<std::string>().substr(0, 40).c_str(),
                row["op"].get<std::string>().c_str(), row["mean_us"].get<double>(), 100 * row["share"].get<double>());
  }
}

absl::Status WriteTrace(const std::string& path, const RunProfile& profile) {
  ordered_json events = ordered_json::array();
  for (const ProfileEvent& e : profile.events) {
    events.push_back({{"name", e.node}, {"cat", e.op_type}, {"ph", "X"}, {"ts", e.start_ns / 1e3},
                      {"dur", e.duration_ns / 1e3}, {"pid", 1}, {"tid", 1 + e.depth},
                      {"args", {{"op", e.op_type}}}});
  }
  std::ofstream out(path);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
  out << ordered_json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump();
  return out ? absl::OkStatus() : absl::ResourceExhaustedError(absl::StrCat(path, ": write failed"));
}

// A self-contained page: latency and throughput against batch size, and each
// operator's share of the time per batch size, as inline SVG.
std::string SweepHtml(const std::string& model, const std::vector<BenchResult>& results, int threads) {
  auto line_chart = [&](const std::string& title, const std::string& unit, auto value) {
    const double w = 520, h = 260, left = 60, bottom = 40, top = 20, right = 20;
    double ymax = 0;
    for (const auto& r : results) ymax = std::max(ymax, value(r));
    if (ymax <= 0) ymax = 1;
    std::string svg = absl::StrCat("<figure><figcaption>", title, "</figcaption><svg width='", w, "' height='", h,
                                   "' xmlns='http://www.w3.org/2000/svg' font-size='11'>");
    absl::StrAppend(&svg, "<line x1='", left, "' y1='", h - bottom, "' x2='", w - right, "' y2='", h - bottom, "' stroke='#444'/>");
    absl::StrAppend(&svg, "<line x1='", left, "' y1='", top, "' x2='", left, "' y2='", h - bottom, "' stroke='#444'/>");
    std::string points;
    for (size_t i = 0; i < results.size(); ++i) {
      double x = left + (w - left - right) * (results.size() == 1 ? 0.5 : static_cast<double>(i) / (results.size() - 1));
      double y = h - bottom - (h - top - bottom) * value(results[i]) / ymax;
      absl::StrAppend(&points, x, ",", y, " ");
      absl::StrAppend(&svg, "<circle cx='", x, "' cy='", y, "' r='3' fill='#1f77b4'><title>batch ", results[i].batch,
                      ": ", value(results[i]), " ", unit, "</title></circle>");
      absl::StrAppend(&svg, "<text x='", x, "' y='", h - bottom + 15, "' text-anchor='middle'>", results[i].batch, "</text>");
    }
    absl::StrAppend(&svg, "<polyline fill='none' stroke='#1f77b4' stroke-width='2' points='", points, "'/>");
    for (int k = 0; k <= 4; ++k) {
      double v = ymax * k / 4, y = h - bottom - (h - top - bottom) * k / 4;
      absl::StrAppend(&svg, "<text x='", left - 5, "' y='", y + 4, "' text-anchor='end'>", absl::StrFormat("%.3g", v), "</text>");
    }
    absl::StrAppend(&svg, "<text x='", (w + left) / 2, "' y='", h - 5, "' text-anchor='middle'>batch size</text>");
    absl::StrAppend(&svg, "<text x='12' y='", top + 5, "'>", unit, "</text></svg></figure>");
    return svg;
  };
  std::string html = absl::StrCat(
      "<!DOCTYPE html><html><head><meta charset='utf-8'><title>hepml bench: ", model,
      "</title><style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;margin:1em}"
      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>",
      "<h1>hepml bench</h1><p>model <code>", model, "</code>, ", threads, " thread(s)</p>");
  absl::StrAppend(&html, line_chart("p50 latency", "us", [](const BenchResult& r) { return Percentile(r.latencies_us, 50); }));
  absl::StrAppend(&html, line_chart("throughput", "samples/s", [](const BenchResult& r) { return Throughput(r); }));
  absl::StrAppend(&html, "<h2>Results</h2><table><tr><th>batch</th><th>p50 us</th><th>p90 us</th><th>p99 us</th><th>samples/s</th></tr>");
  for (const auto& r : results) {
    absl::StrAppend(&html, "<tr><td>", r.batch, "</td><td>", absl::StrFormat("%.1f", Percentile(r.latencies_us, 50)),
                    "</td><td>", absl::StrFormat("%.1f", Percentile(r.latencies_us, 90)), "</td><td>",
                    absl::StrFormat("%.1f", Percentile(r.latencies_us, 99)), "</td><td>",
                    absl::StrFormat("%.0f", Throughput(r)), "</td></tr>");
  }
  absl::StrAppend(&html, "</table><h2>Share of time per operator</h2>");
  // Stacked bars: one per batch size.
  std::vector<std::string> ops;
  for (const auto& r : results)
    for (const auto& [op, ns] : r.op_ns)
      if (std::find(ops.begin(), ops.end(), op) == ops.end()) ops.push_back(op);
  static const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  const double bar_w = 40, gap = 20, h = 240;
  absl::StrAppend(&html, "<svg width='", 80 + results.size() * (bar_w + gap) + 260, "' height='", h + 40,
                  "' xmlns='http://www.w3.org/2000/svg' font-size='11'>");
  for (size_t i = 0; i < results.size(); ++i) {
    double total = 0;
    for (const auto& [op, ns] : results[i].op_ns) total += ns;
    double y = h;
    double x = 40 + i * (bar_w + gap);
    for (size_t k = 0; k < ops.size(); ++k) {
      auto it = results[i].op_ns.find(ops[k]);
      double share = (it == results[i].op_ns.end() || total <= 0) ? 0 : it->second / total;
      double bh = share * (h - 10);
      y -= bh;
      absl::StrAppend(&html, "<rect x='", x, "' y='", y, "' width='", bar_w, "' height='", bh, "' fill='",
                      kColors[k % 10], "'><title>", ops[k], ": ", absl::StrFormat("%.1f", 100 * share),
                      "%</title></rect>");
    }
    absl::StrAppend(&html, "<text x='", x + bar_w / 2, "' y='", h + 15, "' text-anchor='middle'>", results[i].batch, "</text>");
  }
  double lx = 60 + results.size() * (bar_w + gap);
  for (size_t k = 0; k < ops.size(); ++k) {
    absl::StrAppend(&html, "<rect x='", lx, "' y='", 10 + k * 16, "' width='10' height='10' fill='", kColors[k % 10],
                    "'/><text x='", lx + 15, "' y='", 19 + k * 16, "'>", ops[k], "</text>");
  }
  absl::StrAppend(&html, "</svg></body></html>\n");
  return html;
}

int RunBenchCommand(Args a) {
  std::map<std::string, int64_t> dims;
  for (const std::string& spec : a.dims) {
    std::vector<std::string> kv = absl::StrSplit(spec, '=');
    int64_t v;
    if (kv.size() != 2 || !absl::SimpleAtoi(kv[1], &v) || v < 0) {
      PrintError("bench", absl::StrCat("--dim '", spec, "': expected NAME=VALUE"));
      return kExitUsage;
    }
    dims[kv[0]] = v;
  }
  std::vector<int64_t> sweep;
  if (!a.sweep.empty()) {
    for (absl::string_view s : absl::StrSplit(a.sweep, ',')) {
      int64_t b;
      if (!absl::SimpleAtoi(s, &b) || b <= 0) {
        PrintError("bench", absl::StrCat("--sweep '", a.sweep, "': expected batch sizes like 1,4,16"));
        return kExitUsage;
      }
      sweep.push_back(b);
    }
    a.profile = true;  // the page shows operator shares
  }
  SessionOptions options;
  options.num_threads = a.threads;
  if (a.batch_split != "on" && a.batch_split != "off") {
    PrintError("bench", absl::StrCat("--batch-split '", a.batch_split, "': expected on or off"));
    return kExitUsage;
  }
  options.batch_split = a.batch_split == "on";
  options.slice_spin_us = a.slice_spin_us;
  options.disabled_passes.insert(a.disabled_passes.begin(), a.disabled_passes.end());
  auto precision = ParsePrecision(a.precision);
  if (!precision.ok()) {
    PrintError("bench", absl::StrCat("--precision: ", precision.status().message()));
    return kExitUsage;
  }
  options.precision = *precision;
  auto t0 = Clock::now();
  auto session = Session::Create(a.model, options);
  double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!session.ok()) {
    PrintError("bench", session.status().message());
    return kExitFailure;
  }
  Session::NamedTensors given;
  for (const std::string& spec : a.inputs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      PrintError("bench", absl::StrCat("--input '", spec, "': expected NAME=FILE.npy"));
      return kExitUsage;
    }
    auto t = ReadNpy(spec.substr(eq + 1));
    if (!t.ok()) {
      PrintError("bench", t.status().message());
      return kExitFailure;
    }
    given.emplace_back(spec.substr(0, eq), std::move(*t));
  }
  if (sweep.empty()) sweep.push_back(a.batch);
  std::vector<BenchResult> results;
  for (int64_t b : sweep) {
    auto r = RunBench(**session, a, b, given, dims);
    if (!r.ok()) {
      PrintError("bench", r.status().message());
      return kExitFailure;
    }
    results.push_back(std::move(*r));
  }
  if (!a.trace.empty()) {
    absl::Status st = WriteTrace(a.trace, results.back().last_profile);
    if (!st.ok()) {
      PrintError("bench", st.message());
      return kExitFailure;
    }
  }
  if (!a.html.empty()) {
    std::ofstream out(a.html);
    out << SweepHtml(a.model, results, a.threads);
    if (!out) {
      PrintError("bench", absl::StrCat(a.html, ": cannot write"));
      return kExitFailure;
    }
  }
  double rss = PeakRssMib();
  double weight_mib = static_cast<double>((*session)->weight_bytes()) / (1024.0 * 1024.0);
  const BatchSplitInfo& split = (*session)->batch_split();
  if (a.json) {
    auto one = [&](const BenchResult& r) {
      ordered_json j{{"model", a.model}, {"batch", r.batch}, {"threads", a.threads},
                     {"iterations", a.iterations}, {"precision", a.precision}, {"load_ms", load_ms}, {"latency_us", LatencyJson(r)},
                     {"throughput_per_s", Throughput(r)}, {"peak_rss_mib", rss},
                     {"weight_mib", weight_mib},
                     {"cpu_us_per_call", 1e6 * r.cpu_s / std::max<size_t>(1, r.latencies_us.size())},
                     {"batch_slices", r.batch_slices},
                     {"batch_separable", split.separable}};
      if (!split.separable) j["batch_split_reason"] = split.reason;
      if (a.profile) j["profile"] = ProfileJson(r);
      return j;
    };
    if (results.size() == 1) {
      std::cout << one(results[0]).dump(2) << std::endl;
    } else {
      ordered_json arr = ordered_json::array();
      for (const auto& r : results) arr.push_back(one(r));
      std::cout << arr.dump(2) << std::endl;
    }
    return kExitOk;
  }
  for (const auto& r : results) {
    std::printf("model %s  batch %lld  threads %d  iterations %d  precision %s\n", a.model.c_str(),
                static_cast<long long>(r.batch), a.threads, a.iterations, a.precision.c_str());
    std::printf("  load %.1f ms  latency p50 %.1f us  p90 %.1f us  p99 %.1f us  throughput %.0f /s  peak RSS %.1f MiB"
                "  weights %.2f MiB\n",
                load_ms, Percentile(r.latencies_us, 50), Percentile(r.latencies_us, 90),
                Percentile(r.latencies_us, 99), Throughput(r), rss, weight_mib);
    std::printf("  cpu %.1f us/call  batch slices %d%s\n",
                1e6 * r.cpu_s / std::max<size_t>(1, r.latencies_us.size()), r.batch_slices,
                split.separable ? "" : absl::StrCat(" (not separable: ", split.reason, ")").c_str());
    if (a.profile) PrintProfileTable(r);
  }
  return kExitOk;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("bench", "Measure a model's latency, throughput and memory");
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "ONNX model file")->required();
  cmd->add_option("--input,-i", a->inputs, "NAME=FILE.npy (used as given; others are random)");
  cmd->add_option("--batch,-b", a->batch, "Batch size for symbolic first dimensions")->check(CLI::PositiveNumber);
  cmd->add_option("--dim", a->dims, "NAME=VALUE for other symbolic dimensions");
  cmd->add_option("--threads,-t", a->threads, "Intra-op threads")->check(CLI::PositiveNumber);
  cmd->add_option("--iterations,-n", a->iterations, "Timed runs")->check(CLI::PositiveNumber);
  cmd->add_option("--warmup,-w", a->warmup, "Untimed runs first")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", a->json, "Print one JSON object (an array with --sweep)");
  cmd->add_flag("--profile", a->profile, "Time every node; per-operator and per-node tables");
  cmd->add_option("--trace", a->trace, "Write a Chrome trace (chrome://tracing, Perfetto) of the last run");
  cmd->add_option("--sweep", a->sweep, "Batch sizes to sweep, e.g. 1,4,16,64,256");
  cmd->add_option("--html", a->html, "With --sweep: write a self-contained HTML report");
  cmd->add_option("--seed", a->seed, "Seed of the random inputs");
  cmd->add_option("--disable-pass", a->disabled_passes, "Graph pass to switch off (repeatable), e.g. fuse-gelu");
  cmd->add_option("--batch-split", a->batch_split,
                  "on (default): with several threads, run a separable model's batch as one slice per thread; off: split each operator")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--slice-spin-us", a->slice_spin_us,
                  "How long the threads of a call's batch slices wait for the next call (SessionOptions::slice_spin_us; "
                  "default 50; 0: they go back to the arena at once)")
      ->check(CLI::Range(-1, 1000000));
  cmd->add_option("--precision", a->precision, "fp32, or fp16/bf16: mixed precision (see hepml run)");
  cmd->callback([=] { *exit_code = RunBenchCommand(*a); });
}

}  // namespace hepml::cli
