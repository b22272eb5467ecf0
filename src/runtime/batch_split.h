// Batch-parallel execution: a Session with T > 1 threads runs a large batch
// as T contiguous slices of rows, each slice through the whole plan on one
// thread (kernels serial, its own planned memory), all slices in one
// parallel region: one fork/join per Run instead of one per layer.
//
// That is only correct when every sample (row along axis 0) is computed
// independently of the others. AnalyzeBatchSplit decides it once, at
// Session creation, by a conservative walk over the graph: each value is
// "batched" along some axis (that axis indexes independent samples: axis 0
// for the fed inputs; a Transpose, Squeeze, Unsqueeze or Gather may move it,
// as does a recurrent layer's layout), "invariant" (does not depend on any
// fed input: weights, constants, values computed only from them) or
// neither; a node is accepted only when its operator is known to keep the
// samples independent along that axis for the operands it has (see the
// rules in batch_split.cc; most operators only with the samples on axis 0),
// and the graph only when every fed input and every output is batched on
// axis 0. Anything unknown (an operator not listed, a rank or attribute
// not known statically, Shape of a batched value, control flow, random
// operators) makes the graph not separable; it then runs as before.
//
// Results: a slice runs the same kernels on fewer rows. The kernels hepml
// has compute each output row from its input row alone, and with the same
// operations wherever the row lies, with one exception: the fp32 GEMM
// computes rows in register tiles of `mr` rows (12 with AVX-512), and tiles
// of fewer than `exact_rows` rows (4 with AVX-512) sum in two or four
// chains, so such a row's bits depend on the tile it falls in; and it picks
// its driver (which differs for k > 512) by the number of rows when there
// are at most 2 * mr. Slices therefore have more than 2 * mr rows and start
// at multiples of exact_rows when those divide the batch (every tile of a
// slice and of the whole batch then has a multiple of them, in a GEMM over
// rows x anything too: gemm.h), else at multiples of mr: every row meets a
// tile that sums as the one it meets in the whole batch, and the outputs are
// bitwise those of one thread (session_test checks it). One exception: on
// a batch that exact_rows does not divide, a recurrent layer projects the
// input of all time steps in one GEMM of seq * batch rows, whose last
// partial tile holds other rows in a slice than in the whole batch; those
// few rows may differ in the last bits (session_test bounds it).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "oneapi/tbb/task_arena.h"
#include "graph/graph.h"
#include "hepml/session.h"
#include "runtime/executor.h"
#include "runtime/memory_plan.h"

namespace hepml {

// Decides whether `graph` (after the Session's passes) may be run in batch
// slices. Never fails: a graph it cannot prove separable gets
// separable = false and a reason naming the first value or node at fault.
BatchSplitInfo AnalyzeBatchSplit(const Graph& graph);

// How many slices `batch` rows run as on `concurrency` threads, given the
// fewest rows a slice should have (raised to 2 * mr + 1, see above): 1 when
// the batch is not worth splitting.
int NumBatchSlices(int64_t batch, int concurrency, int64_t min_rows_per_slice);

// The first row of slice s of `slices` (s == slices: `batch`): s / slices of
// the batch, rounded to the nearest multiple of the slices' granule (the
// GEMM's exact rows or row tile, see above).
int64_t SliceBegin(int64_t batch, int slices, int s);

// Keeps the calling thread off one CPU while it lives (Leave), then gives
// the thread back the CPUs it was allowed. A slice worker uses it to get off
// the caller's CPU: the scheduler of a virtual machine that does not
// describe shared caches wakes a thread on its waker's CPU and may leave it
// there for hundreds of milliseconds with the other CPU idle, and a worker
// spinning there only takes the CPU from the caller.
class OffCpu {
 public:
  OffCpu() = default;
  ~OffCpu();
  OffCpu(const OffCpu&) = delete;
  OffCpu& operator=(const OffCpu&) = delete;

  // Moves the thread off `cpu` now, to the other CPUs it may run on
  // (including any it was kept off before). False, having changed nothing,
  // when it may run nowhere else or the system cannot move threads.
  bool Leave(int cpu);

 private:
  bool moved_ = false;
#if defined(__linux__)
  cpu_set_t allowed_;
#endif
};

// The arena workers that run one Session's batch slices, kept waiting for
// a short while after each call. Back-to-back calls (an event loop, a
// benchmark, a server draining its queue) then hand their slices to a
// worker that is awake, instead of paying for waking one that went to
// sleep when the last call's parallel region ended (tens of microseconds on
// a virtual machine: more than a small model's whole slice). The caller
// runs slice 0 and then any slice no worker has started, so a call never
// waits for a worker to arrive; a worker that arrives late finds nothing
// left and waits for the next call instead. Only one call at a time uses
// the crew (others run their slices with a parallel_for).
class SliceCrew {
 public:
  // What a call hands its workers on the cache line they poll: a worker
  // that reads nothing else the caller wrote for the call starts its slice
  // after one transfer of a line between the CPUs.
  static constexpr int kWords = 7;
  using Words = std::array<uint64_t, kWords>;

