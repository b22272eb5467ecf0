#include "serve/batcher.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace hepml::serve {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NanosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

void CopyElements(const Tensor& src, int64_t src_offset, Tensor& dst, int64_t dst_offset, int64_t count) {
  if (count <= 0) return;
  if (src.dtype() == DType::kString) {
    const std::string* s = src.data<std::string>() + src_offset;
    std::string* d = dst.mutable_data<std::string>() + dst_offset;
    for (int64_t i = 0; i < count; ++i) d[i] = s[i];
    return;
  }
  size_t esize = DTypeSize(src.dtype());
  std::memcpy(static_cast<char*>(dst.raw_mutable_data()) + dst_offset * esize,
              static_cast<const char*>(src.raw_data()) + src_offset * esize, count * esize);
}

}  // namespace

Tensor SliceRows(const Tensor& t, int64_t begin, int64_t end) {
  Shape shape = t.shape();
  int64_t row = shape.empty() || shape[0] == 0 ? 0 : t.size() / shape[0];
  shape[0] = end - begin;
  Tensor out = Tensor::Empty(t.dtype(), shape);
  CopyElements(t, begin * row, out, 0, (end - begin) * row);
  return out;
}

Tensor ConcatRows(const std::vector<const Tensor*>& parts) {
  Shape shape = parts[0]->shape();
  int64_t rows = 0;
  for (const Tensor* p : parts) rows += p->shape()[0];
  shape[0] = rows;
  Tensor out = Tensor::Empty(parts[0]->dtype(), shape);
  int64_t offset = 0;
  for (const Tensor* p : parts) {
    CopyElements(*p, 0, out, offset, p->size());
    offset += p->size();
  }
  return out;
}

Batcher::Batcher(BatcherOptions options, BatchExecutor executor,
                 std::function<void(const ExecutionReport&)> on_execution)
    : options_(std::move(options)), executor_(std::move(executor)), on_execution_(std::move(on_execution)) {
  int instances = std::max(1, options_.instances);
  idle_ = instances;
  for (int i = instances - 1; i >= 0; --i) free_instances_.push_back(i);
  for (int i = 0; i < instances; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  scheduler_ = std::thread([this] { ScheduleLoop(); });
}

Batcher::~Batcher() { Shutdown(); }

size_t Batcher::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

absl::Status Batcher::Submit(BatchItem item, bool may_run_here) {
  Pending p;
  p.batch_size = 1;
  if (options_.max_batch_size > 0) {
    if (item.inputs.empty() || item.inputs[0].second.rank() == 0)
      return absl::InvalidArgumentError("a batched model needs inputs with a batch dimension");
    int64_t b = item.inputs[0].second.dim(0);
    if (b < 1 || b > options_.max_batch_size)
      return absl::InvalidArgumentError(
          absl::StrCat("batch size ", b, " is outside [1, ", options_.max_batch_size, "] (max_batch_size)"));
    p.batch_size = static_cast<int>(b);
  }
  for (const auto& [name, t] : item.inputs) {
    absl::StrAppend(&p.key, name, ":", static_cast<int>(t.dtype()), ":");
    for (int d = 1; d < t.rank(); ++d) absl::StrAppend(&p.key, t.dim(d), ",");
    p.key += ";";
  }
  p.key += "->";
  for (const std::string& o : item.output_names) absl::StrAppend(&p.key, o, ";");
  p.item = std::move(item);
  p.enqueued = Clock::now();
  bool batching = options_.dynamic && options_.max_batch_size > 0;
  int instance = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("the model is shutting down");
    if (options_.max_queue_size > 0 && queue_.size() >= options_.max_queue_size)
      return absl::UnavailableError(
          absl::StrCat("exceeds maximum queue size (", options_.max_queue_size, " requests waiting)"));
    // What the scheduler would do at once: run it alone on an idle instance.
    if (may_run_here && queue_.empty() && ready_.empty() && idle_ > 0 &&
        (!batching || options_.max_queue_delay_us <= 0 || p.batch_size >= options_.max_batch_size)) {
      --idle_;
      instance = free_instances_.back();
      free_instances_.pop_back();
    } else {
      queue_.push_back(std::move(p));
    }
  }
  if (instance < 0) {
    schedule_cv_.notify_one();
    return absl::OkStatus();
  }
  Batch batch;
  batch.push_back(std::move(p));
  Execute(std::move(batch), instance);
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++idle_;
    free_instances_.push_back(instance);
    // Only the scheduler with requests waiting for an instance, or Shutdown
    // waiting for this run, wants to know; waking the idle scheduler after
    // every request would cost each one a futex call and a context switch.
    wake = !queue_.empty() || stopping_;
  }
  if (wake) schedule_cv_.notify_all();
  return absl::OkStatus();
}

