// A HEP framework's event loop in miniature: N events processed on M threads
// of the framework's own tbb::task_arena, each event running one shared model
// — in process through hepml::Session (inside that same arena: hepml creates
// no threads), and on a server through hepml::RemoteSession (the
// external-work pattern: an event hands its inputs over with RunAsync and
// the loop goes on; the callback completes the event).
//
//   hepml_framework_example --model trigger_mlp.onnx --events 20000 --threads 1,2
//   hepml_framework_example --model trigger_mlp.onnx --server 127.0.0.1:8001
//       --remote-model trigger_mlp --inflight 64 --coalesce 0,64
//
// --caller-threads: --inflight threads each calling Run (blocking) instead of
// one loop with --inflight RunAsync calls in flight.
//
// Prints one line per run: events/s, VmRSS and VmHWM (from /proc/self/status)
// and a checksum of every output value (the same for every run of the same
// events: in process or remote, any thread count, coalesced or not), then the
// resident memory each extra thread added.
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include "hepml/remote_session.h"
#include "hepml/session.h"
#include "oneapi/tbb/blocked_range.h"
#include "oneapi/tbb/parallel_for.h"
#include "oneapi/tbb/partitioner.h"
#include "oneapi/tbb/task_arena.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  int64_t events = 20000;
  std::vector<int> threads = {1, 2};
  std::string server;        // empty: no remote runs
  std::string remote_model;  // name on the server
  int inflight = 64;
  std::vector<int> coalesce = {0, 64};
  int64_t remote_events = 0;  // 0: same as events
  bool plan_memory = true;      // SessionOptions::plan_memory
  int max_delay_us = 200;       // RemoteSessionOptions::max_delay
  bool caller_threads = false;  // --inflight threads calling Run, not RunAsync
};

std::vector<int> ParseList(const char* text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::atoi(item.c_str()));
  return out;
}

// VmRSS and VmHWM in MiB.
std::pair<double, double> ResidentMiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  double rss = 0, hwm = 0;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::atof(line.c_str() + 6) / 1024.0;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::atof(line.c_str() + 6) / 1024.0;
  }
  return {rss, hwm};
}

// CPU seconds this process used so far (all threads, user + system).
double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// The event's inputs: every free dimension 1 (one event), values from the
// event number.
hepml::Session::NamedTensors EventInputs(const std::vector<hepml::TensorInfo>& infos, int64_t event) {
  hepml::Session::NamedTensors inputs;
  for (const hepml::TensorInfo& info : infos) {
    hepml::Shape shape;
    for (int64_t d : info.shape) shape.push_back(d < 0 ? 1 : d);
    hepml::Tensor t = hepml::Tensor::Empty(hepml::DType::kFloat32, shape);
    float* x = t.mutable_data<float>();
    for (int64_t i = 0; i < t.size(); ++i) x[i] = std::sin(0.013f * static_cast<float>(event) + 0.7f * i);
    inputs.emplace_back(info.name, std::move(t));
  }
  return inputs;
}

// Every output value weighted by its position (a plain sum of softmax
// outputs would be the number of events whatever the values).
double Checksum(const std::vector<hepml::Tensor>& outputs) {
  double sum = 0;
  for (const hepml::Tensor& t : outputs)
    if (t.dtype() == hepml::DType::kFloat32)
      for (int64_t i = 0; i < t.size(); ++i) sum += t.data<float>()[i] * static_cast<double>(i + 1);
  return sum;
}

