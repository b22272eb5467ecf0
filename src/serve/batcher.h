// Dynamic batcher: one per served model version.
//
// Requests (BatchItems) wait in a FIFO queue. A scheduler thread forms a
// batch whenever a model instance is idle: it takes the oldest request and
// the queued requests that can run with it (same input names, dtypes and
// non-batch dimensions, same requested outputs) up to max_batch_size. It
// runs the batch at once when it reaches max_batch_size or the largest
// preferred batch size it can make exactly; otherwise it waits for more
// requests, but never past the oldest request's max_queue_delay. While every
// instance is busy, requests keep queueing, so batches grow with load.
// `instances` worker threads execute batches concurrently; the outputs are
// split back along the first dimension and handed to each request's `done`.
// A blocking caller's request that can run at once runs on its own thread
// (Submit's `may_run_here`).
//
// Thread safety: Submit may be called from any thread. `done` and the
// execution report run on a worker thread (or on the caller's, see Submit);
// they must not call Shutdown or destroy the Batcher.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hepml/session.h"
#include "hepml/status.h"
#include "hepml/tensor.h"

namespace hepml::serve {

struct BatcherOptions {
  // 0: the model takes no batch dimension; every request runs alone.
  int max_batch_size = 0;
  // false: no gathering, each request is one execution (Triton's default
  // scheduler); true: dynamic batching.
  bool dynamic = false;
  std::vector<int> preferred_batch_sizes;
  int64_t max_queue_delay_us = 0;
  // Requests allowed to wait; more are rejected with UNAVAILABLE. 0: no limit.
  size_t max_queue_size = 0;
  // Batches executed at once (model instances).
  int instances = 1;
  // A request still queued this long is answered UNAVAILABLE ("timeout")
  // without running. 0: requests wait as long as it takes.
  int64_t queue_timeout_us = 0;
};

// Where a request's time went, in nanoseconds. The compute times are those
// of the batch the request ran in.
struct RequestTiming {
  int64_t queue_ns = 0;
  int64_t compute_input_ns = 0;   // gathering the batch's inputs
  int64_t compute_infer_ns = 0;   // running the model
  int64_t compute_output_ns = 0;  // splitting the outputs
  int batch_size = 0;             // of the execution
};

// One model execution, reported once per batch.
struct ExecutionReport {
  int batch_size = 0;  // sum of the requests' batch sizes
  int requests = 0;
  bool ok = false;
  int64_t compute_input_ns = 0;
  int64_t compute_infer_ns = 0;
  int64_t compute_output_ns = 0;
};

struct BatchItem {
  // With max_batch_size > 0 each input has the batch as first dimension, the
  // same size in all inputs. Inputs must come in one fixed order per model.
  Session::NamedTensors inputs;
  std::vector<std::string> output_names;  // passed to the executor
  std::function<void(absl::StatusOr<std::vector<Tensor>>, const RequestTiming&)> done;
};

// Runs one batch on model instance `instance` (0 <= instance < instances; no
// two executions at a time get the same one).
using BatchExecutor = std::function<absl::StatusOr<std::vector<Tensor>>(
    const Session::NamedTensors& inputs, const std::vector<std::string>& output_names, int instance)>;

class Batcher {
 public:
  Batcher(BatcherOptions options, BatchExecutor executor,
          std::function<void(const ExecutionReport&)> on_execution = {});
  ~Batcher();  // Shutdown()
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues a request. UNAVAILABLE when the queue is full or the batcher is
  // shutting down; INVALID_ARGUMENT when its batch size is not in
  // [1, max_batch_size]. On error `item.done` is not called.
  //
  // With `may_run_here`, a request that would run at once anyway (nothing
  // queued, an instance idle, and no batching or no queue delay to wait out)
  // runs on the calling thread before Submit returns, `done` included: a
  // blocking caller then pays no thread hand-off. Callers that must not
  // block (a stream reading its next request) leave it false.
  absl::Status Submit(BatchItem item, bool may_run_here = false);

  // From now on batches run as soon as an instance is idle, without waiting
  // for max_queue_delay (the server is stopping); submissions still accepted.
  void Flush();

  // Runs every queued request, then stops the threads. Idempotent.
  void Shutdown();

  size_t queued() const;

 private:
  struct Pending {
    BatchItem item;
    std::string key;  // compatibility: inputs' names, dtypes, non-batch dims; outputs
    int batch_size = 1;
    std::chrono::steady_clock::time_point enqueued;
  };
  using Batch = std::vector<Pending>;

  void ScheduleLoop();
  // REQUIRES: lock holds mu_. Answers the queued requests past their queue
  // timeout (releasing the lock while their callbacks run).
  void ExpireLocked(std::unique_lock<std::mutex>& lock);
  void WorkerLoop();
  // REQUIRES: mu_ held, queue_ not empty. Indices of queue_ entries for the
  // next batch, and whether it should run now.
  std::vector<size_t> Gather(bool* run_now) const;
  void Execute(Batch batch, int instance);

  const BatcherOptions options_;
  const BatchExecutor executor_;
  const std::function<void(const ExecutionReport&)> on_execution_;

  mutable std::mutex mu_;
  std::condition_variable schedule_cv_;  // new request, idle instance, stop
  std::condition_variable ready_cv_;     // batch ready, stop
  std::deque<Pending> queue_;
  std::deque<std::pair<Batch, int>> ready_;  // a batch and the instance it took
  int idle_ = 0;
  std::vector<int> free_instances_;
  bool flushing_ = false;       // do not wait for max_queue_delay
  bool stopping_ = false;       // no more submissions; drain
  bool workers_stop_ = false;   // ready_ drained; workers exit
  bool shut_down_ = false;
  std::thread scheduler_;
  std::vector<std::thread> workers_;
};

// Helpers shared with the front ends.
// Rows [begin, end) of `t` along the first dimension (a copy).
Tensor SliceRows(const Tensor& t, int64_t begin, int64_t end);
// `parts` joined along the first dimension. REQUIRES: same dtype and
// non-batch dimensions.
Tensor ConcatRows(const std::vector<const Tensor*>& parts);

}  // namespace hepml::serve
