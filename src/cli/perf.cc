// `hepml perf -m MODEL [-x VERSION] [-u HOST:PORT] [-i http|grpc]
//  [--concurrency-range A:B:xF|A:B:S] [--batch-size B] [--input NAME=FILE.npy ...]
//  [--measurement-interval MS] [--seed S] [--json]`
//
// A closed-loop load generator for KServe v2 / Triton servers, after Triton's
// perf_analyzer: for each concurrency level C, C clients (each a thread with
// its own connection) send one request after another for a warm-up and then
// one measurement window. Reported per level: the requests completed in the
// window, throughput (inferences/s = requests/s x batch size), client-side
// latency (average and p50/p90/p95/p99), and the server's own split of its
// request time (queue, compute input/infer/output) from the difference of
// the model's statistics before and after the window.
//
// Inputs are random, of the datatype and shape of the model's metadata (a
// variable first dimension is the batch size), unless given as .npy files.
// A request that fails is counted as an error of its level; the run goes on
// and exits 1 at the end with the first error's message.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "common/npy.h"
#include "hepml/tensor.h"
#include "nlohmann/json.hpp"
#include "serve/client/client.h"
#include "serve/model_config.h"
#include "serve/tensor_codec.h"

namespace hepml::cli {
namespace {

using nlohmann::ordered_json;
namespace client = serve::client;
using client::InferenceClient;
using Clock = std::chrono::steady_clock;

// Most concurrent clients (threads) of one level.
constexpr int kMaxConcurrency = 1024;

struct PerfArgs {
  std::string model;
  std::string version;
  std::string url;
  std::string protocol = "http";
  std::string concurrency_range = "1";
  int64_t batch_size = 0;  // 0: not given (1, or the rows of --input files)
  std::vector<std::string> inputs;
  int measurement_interval_ms = 5000;
  uint64_t seed = 1;
  bool json = false;
};

// "A", "A:B" (step 1), "A:B:S" (step S) or "A:B:xF" (times F).
absl::StatusOr<std::vector<int>> ParseConcurrencyRange(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("--concurrency-range '", text, "': ", why));
  };
  std::vector<std::string> parts = absl::StrSplit(text, ':');
  if (parts.size() > 3) return bad("expected A, A:B, A:B:STEP or A:B:xFACTOR");
  int start = 0, end = 0, step = 1, factor = 0;
  if (!absl::SimpleAtoi(parts[0], &start) || start < 1) return bad("the start is not a positive integer");
  end = start;
  if (parts.size() >= 2 && (!absl::SimpleAtoi(parts[1], &end) || end < start))
    return bad("the end is not an integer at least the start");
  if (parts.size() == 3) {
    if (absl::StartsWith(parts[2], "x")) {
      if (!absl::SimpleAtoi(parts[2].substr(1), &factor) || factor < 2) return bad("the factor is not an integer >= 2");
    } else if (!absl::SimpleAtoi(parts[2], &step) || step < 1) {
      return bad("the step is not a positive integer (xF for a factor)");
    }
  }
  if (end > kMaxConcurrency) return bad(absl::StrCat("at most ", kMaxConcurrency, " concurrent clients"));
  std::vector<int> levels;
  for (int c = start; c <= end; c = factor ? c * factor : c + step) levels.push_back(c);
  return levels;
}

template <typename T, typename Gen>
void Fill(Tensor& t, Gen gen) {
  T* p = t.mutable_data<T>();
  for (int64_t i = 0; i < t.size(); ++i) p[i] = gen();
}

