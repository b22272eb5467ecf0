// How long one cache line takes between two CPUs: two threads pinned to CPUs
// A and B (0 and 1 unless given) hand a counter back and forth; prints the
// one-way time. On the shared VMs the benchmarks run on, this tells the host's
// placement of the two vCPUs (docs/benchmarks.md: 60-100 ns when they share a
// cache, 210-280 ns when they do not), which decides how a two-thread split
// call of a few microseconds scales. Linux only (thread affinity).
//
//   build/bench/line_pingpong [CPU_A CPU_B] [ROUND_TRIPS]
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

alignas(128) std::atomic<long> counter{0};

bool Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int a = argc > 2 ? std::atoi(argv[1]) : 0, b = argc > 2 ? std::atoi(argv[2]) : 1;
  const long trips = argc > 3 ? std::atol(argv[3]) : 200000;
  bool pinned = true;
  std::thread other([&] {
    pinned &= Pin(b);
    for (long i = 0; i < trips; ++i) {
      while (counter.load(std::memory_order_acquire) != 2 * i + 1) {
      }
      counter.store(2 * i + 2, std::memory_order_release);
    }
  });
  pinned &= Pin(a);
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < trips; ++i) {
    counter.store(2 * i + 1, std::memory_order_release);
    while (counter.load(std::memory_order_acquire) != 2 * i + 2) {
    }
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  other.join();
  if (!pinned) {
    std::fprintf(stderr, "line_pingpong: cannot pin threads to CPUs %d and %d\n", a, b);
    return 1;
  }
  std::printf("CPUs %d and %d: one-way transfer of a cache line %.0f ns (%ld round trips)\n", a, b, ns / (2.0 * trips),
              trips);
  return 0;
}
