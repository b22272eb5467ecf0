// Built by check_compile.py against a generated package (MODEL_HEADER, MODEL_CLASS):
// checks the contracts NAME.h states. run() allocates nothing (global operator new is
// counted), gives the same bytes at every batch from 1 to kMaxBatch for the same rows as
// a fresh instance, and instances on four threads at once (one each) agree with a
// single-threaded run, and a caller-owned arena gives the same bytes. Prints "ok" or what failed; exit status 1 on failure.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <thread>
#include <vector>

#include MODEL_HEADER

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
// Not inlined: GCC would otherwise pair the standard library's operator new
// calls with free() and warn (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using Model = MODEL_CLASS;

size_t Bytes(const Model::TensorSpec& s, int batch) {
  size_t n = s.dtype == Model::DType::kFloat32 || s.dtype == Model::DType::kInt32 ? 4
             : s.dtype == Model::DType::kInt64                                  ? 8
                                                                                : 1;
  for (int d = 0; d < s.rank; ++d) n *= static_cast<size_t>(s.per_batch[d] * batch + s.fixed[d]);
  return n;
}

struct Buffers {
  std::vector<std::vector<unsigned char>> in, out;
  std::vector<const void*> in_ptr;
  std::vector<void*> out_ptr;
};

// Inputs for `batch` rows: floats in [-1, 1), integers 0..1, bools; the same
// seed gives the same leading rows at every batch when the batch is the
// leading dim (per_batch == 1 on dim 0).
Buffers Make(int batch, unsigned seed) {
  Buffers b;
  std::mt19937 rng(seed);
  for (int i = 0; i < Model::kNumInputs; ++i) {
    const Model::TensorSpec& s = Model::kInputs[i];
    std::vector<unsigned char> v(Bytes(s, batch) + 1);
    const size_t n = Bytes(s, batch);
    if (s.dtype == Model::DType::kFloat32) {
      std::uniform_real_distribution<float> u(-1.f, 1.f);
      for (size_t e = 0; e < n / 4; ++e) {
        float f = u(rng);
        std::memcpy(v.data() + 4 * e, &f, 4);
      }
    } else if (s.dtype == Model::DType::kInt64) {
      for (size_t e = 0; e < n / 8; ++e) {
        int64_t x = static_cast<int64_t>(rng() % 2);
        std::memcpy(v.data() + 8 * e, &x, 8);
      }
    } else if (s.dtype == Model::DType::kInt32) {
      for (size_t e = 0; e < n / 4; ++e) {
        int32_t x = static_cast<int32_t>(rng() % 2);
        std::memcpy(v.data() + 4 * e, &x, 4);
      }
    } else {
      for (size_t e = 0; e < n; ++e) v[e] = static_cast<unsigned char>(rng() % 2);
    }
    b.in.push_back(std::move(v));
  }
  for (int i = 0; i < Model::kNumOutputs; ++i) b.out.emplace_back(Bytes(Model::kOutputs[i], batch) + 1, 0);
  for (auto& v : b.in) b.in_ptr.push_back(v.data());
  for (auto& v : b.out) b.out_ptr.push_back(v.data());
  return b;
}

int Fail(const char* what) {
  std::printf("FAIL %s\n", what);
  return 1;
}

}  // namespace

int main() {
  Model model;
  if (!model.ok()) return Fail(model.error().c_str());
  const int max_batch = Model::kMaxBatch;
  Buffers ref = Make(max_batch, 7);
  const long before = g_allocations.load();
  for (int i = 0; i < 3; ++i)
    if (!model.run(max_batch, ref.in_ptr.data(), ref.out_ptr.data())) return Fail(model.error().c_str());
  if (g_allocations.load() != before) return Fail("run() allocated memory");
  // Four threads, one instance each, many runs: every output equals the reference.
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      Model mine;
      Buffers b = Make(max_batch, 7);
      for (int r = 0; r < 20; ++r) {
        if (!mine.run(max_batch, b.in_ptr.data(), b.out_ptr.data())) ++mismatches;
        for (int i = 0; i < Model::kNumOutputs; ++i)
          if (std::memcmp(b.out[i].data(), ref.out[i].data(), Bytes(Model::kOutputs[i], max_batch)) != 0) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  if (mismatches.load() != 0) return Fail("instances on four threads disagree with a single-threaded run");
  // Batch 1 after the max batch on the same instance equals a fresh instance's batch 1.
  Buffers one = Make(1, 9), fresh = Make(1, 9);
  if (!model.run(1, one.in_ptr.data(), one.out_ptr.data())) return Fail(model.error().c_str());
  Model other;
  if (!other.run(1, fresh.in_ptr.data(), fresh.out_ptr.data())) return Fail(other.error().c_str());
  for (int i = 0; i < Model::kNumOutputs; ++i)
    if (std::memcmp(one.out[i].data(), fresh.out[i].data(), Bytes(Model::kOutputs[i], 1)) != 0)
      return Fail("batch 1 after batch max differs from a fresh instance");
  // A caller-owned arena gives the same bytes.
  {
    std::vector<unsigned char> storage(Model::kArenaBytes + Model::kArenaAlignment);
    void* arena = storage.data() + (Model::kArenaAlignment -
                                    reinterpret_cast<std::uintptr_t>(storage.data()) % Model::kArenaAlignment) %
                                       Model::kArenaAlignment;
    Buffers mine = Make(max_batch, 7);
    const long allocations = g_allocations.load();
    if (!model.run(max_batch, mine.in_ptr.data(), mine.out_ptr.data(), arena)) return Fail(model.error().c_str());
    if (g_allocations.load() != allocations) return Fail("run() with a caller arena allocated memory");
    for (int i = 0; i < Model::kNumOutputs; ++i)
      if (std::memcmp(mine.out[i].data(), ref.out[i].data(), Bytes(Model::kOutputs[i], max_batch)) != 0)
        return Fail("a caller-owned arena gives other outputs");
  }
  if (model.run(max_batch + 1, one.in_ptr.data(), one.out_ptr.data())) return Fail("run() accepted batch > kMaxBatch");
  if (model.run(0, one.in_ptr.data(), one.out_ptr.data())) return Fail("run() accepted batch 0");
  std::printf("ok\n");
  return 0;
}