absl::StatusOr<Tensor> RandomInput(const client::TensorMetadata& meta, DType dtype, const Shape& shape,
                                   std::mt19937_64& rng) {
  Tensor t = Tensor::Empty(dtype, shape);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  std::uniform_int_distribution<int> small(0, 9);
  switch (dtype) {
    case DType::kFloat32: Fill<float>(t, [&] { return uni(rng); }); break;
    case DType::kFloat64: Fill<double>(t, [&] { return uni(rng); }); break;
    case DType::kFloat16: Fill<Float16>(t, [&] { return Float16(uni(rng)); }); break;
    case DType::kBFloat16: Fill<BFloat16>(t, [&] { return BFloat16(uni(rng)); }); break;
    case DType::kBool: Fill<bool>(t, [&] { return small(rng) < 5; }); break;
    case DType::kInt8: Fill<int8_t>(t, [&] { return static_cast<int8_t>(small(rng)); }); break;
    case DType::kInt16: Fill<int16_t>(t, [&] { return static_cast<int16_t>(small(rng)); }); break;
    case DType::kInt32: Fill<int32_t>(t, [&] { return small(rng); }); break;
    case DType::kInt64: Fill<int64_t>(t, [&] { return small(rng); }); break;
    case DType::kUInt8: Fill<uint8_t>(t, [&] { return static_cast<uint8_t>(small(rng)); }); break;
    case DType::kUInt16: Fill<uint16_t>(t, [&] { return static_cast<uint16_t>(small(rng)); }); break;
    case DType::kUInt32: Fill<uint32_t>(t, [&] { return static_cast<uint32_t>(small(rng)); }); break;
    case DType::kUInt64: Fill<uint64_t>(t, [&] { return static_cast<uint64_t>(small(rng)); }); break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("input '", meta.name, "': no random data for ", meta.datatype,
                                                     "; give it with --input ", meta.name, "=FILE.npy"));
  }
  return t;
}

template <typename Dims>
std::string ShapeText(const Dims& shape) { return absl::StrCat("[", absl::StrJoin(shape, ","), "]"); }

struct InputPlan {
  client::InferRequest request;
  int64_t batch_size = 1;
  ordered_json description = ordered_json::array();
};