  // What runs a call's slices: the same object call after call (its
  // address stays on a line the workers keep).
  class Task {
   public:
    // Slice s of `slices`, on whichever thread takes it, with the call's
    // words; false when it failed (the task keeps the error).
    virtual bool RunSlice(int s, int slices, const Words& words) = 0;

   protected:
    ~Task() = default;
  };

  // What the caller learns of a call's slices.
  struct Outcome {
    // Slice 0's time, and the time from its start to the end of slice 1 on
    // a worker (the worker's lag in starting it included: so the split
    // balances when the slices end); 0 where the caller ran slice 1.
    double seconds[2] = {0, 0};
    bool failed = false;  // some RunSlice returned false
  };

  // `spin`: how long a worker waits for the next call after its last slice.
  explicit SliceCrew(std::chrono::microseconds spin);
  ~SliceCrew();  // waiting workers stop waiting (they hold the shared state)
  SliceCrew(const SliceCrew&) = delete;
  SliceCrew& operator=(const SliceCrew&) = delete;

  // Runs task.RunSlice(s) for every s in [0, slices), inside `arena`
  // (entered by the caller): first `open` on the caller, holding the crew
  // (it sets the call up and fills its words), then the slices, then
  // `close` on the caller, still holding the crew. Returns false, having
  // run nothing, when another call holds the crew.
  // REQUIRES: slices <= the arena's concurrency.
  bool Run(oneapi::tbb::task_arena& arena, int slices, Task& task, absl::FunctionRef<void(Words&)> open,
           absl::FunctionRef<void()> close, Outcome* outcome);

  // Balance of two slices: the first row of slice 1 for `batch` rows (on
  // the slices' granule, see SliceBegin; each slice more than two tiles),
  // from the threads' speeds seen so far (Observe); the middle at first. The
  // two vCPUs of a virtual machine often run at different speeds for a while
  // (another guest on one core), and equal halves then wait for the slower.
  // It stays where it was while the speeds say a row less than a granule
  // away.
  // REQUIRES: batch large enough for two slices (NumBatchSlices).
  int64_t SplitRow(int64_t batch) const;
  // The times of a call with two slices (Outcome::seconds): slice 0 with
  // `rows0` rows, and slice 1 with `rows1` rows counted from slice 0's
  // start; moves the split a twentieth of the way toward equal finishing
  // times, by at most 0.4% of the rows (a row of 256) per call.
  void Observe(int64_t rows0, double seconds0, int64_t rows1, double seconds1);

 private:
  struct State;
  // Slices past this one have no flag of their own (the caller then looks
  // at the claims for them).
  static constexpr int kFlagged = 6;
  static void Help(const std::shared_ptr<State>& state);
  // The next slice of call `g` (a generation) for this thread, or -1 when
  // none is left or the call is over.
  static int Claim(State& st, uint64_t g, int slices);
  // Runs claimed slice s and counts it done.
  static void RunClaimed(State& st, Task& task, int s, int slices, const Words& words);
  std::shared_ptr<State> state_;
};

// A Session's SliceCrew with what its calls keep from one to the next (the
// task in batch_split.cc): the last call's full outputs, filled again where
// the caller let go of them, and each slice's inputs' and outputs' dtypes
// and dims. A worker then reads of a call only the crew's words (the
// batch, the split, the inputs' and outputs' addresses) unless those dtypes
// and dims changed: the rest it has from earlier calls.
class CrewSlices {
 public:
  // `plan` and `memory` outlive this; `max_slices`: the arena's concurrency.
  CrewSlices(std::chrono::microseconds spin, const GraphPlan& plan, MemoryPlanner& memory, int max_slices);
  ~CrewSlices();
  CrewSlices(const CrewSlices&) = delete;
  CrewSlices& operator=(const CrewSlices&) = delete;

  class Task;  // batch_split.cc
  SliceCrew& crew() { return crew_; }
  Task& task() { return *task_; }

 private:
  std::unique_ptr<Task> task_;
  SliceCrew crew_;  // gone first: its waiting workers stop
};

// Runs `plan` on `inputs` (every one a tensor whose axis 0 has `batch`
// rows, as the analysis requires) as `slices` slices in one parallel region
// inside `exec.arena` (entered by the caller). Slice s gets rows
// [SliceBegin(s), SliceBegin(s + 1)) (two slices run by the crew: split at
// its SplitRow, and their times go to its Observe), runs serially with
// memory planned by `memory` for its own input shapes, and writes the graph
// outputs straight into rows of the full outputs. `exec.profile`, when set,
// gets the first slice's node events. `crew`, when given (its plan and
// memory those given here), runs the slices from the calling thread, which
// then need not be inside exec.arena (when the crew is busy, a parallel_for
// in exec.arena does); without one, a parallel_for does.
// REQUIRES: slices >= 2, batch >= slices, the plan's graph separable; without
// a crew, the caller runs inside exec.arena.
absl::StatusOr<std::vector<Value>> ExecuteBatchSlices(const GraphPlan& plan, const std::vector<Value>& inputs,
                                                      int64_t batch, int slices, const ExecutionContext& exec,
                                                      MemoryPlanner& memory, CrewSlices* crew = nullptr);

}  // namespace hepml