// Adds doubles from many threads (the checksum).
struct AtomicSum {
  std::atomic<double> value{0};
  void Add(double v) {
    double cur = value.load();
    while (!value.compare_exchange_weak(cur, cur + v)) {
    }
  }
};

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model") args.model = next();
    else if (a == "--events") args.events = std::atoll(next());
    else if (a == "--threads") args.threads = ParseList(next());
    else if (a == "--server") args.server = next();
    else if (a == "--remote-model") args.remote_model = next();
    else if (a == "--inflight") args.inflight = std::atoi(next());
    else if (a == "--coalesce") args.coalesce = ParseList(next());
    else if (a == "--remote-events") args.remote_events = std::atoll(next());
    else if (a == "--caller-threads") args.caller_threads = true;
    else if (a == "--max-delay-us") args.max_delay_us = std::atoi(next());
    else if (a == "--no-plan-memory") args.plan_memory = false;
    else {
      std::fprintf(stderr,
                   "usage: %s --model MODEL.onnx [--events N] [--threads 1,2] [--no-plan-memory] [--server HOST:PORT "
                   "--remote-model NAME [--inflight 64] [--caller-threads] [--coalesce 0,64] [--max-delay-us 200] [--remote-events N]]\n",
                   argv[0]);
      return 2;
    }
  }
  if (args.model.empty() || args.events <= 0 || args.threads.empty()) {
    std::fprintf(stderr, "error: --model is required; --events and --threads must be positive\n");
    return 2;
  }
  if (args.remote_events <= 0) args.remote_events = args.events;

  // In process: one Session per arena size, shared by all of that arena's
  // threads (a framework makes one arena and one Session).
  double base_rss = -1;
  int base_threads = 0;
  double last_rss = 0;
  int last_threads = 0;
  for (int threads : args.threads) {
    tbb::task_arena arena(threads);
    hepml::SessionOptions options;
    options.arena = &arena;
    options.plan_memory = args.plan_memory;
    auto session = hepml::Session::Create(args.model, options);
    if (!session.ok()) return Fail(session.status());
    const auto& infos = (*session)->inputs();
    // Warm-up: every thread's first call (plans memory for the shape).
    arena.execute([&] {
      tbb::parallel_for(int64_t{0}, int64_t{threads * 16}, [&](int64_t e) { (void)(*session)->Run(EventInputs(infos, e)); });
    });
    AtomicSum checksum;
    std::atomic<int64_t> errors{0};
    // Events per arena slot: how the loop's work spread over its threads.
    // Each slot's own cache line: threads that wrote one shared counter or sum
    // per event would measure the line bouncing between cores, not hepml.
    struct alignas(64) Count {
      std::atomic<int64_t> n{0};
      double checksum = 0;  // touched only by the thread holding the slot
    };
    std::vector<Count> per_thread(threads);
    const Clock::time_point start = Clock::now();
    const double cpu_start = CpuSeconds();
    arena.execute([&] {
      // Events go out in tasks of kEventsPerTask (a framework's stream takes
      // events one after another); each task is stolen whole, not split again.
      constexpr int64_t kEventsPerTask = 64;
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, args.events, kEventsPerTask), [&](const tbb::blocked_range<int64_t>& events) {
       for (int64_t e = events.begin(); e < events.end(); ++e) {
        const int slot = tbb::this_task_arena::current_thread_index();
        const bool own = slot >= 0 && slot < threads;
        if (own) per_thread[slot].n.fetch_add(1, std::memory_order_relaxed);
        auto out = (*session)->Run(EventInputs(infos, e));
        if (!out.ok()) {
          ++errors;
          continue;
        }
        if (own) per_thread[slot].checksum += Checksum(*out);
        else checksum.Add(Checksum(*out));
       }
      }, tbb::simple_partitioner());
    });
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = CpuSeconds() - cpu_start;
    for (const Count& c : per_thread) checksum.Add(c.checksum);
    if (errors > 0) {
      std::fprintf(stderr, "error: %lld events failed\n", static_cast<long long>(errors.load()));
      return 1;
    }
    auto [rss, hwm] = ResidentMiB();
    // events per CPU second: what the threads did with the CPU they got (on
    // a shared machine events/s also depends on what else runs).
    std::string spread;
    for (int t = 0; t < threads; ++t) {
      if (t > 0) spread += '/';
      spread += std::to_string(per_thread[t].n.load());
    }
    std::printf("session threads=%d events=%lld events_per_s=%.0f events_per_cpu_s=%.0f cpu_s=%.2f vmrss_mib=%.1f "
                "vmhwm_mib=%.1f events_by_thread=%s checksum=%.6f\n",
                threads, static_cast<long long>(args.events), args.events / seconds, args.events / cpu, cpu, rss, hwm,
                spread.c_str(), checksum.value.load());
    if (base_rss < 0) {
      base_rss = rss;
      base_threads = threads;
    }
    last_rss = rss;
    last_threads = threads;
    std::fflush(stdout);
  }
  if (last_threads > base_threads)
    std::printf("rss_per_extra_thread_mib=%.2f (threads %d -> %d)\n",
                (last_rss - base_rss) / (last_threads - base_threads), base_threads, last_threads);

  if (args.server.empty()) return 0;
  if (args.remote_model.empty()) {
    std::fprintf(stderr, "error: --server needs --remote-model\n");
    return 2;
  }
  // Remote: the loop hands each event to the RemoteSession (RunAsync) and
  // goes on, with at most --inflight events waiting on the server at once.
  for (int max_batch : args.coalesce) {
    hepml::RemoteSessionOptions options;
    options.model = args.remote_model;
    options.servers = {args.server};
    options.max_batch_size = max_batch;
    options.max_delay = std::chrono::microseconds(args.max_delay_us);
    auto remote = hepml::RemoteSession::Create(options);
    if (!remote.ok()) return Fail(remote.status());
    const auto& infos = (*remote)->inputs();
    std::mutex mu;
    std::condition_variable cv;
    int inflight = 0;
    AtomicSum checksum;
    std::atomic<int64_t> errors{0};
    std::string first_error;
    auto record = [&](const hepml::RemoteSession::Result& r) {
      if (r.ok()) {
        checksum.Add(Checksum(*r));
      } else if (errors++ == 0) {
        std::lock_guard<std::mutex> lock(mu);
        first_error = r.status().ToString();
      }
    };
    const Clock::time_point start = Clock::now();
    if (args.caller_threads) {
      // --inflight threads, each waiting on its own calls (Run).
      std::atomic<int64_t> next_event{0};
      std::vector<std::thread> callers;
      for (int t = 0; t < args.inflight; ++t) {
        callers.emplace_back([&] {
          for (int64_t e; (e = next_event++) < args.remote_events;) record((*remote)->Run(EventInputs(infos, e)));
        });
      }
      for (auto& c : callers) c.join();
    } else {
      for (int64_t e = 0; e < args.remote_events; ++e) {
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return inflight < args.inflight; });
          ++inflight;
        }
        (*remote)->RunAsync(EventInputs(infos, e), {}, [&](hepml::RemoteSession::Result r) {
          record(r);
          std::lock_guard<std::mutex> lock(mu);
          --inflight;
          cv.notify_all();
        });
      }
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return inflight == 0; });
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (errors > 0) {
      std::fprintf(stderr, "error: %lld remote events failed: %s\n", static_cast<long long>(errors.load()),
                   first_error.c_str());
      return 1;
    }
    hepml::RemoteSessionStats stats = (*remote)->stats();
    auto [rss, hwm] = ResidentMiB();
    std::printf("remote %s=%d max_batch=%d events=%lld events_per_s=%.0f requests=%llu mean_batch=%.2f "
                "vmrss_mib=%.1f vmhwm_mib=%.1f checksum=%.6f\n",
                args.caller_threads ? "caller_threads" : "inflight", args.inflight, max_batch,
                static_cast<long long>(args.remote_events), args.remote_events / seconds,
                static_cast<unsigned long long>(stats.batches), stats.mean_batch_size(), rss, hwm,
                checksum.value.load());
    std::fflush(stdout);
  }
  return 0;
}
