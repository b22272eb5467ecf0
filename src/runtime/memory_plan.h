// Memory planning for intermediate tensors.
//
// The first Run with a given input signature (dtypes and shapes) records every
// top-level allocation: its size, the step (node) that made it and the step at
// which its last reference went away (views and aliases included, since the
// reference count decides). Tensors still referenced when the run ends (graph
// outputs, and anything viewing them) escape and always get their own memory.
// From those lifetimes, AssignOffsets packs the others into one arena, reusing
// space between tensors whose lifetimes do not overlap. Later runs with that
// signature take an arena from a pool and place each allocation at its offset:
// no heap allocation for intermediates in the steady state.
//
// Safety: graphs with control flow at the top level (If/Loop/Scan, whose
// aliasing may depend on data) are never planned; an allocation larger than
// planned (data-dependent sizes, e.g. NonZero) falls back to the heap; and an
// arena still referenced after a run is not reused (the plan is dropped).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "hepml/tensor.h"

namespace hepml {

// How far apart data that different threads write must lie: two cache
// lines, since the L2 prefetchers of x86 cores fetch lines in aligned pairs,
// and a write to one line of a pair then contends with another core's copy
// of its neighbour. (Two threads sharing one Session, their memory-plan
// slots on adjacent lines, ran trigger_mlp's 128-row calls 0.1-0.4 us
// slower than with a Session each; 128 bytes apart, as fast.)
inline constexpr size_t kThreadApart = 128;

struct Allocation {
  size_t bytes = 0;
  int first_step = 0;  // node that allocated it
  int last_step = 0;   // node after which it was released; kEscapes if never
};
inline constexpr int kEscapes = 1 << 30;

struct MemoryPlan {
  std::vector<int64_t> offsets;  // per allocation index; -1: own memory
  std::vector<size_t> capacity;  // bytes planned per allocation index
  size_t arena_bytes = 0;
};

// Packs allocations with overlapping [first_step, last_step] apart, the
// largest first, each at the lowest 64-byte aligned offset that fits.
MemoryPlan AssignOffsets(const std::vector<Allocation>& allocations);

// Where one Run's intermediate tensors come from. Not thread-safe: one per Run.
class RunAllocator {
 public:
  virtual ~RunAllocator() = default;
  virtual Tensor Allocate(DType dtype, Shape shape) = 0;
  void set_step(int step) { step_ = step; }
  int step() const { return step_; }

 protected:
  int step_ = 0;
};

class MemoryPlanner {
 public:
  explicit MemoryPlanner(bool enabled);
  ~MemoryPlanner();

  // The allocator for a run whose inputs have this signature (see Signature).
  // Returns null when the run is not planned (plain heap allocation).
  RunAllocator* Begin(const std::vector<int64_t>& signature);
  // Called once the run's results are taken; records or recycles.
  void End(RunAllocator* allocator);

  // Encodes the inputs' kinds, dtypes and shapes into `out` (reused between
  // calls, so the steady state does not allocate).
  static void Signature(const std::vector<Value>& inputs, std::vector<int64_t>* out);
  // Plans held; for tests and `hepml bench`.
  size_t num_plans() const;
  size_t arena_bytes(const std::vector<int64_t>& signature) const;

 private:
  struct Entry;
  class Recorder;
  class Planned;

  // The steady state of a thread that runs the same signature again takes
  // its allocator (arena included) back from a slot of its own, without the
  // mutex or any cache line another thread writes (nor the line paired with
  // one: kThreadApart): several threads sharing one Session then do not
  // slow each other down. Threads map to slots by a per-thread number; two
  // threads on one slot just miss more often.
  struct alignas(kThreadApart) ThreadSlot {
    std::atomic<Planned*> planned{nullptr};
  };
  static constexpr size_t kThreadSlots = 64;
  static ThreadSlot& SlotOf(ThreadSlot* slots);

  bool enabled_;
  mutable std::mutex mu_;
  absl::flat_hash_map<std::vector<int64_t>, std::shared_ptr<Entry>> entries_;
  std::unique_ptr<ThreadSlot[]> thread_slots_;
};

}  // namespace hepml