std::vector<size_t> Batcher::Gather(bool* run_now) const {
  std::vector<size_t> picked{0};
  const Pending& head = queue_.front();
  int total = head.batch_size;
  bool batching = options_.dynamic && options_.max_batch_size > 0;
  if (batching) {
    for (size_t i = 1; i < queue_.size() && total < options_.max_batch_size; ++i) {
      const Pending& p = queue_[i];
      if (p.key != head.key || total + p.batch_size > options_.max_batch_size) continue;
      picked.push_back(i);
      total += p.batch_size;
    }
  }
  if (!batching || total >= options_.max_batch_size || stopping_ || flushing_) {
    *run_now = true;
    return picked;
  }
  // The largest preferred size a prefix of the picked requests makes exactly.
  if (!options_.preferred_batch_sizes.empty()) {
    int best_prefix = 0, best_size = 0, sum = 0;
    for (size_t k = 0; k < picked.size(); ++k) {
      sum += queue_[picked[k]].batch_size;
      for (int pref : options_.preferred_batch_sizes)
        if (sum == pref && pref > best_size) {
          best_size = pref;
          best_prefix = static_cast<int>(k) + 1;
        }
    }
    int largest_pref = *std::max_element(options_.preferred_batch_sizes.begin(), options_.preferred_batch_sizes.end());
    // Run a preferred batch now when it is the largest preferred size, or
    // when it takes every compatible request waiting.
    if (best_size > 0 && (best_size == largest_pref || best_prefix == static_cast<int>(picked.size()))) {
      picked.resize(best_prefix);
      *run_now = true;
      return picked;
    }
  }
  auto deadline = head.enqueued + std::chrono::microseconds(options_.max_queue_delay_us);
  *run_now = Clock::now() >= deadline;
  return picked;
}

void Batcher::ExpireLocked(std::unique_lock<std::mutex>& lock) {
  if (options_.queue_timeout_us <= 0) return;
  auto now = Clock::now();
  auto timeout = std::chrono::microseconds(options_.queue_timeout_us);
  std::vector<Pending> expired;
  // FIFO with one timeout: the expired requests are at the front.
  while (!queue_.empty() && queue_.front().enqueued + timeout <= now) {
    expired.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  if (expired.empty()) return;
  lock.unlock();
  for (Pending& p : expired) {
    RequestTiming timing;
    timing.queue_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - p.enqueued).count();
    p.item.done(absl::UnavailableError(absl::StrCat("request timeout expired: queued longer than ",
                                                    options_.queue_timeout_us, " us")),
                timing);
  }
  lock.lock();
}

void Batcher::ScheduleLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ExpireLocked(lock);
    if (stopping_ && queue_.empty()) break;
    if (queue_.empty() || idle_ == 0) {
      // Woken by a new request, an idle instance or stop; or to expire the
      // oldest request.
      if (options_.queue_timeout_us > 0 && !queue_.empty())
        schedule_cv_.wait_until(lock, queue_.front().enqueued + std::chrono::microseconds(options_.queue_timeout_us));
      else
        schedule_cv_.wait(lock);
      continue;
    }
    bool run_now = false;
    std::vector<size_t> picked = Gather(&run_now);
    if (!run_now) {
      auto deadline = queue_.front().enqueued + std::chrono::microseconds(options_.max_queue_delay_us);
      // Woken by a new request (re-gather) or by the deadline.
      schedule_cv_.wait_until(lock, deadline);
      continue;
    }
    Batch batch;
    batch.reserve(picked.size());
    for (size_t i : picked) batch.push_back(std::move(queue_[i]));
    for (auto it = picked.rbegin(); it != picked.rend(); ++it) queue_.erase(queue_.begin() + *it);
    --idle_;
    int instance = free_instances_.back();
    free_instances_.pop_back();
    ready_.emplace_back(std::move(batch), instance);
    ready_cv_.notify_one();
  }
  workers_stop_ = true;
  ready_cv_.notify_all();
}