// The request every client sends: inputs from files where given, random ones
// of the metadata's datatype and shape otherwise.
absl::StatusOr<InputPlan> PlanInputs(const PerfArgs& args, const client::ModelMetadata& meta) {
  InputPlan plan;
  plan.request.model = args.model;
  plan.request.version = args.version;
  std::map<std::string, std::pair<std::string, Tensor>> given;
  for (const std::string& spec : args.inputs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      return absl::InvalidArgumentError(absl::StrCat("--input '", spec, "': expected NAME=FILE.npy"));
    std::string name = spec.substr(0, eq), path = spec.substr(eq + 1);
    bool known = std::any_of(meta.inputs.begin(), meta.inputs.end(), [&](const auto& t) { return t.name == name; });
    if (!known) {
      std::vector<std::string> names;
      for (const auto& t : meta.inputs) names.push_back(t.name);
      return absl::InvalidArgumentError(absl::StrCat("--input '", spec, "': model '", args.model,
                                                     "' has no input '", name, "' (inputs: ",
                                                     absl::StrJoin(names, ", "), ")"));
    }
    HEPML_ASSIGN_OR_RETURN(Tensor t, ReadNpy(path));
    given[name] = {path, std::move(t)};
  }
  // Triton reports the batch dimension of a batching model as -1 on every input.
  bool batching = !meta.inputs.empty() && std::all_of(meta.inputs.begin(), meta.inputs.end(), [](const auto& t) {
    return !t.shape.empty() && t.shape[0] == -1;
  });
  int64_t batch = args.batch_size;
  for (const auto& [name, file] : given) {
    if (!batching || file.second.shape().empty()) continue;
    int64_t rows = file.second.shape()[0];
    if (batch == 0) batch = rows;
    if (rows != batch)
      return absl::InvalidArgumentError(absl::StrCat("--input ", name, "=", file.first, ": ", rows,
                                                     " rows, but the batch size is ", batch));
  }
  if (batch == 0) batch = 1;
  if (!batching && batch != 1)
    return absl::InvalidArgumentError(absl::StrCat("model '", args.model,
                                                   "' does not batch (no variable first dimension on every input); "
                                                   "--batch-size must be 1"));
  plan.batch_size = batch;
  std::mt19937_64 rng(args.seed);
  for (const client::TensorMetadata& in : meta.inputs) {
    HEPML_ASSIGN_OR_RETURN(DType dtype, serve::DTypeFromProtocolName(in.datatype));
    Tensor t;
    std::string source = "random";
    auto it = given.find(in.name);
    if (it != given.end()) {
      t = it->second.second;
      source = it->second.first;
      if (t.dtype() != dtype)
        return absl::InvalidArgumentError(absl::StrCat("--input ", in.name, "=", source, ": ", DTypeName(t.dtype()),
                                                       ", but the model's input is ", in.datatype));
      bool fits = t.shape().size() == in.shape.size();
      for (size_t d = 0; fits && d < in.shape.size(); ++d) fits = in.shape[d] < 0 || in.shape[d] == t.shape()[d];
      if (!fits)
        return absl::InvalidArgumentError(absl::StrCat("--input ", in.name, "=", source, ": shape ",
                                                       ShapeText(t.shape()), " does not fit the model's ",
                                                       ShapeText(in.shape)));
    } else {
      Shape shape;
      for (size_t d = 0; d < in.shape.size(); ++d) {
        if (in.shape[d] >= 0) {
          shape.push_back(in.shape[d]);
        } else if (d == 0 && batching) {
          shape.push_back(batch);
        } else {
          return absl::InvalidArgumentError(absl::StrCat("dimension ", d, " of input '", in.name, "' ",
                                                         ShapeText(in.shape), " is variable; give the input with --input ",
                                                         in.name, "=FILE.npy"));
        }
      }
      HEPML_ASSIGN_OR_RETURN(t, RandomInput(in, dtype, shape, rng));
    }
    std::vector<int64_t> dims(t.shape().begin(), t.shape().end());
    plan.request.inputs.push_back({in.name, in.datatype, dims, serve::TensorToRaw(t)});
    plan.description.push_back({{"name", in.name}, {"datatype", in.datatype}, {"shape", dims}, {"data", source}});
  }
  return plan;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  double pos = p / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

double PerRequestUs(uint64_t ns, uint64_t count) { return count ? static_cast<double>(ns) / 1e3 / count : 0; }

struct LevelResult {
  int concurrency = 0;
  double duration_s = 0;
  std::vector<double> latencies_us;  // sorted
  uint64_t errors = 0;
  absl::Status first_error;
  bool have_server = false;
  client::ModelStatistics server;  // after minus before
};

// One client thread's record: completion time and latency of each answered
// request, and its failures.
struct Worker {
  std::unique_ptr<InferenceClient> client;
  std::vector<std::pair<Clock::time_point, double>> done;
  uint64_t errors = 0;
  absl::Status first_error;
};

client::ModelStatistics Difference(const client::ModelStatistics& a, const client::ModelStatistics& b) {
  auto d = [](uint64_t after, uint64_t before) { return after >= before ? after - before : 0; };
  client::ModelStatistics s;
  s.inference_count = d(b.inference_count, a.inference_count);
  s.execution_count = d(b.execution_count, a.execution_count);
  s.success_count = d(b.success_count, a.success_count);
  s.success_ns = d(b.success_ns, a.success_ns);
  s.fail_count = d(b.fail_count, a.fail_count);
  s.fail_ns = d(b.fail_ns, a.fail_ns);
  s.queue_count = d(b.queue_count, a.queue_count);
  s.queue_ns = d(b.queue_ns, a.queue_ns);
  s.compute_input_count = d(b.compute_input_count, a.compute_input_count);
  s.compute_input_ns = d(b.compute_input_ns, a.compute_input_ns);
  s.compute_infer_count = d(b.compute_infer_count, a.compute_infer_count);
  s.compute_infer_ns = d(b.compute_infer_ns, a.compute_infer_ns);
  s.compute_output_count = d(b.compute_output_count, a.compute_output_count);
  s.compute_output_ns = d(b.compute_output_ns, a.compute_output_ns);
  return s;
}

class PerfRun {
 public:
  PerfRun(const PerfArgs& args, client::Protocol protocol, std::string address, InferenceClient* stats_client,
          const client::InferRequest& request)
      : args_(args), protocol_(protocol), address_(std::move(address)), stats_(stats_client), request_(request) {}

  absl::StatusOr<LevelResult> Measure(int concurrency) {
    while (static_cast<int>(workers_.size()) < concurrency) {
      auto w = std::make_unique<Worker>();
      HEPML_ASSIGN_OR_RETURN(w->client, InferenceClient::Create(protocol_, address_));
      HEPML_RETURN_IF_ERROR(w->client->SetInferRequest(request_));
      workers_.push_back(std::move(w));
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < concurrency; ++i) {
      Worker* w = workers_[i].get();
      w->done.clear();
      w->errors = 0;
      w->first_error = absl::OkStatus();
      threads.emplace_back([w, &stop] {
        while (!stop.load(std::memory_order_acquire)) {
          auto t0 = Clock::now();
          absl::Status st = w->client->Infer();
          auto t1 = Clock::now();
          if (st.ok()) {
            w->done.emplace_back(t1, std::chrono::duration<double, std::micro>(t1 - t0).count());
          } else {
            if (w->errors++ == 0) w->first_error = st;
            // A server that refuses every request is not asked again at full speed.
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
        }
      });
    }
    // Warm-up (connections opened, the server's plans for this batch made,
    // the batcher's queue at its steady length), then the window.
    auto interval = std::chrono::milliseconds(args_.measurement_interval_ms);
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(interval, std::chrono::milliseconds(1000)));
    LevelResult r;
    r.concurrency = concurrency;
    auto before = stats_->GetModelStatistics(args_.model, args_.version);
    auto start = Clock::now();
    std::this_thread::sleep_for(interval);
    auto end = Clock::now();
    auto after = stats_->GetModelStatistics(args_.model, args_.version);
    stop.store(true, std::memory_order_release);
    for (auto& t : threads) t.join();
    r.duration_s = std::chrono::duration<double>(end - start).count();
    for (int i = 0; i < concurrency; ++i) {
      const Worker& w = *workers_[i];
      for (const auto& [when, us] : w.done)
        if (when >= start && when <= end) r.latencies_us.push_back(us);
      r.errors += w.errors;
      if (!w.first_error.ok() && r.first_error.ok()) r.first_error = w.first_error;
    }
    std::sort(r.latencies_us.begin(), r.latencies_us.end());
    if (before.ok() && after.ok()) {
      r.have_server = true;
      r.server = Difference(*before, *after);
    } else if (!warned_stats_) {
      warned_stats_ = true;
      PrintError("perf", absl::StrCat("no server statistics (", (before.ok() ? after : before).status().message(),
                                      "); reporting client figures only"));
    }
    return r;
  }

 private:
  const PerfArgs& args_;
  client::Protocol protocol_;
  std::string address_;
  InferenceClient* stats_;
  client::InferRequest request_;
  std::vector<std::unique_ptr<Worker>> workers_;
  bool warned_stats_ = false;
};

ordered_json LevelJson(const LevelResult& r, int64_t batch) {
  const auto& l = r.latencies_us;
  double requests = static_cast<double>(l.size());
  double sum = 0;
  for (double v : l) sum += v;
  ordered_json j;
  j["concurrency"] = r.concurrency;
  j["duration_s"] = r.duration_s;
  j["requests"] = l.size();
  j["errors"] = r.errors;
  j["throughput_infer_per_s"] = r.duration_s > 0 ? requests * batch / r.duration_s : 0;
  j["throughput_requests_per_s"] = r.duration_s > 0 ? requests / r.duration_s : 0;
  j["latency_us"] = {{"avg", l.empty() ? 0 : sum / requests},
                     {"min", l.empty() ? 0 : l.front()},
                     {"p50", Percentile(l, 50)},
                     {"p90", Percentile(l, 90)},
                     {"p95", Percentile(l, 95)},
                     {"p99", Percentile(l, 99)},
                     {"max", l.empty() ? 0 : l.back()}};
  if (r.have_server) {
    const auto& s = r.server;
    double request_us = PerRequestUs(s.success_ns, s.success_count);
    double queue_us = PerRequestUs(s.queue_ns, s.queue_count);
    double input_us = PerRequestUs(s.compute_input_ns, s.compute_input_count);
    double infer_us = PerRequestUs(s.compute_infer_ns, s.compute_infer_count);
    double output_us = PerRequestUs(s.compute_output_ns, s.compute_output_count);
    j["server"] = {{"requests", s.success_count},
                   {"failures", s.fail_count},
                   {"inferences", s.inference_count},
                   {"executions", s.execution_count},
                   {"avg_batch", s.execution_count ? static_cast<double>(s.inference_count) / s.execution_count : 0},
                   {"avg_request_us", request_us},
                   {"avg_queue_us", queue_us},
                   {"avg_compute_input_us", input_us},
                   {"avg_compute_infer_us", infer_us},
                   {"avg_compute_output_us", output_us},
                   {"avg_overhead_us", std::max(0.0, request_us - queue_us - input_us - infer_us - output_us)}};
  } else {
    j["server"] = nullptr;
  }
  return j;
}

void PrintLevel(const ordered_json& j) {
  const auto& lat = j["latency_us"];
  std::cout << "Request concurrency: " << j["concurrency"].get<int>() << "\n"
            << "  Client:\n"
            << "    Request count: " << j["requests"].get<uint64_t>() << " in "
            << absl::StrFormat("%.2f", j["duration_s"].get<double>()) << " s"
            << (j["errors"].get<uint64_t>() ? absl::StrCat(" (", j["errors"].get<uint64_t>(), " errors)") : "") << "\n"
            << absl::StrFormat("    Throughput: %.1f infer/sec\n", j["throughput_infer_per_s"].get<double>())
            << absl::StrFormat("    Avg latency: %.0f usec\n", lat["avg"].get<double>())
            << absl::StrFormat("    p50 latency: %.0f usec\n", lat["p50"].get<double>())
            << absl::StrFormat("    p90 latency: %.0f usec\n", lat["p90"].get<double>())
            << absl::StrFormat("    p95 latency: %.0f usec\n", lat["p95"].get<double>())
            << absl::StrFormat("    p99 latency: %.0f usec\n", lat["p99"].get<double>());
  const auto& s = j["server"];
  if (!s.is_null()) {
    std::cout << "  Server:\n"
              << "    Inference count: " << s["inferences"].get<uint64_t>() << "\n"
              << "    Execution count: " << s["executions"].get<uint64_t>()
              << absl::StrFormat(" (average batch %.1f)\n", s["avg_batch"].get<double>())
              << "    Successful request count: " << s["requests"].get<uint64_t>() << "\n"
              << absl::StrFormat(
                     "    Avg request latency: %.0f usec (overhead %.0f usec + queue %.0f usec + compute input %.0f "
                     "usec + compute infer %.0f usec + compute output %.0f usec)\n",
                     s["avg_request_us"].get<double>(), s["avg_overhead_us"].get<double>(),
                     s["avg_queue_us"].get<double>(), s["avg_compute_input_us"].get<double>(),
                     s["avg_compute_infer_us"].get<double>(), s["avg_compute_output_us"].get<double>());
  }
  std::cout << "\n";
}

int Perf(const PerfArgs& args) {
  client::Protocol protocol;
  if (args.protocol == "http" || args.protocol == "HTTP") {
    protocol = client::Protocol::kHttp;
  } else if (args.protocol == "grpc" || args.protocol == "gRPC" || args.protocol == "GRPC") {
    protocol = client::Protocol::kGrpc;
  } else {
    PrintError("perf", absl::StrCat("-i '", args.protocol, "': expected http or grpc"));
    return kExitUsage;
  }
  auto levels = ParseConcurrencyRange(args.concurrency_range);
  if (!levels.ok()) {
    PrintError("perf", levels.status().message());
    return kExitUsage;
  }
  std::string address = args.url.empty() ? (protocol == client::Protocol::kHttp ? "localhost:8000" : "localhost:8001")
                                         : args.url;
  auto main_client = InferenceClient::Create(protocol, address);
  if (!main_client.ok()) {
    PrintError("perf", main_client.status().message());
    return kExitUsage;
  }
  if (absl::Status st = (*main_client)->ServerLive(); !st.ok()) {
    PrintError("perf", st.message());
    return kExitFailure;
  }
  auto meta = (*main_client)->GetModelMetadata(args.model, args.version);
  if (!meta.ok()) {
    PrintError("perf", absl::StrCat("model '", args.model, "'", args.version.empty() ? "" : " version " + args.version,
                                    " on ", address, ": ", meta.status().message()));
    return kExitFailure;
  }
  auto plan = PlanInputs(args, *meta);
  if (!plan.ok()) {
    PrintError("perf", plan.status().message());
    return kExitFailure;
  }
  // Requests the server rejects fail here, once, rather than in every client.
  absl::Status trial = (*main_client)->SetInferRequest(plan->request);
  if (trial.ok()) trial = (*main_client)->Infer();
  if (!trial.ok()) {
    PrintError("perf", trial.message());
    return kExitFailure;
  }

  const char* protocol_name = protocol == client::Protocol::kHttp ? "http" : "grpc";
  if (!args.json) {
    std::cout << "*** Measurement Settings ***\n"
              << "  Model: " << args.model << (args.version.empty() ? "" : " version " + args.version) << " on "
              << address << " (" << (protocol == client::Protocol::kHttp ? "HTTP" : "gRPC") << ")\n"
              << "  Batch size: " << plan->batch_size << "\n"
              << "  Inputs:";
    for (const auto& in : plan->description)
      std::cout << " " << in["name"].get<std::string>() << " " << in["datatype"].get<std::string>()
                << ShapeText(in["shape"].get<std::vector<int64_t>>()) << " (" << in["data"].get<std::string>() << ")";
    std::cout << "\n  Measurement window: " << args.measurement_interval_ms << " msec (after a warm-up of up to 1 s)\n\n"
              << std::flush;
  }
  PerfRun run(args, protocol, address, main_client->get(), plan->request);
  ordered_json results = ordered_json::array();
  absl::Status first_error;
  for (int c : *levels) {
    auto r = run.Measure(c);
    if (!r.ok()) {
      PrintError("perf", r.status().message());
      return kExitFailure;
    }
    if (!r->first_error.ok() && first_error.ok()) first_error = r->first_error;
    ordered_json j = LevelJson(*r, plan->batch_size);
    if (!args.json) PrintLevel(j);
    results.push_back(std::move(j));
  }
  if (args.json) {
    ordered_json out;
    out["model"] = args.model;
    out["version"] = args.version;
    out["url"] = address;
    out["protocol"] = protocol_name;
    out["batch_size"] = plan->batch_size;
    out["measurement_interval_ms"] = args.measurement_interval_ms;
    out["inputs"] = plan->description;
    out["levels"] = results;
    std::cout << out.dump(2) << std::endl;
  } else {
    std::cout << "Inferences/second vs. client p95 latency\n";
    for (const auto& j : results)
      std::cout << absl::StrFormat("Concurrency: %d, throughput: %.1f infer/sec, latency %.0f usec\n",
                                   j["concurrency"].get<int>(), j["throughput_infer_per_s"].get<double>(),
                                   j["latency_us"]["p95"].get<double>());
  }
  if (!first_error.ok()) {
    PrintError("perf", absl::StrCat("requests failed: ", first_error.message()));
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void AddPerfCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "perf", "Load-test a model on a KServe v2 / Triton server (HTTP or gRPC): throughput and latency per concurrency");
  auto args = std::make_shared<PerfArgs>();
  cmd->add_option("-m,--model-name", args->model, "Model to load-test")->required();
  cmd->add_option("-x,--model-version", args->version, "Model version (default: the server's choice)");
  cmd->add_option("-u,--url", args->url, "Server HOST:PORT (default localhost:8000 for http, localhost:8001 for grpc)");
  cmd->add_option("-i,--protocol", args->protocol, "http or grpc");
  cmd->add_option("--concurrency-range", args->concurrency_range,
                  "Concurrent clients: A, A:B (step 1), A:B:STEP or A:B:xFACTOR");
  cmd->add_option("-b,--batch-size", args->batch_size, "Batch size of each request (default 1, or the rows of --input)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--input", args->inputs, "NAME=FILE.npy: the whole request tensor (others are random)");
  cmd->add_option("-p,--measurement-interval", args->measurement_interval_ms, "Measurement window per level in ms")
      ->check(CLI::Range(1, 3600000));
  cmd->add_option("--seed", args->seed, "Seed of the random inputs");
  cmd->add_flag("--json", args->json, "One JSON object: settings and a list of levels");
  cmd->callback([=] { *exit_code = Perf(*args); });
}

}  // namespace hepml::cli
