// Two threads calling Session::Run at once, each pinned to its own CPU: on
// one Session they share, against a Session each, in alternating rounds.
// Threads of a framework share one Session per model; anything the Session
// writes per call on a cache line (or on the neighbour of a line, which x86
// prefetchers fetch in pairs) that the other thread writes too slows both
// (docs/benchmarks.md, two threads). Every fp32 input gets `rows` rows of
// values in [-0.5, 0.5) for its symbolic dims; other dtypes are not made.
//
//   build/bench/shared_session_bench MODEL.onnx [ROWS] [CALLS] [ROUNDS]
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hepml/session.h"

namespace {

using hepml::DType;
using hepml::Session;
using hepml::Tensor;

void Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// Inputs of `rows` rows for every fp32 input; false when an input is not fp32.
bool MakeInputs(const Session& session, int64_t rows, Session::NamedTensors* feed) {
  for (const hepml::TensorInfo& info : session.inputs()) {
    if (info.dtype != DType::kFloat32 || info.kind != "tensor") return false;
    hepml::Shape shape;
    for (int64_t d : info.shape) shape.push_back(d < 0 ? rows : d);
    Tensor t = Tensor::Empty(DType::kFloat32, shape);
    float* p = t.mutable_data<float>();
    for (int64_t i = 0; i < t.size(); ++i) p[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
    feed->emplace_back(info.name, t);
  }
  return true;
}

// Median call time (us) of each of two threads running `calls` calls at once,
// thread t on CPU t through sessions[t].
std::pair<double, double> Round(Session* sessions[2], const Session::NamedTensors feeds[2], int calls) {
  std::atomic<int> ready{0};
  double medians[2] = {0, 0};
  auto body = [&](int t) {
    Pin(t);
    std::vector<double> us;
    us.reserve(static_cast<size_t>(calls));
    ++ready;
    while (ready.load() < 2) {
    }
    for (int i = 0; i < calls; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      auto out = sessions[t]->Run(feeds[t]);
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      if (!out.ok()) {
        std::fprintf(stderr, "shared_session_bench: %s\n", out.status().ToString().c_str());
        std::exit(1);
      }
    }
    std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
    medians[t] = us[us.size() / 2];
  };
  std::thread a(body, 0), b(body, 1);
  a.join();
  b.join();
  return {medians[0], medians[1]};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.onnx [ROWS] [CALLS] [ROUNDS]\n", argv[0]);
    return 2;
  }
  const int64_t rows = argc > 2 ? std::atol(argv[2]) : 128;
  const int calls = argc > 3 ? std::atoi(argv[3]) : 20000;
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 5;
  hepml::SessionOptions options;
  options.num_threads = 1;
  std::unique_ptr<Session> own[2];
  for (auto& s : own) {
    auto created = Session::Create(argv[1], options);
    if (!created.ok()) {
      std::fprintf(stderr, "shared_session_bench: %s\n", created.status().ToString().c_str());
      return 1;
    }
    s = std::move(*created);
  }
  Session::NamedTensors feeds[2];
  for (auto& feed : feeds) {
    if (!MakeInputs(*own[0], rows, &feed)) {
      std::fprintf(stderr, "shared_session_bench: the model has an input that is not an fp32 tensor\n");
      return 1;
    }
  }
  std::printf("%s, %lld rows a call, %d calls a thread a round; p50 per call (us), CPU 0 / CPU 1\n", argv[1],
              static_cast<long long>(rows), calls);
  for (int r = 0; r < rounds; ++r) {
    Session* apart[2] = {own[0].get(), own[1].get()};
    Session* shared[2] = {own[0].get(), own[0].get()};
    const auto [a0, a1] = Round(apart, feeds, calls);
    const auto [s0, s1] = Round(shared, feeds, calls);
    std::printf("round %d: a Session each %.3f / %.3f   one Session %.3f / %.3f\n", r + 1, a0, a1, s0, s1);
  }
  return 0;
}