void Batcher::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ready_cv_.wait(lock, [&] { return !ready_.empty() || workers_stop_; });
    if (ready_.empty()) return;
    auto [batch, instance] = std::move(ready_.front());
    ready_.pop_front();
    lock.unlock();
    Execute(std::move(batch), instance);
    lock.lock();
    ++idle_;
    free_instances_.push_back(instance);
    schedule_cv_.notify_one();
  }
}

void Batcher::Execute(Batch batch, int instance) {
  auto start = Clock::now();
  std::vector<RequestTiming> timings(batch.size());
  for (size_t i = 0; i < batch.size(); ++i)
    timings[i].queue_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(start - batch[i].enqueued).count();
  ExecutionReport report;
  report.requests = static_cast<int>(batch.size());
  for (const Pending& p : batch) report.batch_size += p.batch_size;

  // Gather the inputs (a single request runs on its own tensors).
  Session::NamedTensors inputs;
  if (batch.size() == 1) {
    inputs = std::move(batch[0].item.inputs);
  } else {
    const auto& first = batch[0].item.inputs;
    inputs.reserve(first.size());
    std::vector<const Tensor*> parts(batch.size());
    for (size_t k = 0; k < first.size(); ++k) {
      for (size_t i = 0; i < batch.size(); ++i) parts[i] = &batch[i].item.inputs[k].second;
      inputs.emplace_back(first[k].first, ConcatRows(parts));
    }
  }
  report.compute_input_ns = NanosSince(start);

  auto infer_start = Clock::now();
  absl::StatusOr<std::vector<Tensor>> outputs = executor_(inputs, batch[0].item.output_names, instance);
  report.compute_infer_ns = NanosSince(infer_start);
  inputs.clear();

  auto output_start = Clock::now();
  std::vector<absl::StatusOr<std::vector<Tensor>>> results;
  results.reserve(batch.size());
  if (!outputs.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) results.push_back(outputs.status());
  } else if (batch.size() == 1) {
    results.push_back(std::move(outputs));
  } else {
    absl::Status bad;
    for (const Tensor& t : *outputs)
      if (t.rank() == 0 || t.dim(0) != report.batch_size)
        bad = absl::InternalError(absl::StrCat("the model returned an output of shape ", ShapeToString(t.shape()),
                                               " for a batch of ", report.batch_size,
                                               "; outputs must keep the batch as first dimension"));
    int64_t offset = 0;
    for (const Pending& p : batch) {
      if (!bad.ok()) {
        results.push_back(bad);
        continue;
      }
      std::vector<Tensor> mine;
      mine.reserve(outputs->size());
      for (const Tensor& t : *outputs) mine.push_back(SliceRows(t, offset, offset + p.batch_size));
      offset += p.batch_size;
      results.push_back(std::move(mine));
    }
  }
  outputs = absl::StatusOr<std::vector<Tensor>>();
  report.compute_output_ns = NanosSince(output_start);
  report.ok = !results.empty() && results[0].ok();

  if (on_execution_) on_execution_(report);
  for (size_t i = 0; i < batch.size(); ++i) {
    timings[i].compute_input_ns = report.compute_input_ns;
    timings[i].compute_infer_ns = report.compute_infer_ns;
    timings[i].compute_output_ns = report.compute_output_ns;
    timings[i].batch_size = report.batch_size;
    batch[i].item.done(std::move(results[i]), timings[i]);
  }
}

void Batcher::Flush() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    flushing_ = true;
  }
  schedule_cv_.notify_all();
}

void Batcher::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    stopping_ = true;
  }
  schedule_cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  for (std::thread& t : workers_)
    if (t.joinable()) t.join();
  // Requests running on their callers' threads finish too.
  std::unique_lock<std::mutex> lock(mu_);
  schedule_cv_.wait(lock, [&] { return idle_ == std::max(1, options_.instances); });
}

}  // namespace hepml::serve
