#include "runtime/memory_plan.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace hepml {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kMaxPlans = 32;  // distinct input signatures kept per Session

size_t RoundUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

struct AlignedBuffer {
  explicit AlignedBuffer(size_t n) : bytes(RoundUp(std::max<size_t>(n, 1))) {
    data = static_cast<uint8_t*>(std::aligned_alloc(kAlign, bytes));
    if (data == nullptr) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(data); }
  uint8_t* data;
  size_t bytes;
};

}  // namespace

MemoryPlan AssignOffsets(const std::vector<Allocation>& allocations) {
  MemoryPlan plan;
  plan.offsets.assign(allocations.size(), -1);
  plan.capacity.resize(allocations.size());
  std::vector<size_t> order;
  for (size_t i = 0; i < allocations.size(); ++i) {
    plan.capacity[i] = RoundUp(allocations[i].bytes);
    if (allocations[i].last_step != kEscapes && allocations[i].bytes > 0) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return plan.capacity[a] > plan.capacity[b]; });
  std::vector<size_t> placed;
  for (size_t i : order) {
    const Allocation& a = allocations[i];
    // Regions of already placed allocations alive at the same time, by offset.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t j : placed) {
      const Allocation& b = allocations[j];
      if (a.first_step <= b.last_step && b.first_step <= a.last_step) {
        busy.emplace_back(plan.offsets[j], plan.offsets[j] + static_cast<int64_t>(plan.capacity[j]));
      }
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& [lo, hi] : busy) {
      if (offset + static_cast<int64_t>(plan.capacity[i]) <= lo) break;
      offset = std::max(offset, hi);
    }
    plan.offsets[i] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, static_cast<size_t>(offset) + plan.capacity[i]);
    placed.push_back(i);
  }
  return plan;
}

// One input signature: its plan (once recorded) and a pool of allocators,
// each with its arena. Entries live as long as the planner.
struct MemoryPlanner::Entry {
  std::shared_ptr<const MemoryPlan> plan;    // null until the recording run ends
  bool recording = false;                    // a recording run is under way
  std::atomic<bool> disabled{false};         // planning failed its safety check
  std::vector<std::unique_ptr<Planned>> free_allocators;
};

// First run: heap allocations whose release steps are recorded.
class MemoryPlanner::Recorder final : public RunAllocator {
 public:
  explicit Recorder(std::shared_ptr<Entry> entry) : entry_(std::move(entry)), log_(std::make_shared<Log>()) {}

  Tensor Allocate(DType dtype, Shape shape) override {
    Tensor t = Tensor::Empty(dtype, std::move(shape));
    size_t index = log_->allocations.size();
    log_->allocations.push_back({t.nbytes(), step_, kEscapes});
    // A token whose deleter notes when the last reference (views included) went.
    std::shared_ptr<void> token(nullptr, [log = log_, index, self = this](void*) {
      std::lock_guard<std::mutex> lock(log->mu);
      if (!log->finished) log->allocations[index].last_step = self->step_;
    });
    return WithToken(std::move(t), std::move(token));
  }

  MemoryPlan Finish() {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->finished = true;
    return AssignOffsets(log_->allocations);
  }
  const std::shared_ptr<Entry>& entry() const { return entry_; }

 private:
  struct Log {
    std::mutex mu;
    bool finished = false;
    std::vector<Allocation> allocations;
  };
  // The tensor keeps both its storage and the token alive.
  static Tensor WithToken(Tensor t, std::shared_ptr<void> token) {
    auto both = std::make_shared<std::pair<Tensor, std::shared_ptr<void>>>(t, std::move(token));
    void* data = t.raw_mutable_data();
    return Tensor::Wrap(t.dtype(), t.shape(), data, std::shared_ptr<void>(both, data));
  }

  std::shared_ptr<Entry> entry_;
  std::shared_ptr<Log> log_;
};

// Steady state: allocation i goes to its planned offset in the arena this
// allocator owns for its whole life.
class MemoryPlanner::Planned final : public RunAllocator {
 public:
  Planned(Entry* entry, const std::vector<int64_t>& signature)
      : entry_(entry), plan_(entry->plan.get()), signature_(signature),
        arena_(std::make_shared<AlignedBuffer>(plan_->arena_bytes)) {}
  void Restart() {
    next_ = 0;
    step_ = 0;
  }
  Tensor Allocate(DType dtype, Shape shape) override {
    size_t i = next_++;
    size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
    if (arena_ && i < plan_->offsets.size() && plan_->offsets[i] >= 0 && bytes <= plan_->capacity[i]) {
      void* data = arena_->data + plan_->offsets[i];
      // Aliasing constructor: references the arena without allocating.
      return Tensor::Wrap(dtype, std::move(shape), data, std::shared_ptr<void>(arena_, data));
    }
    return Tensor::Empty(dtype, std::move(shape));
  }
  Entry* const entry_;
  const MemoryPlan* const plan_;  // owned by the entry, set once
  const std::vector<int64_t> signature_;
  std::shared_ptr<AlignedBuffer> arena_;  // null once the entry is disabled
  size_t next_ = 0;
};

MemoryPlanner::ThreadSlot& MemoryPlanner::SlotOf(ThreadSlot* slots) {
  static std::atomic<size_t> next_thread{0};
  thread_local const size_t index = next_thread.fetch_add(1, std::memory_order_relaxed) % kThreadSlots;
  return slots[index];
}

MemoryPlanner::MemoryPlanner(bool enabled)
    : enabled_(enabled), thread_slots_(enabled ? new ThreadSlot[kThreadSlots] : nullptr) {}

MemoryPlanner::~MemoryPlanner() {
  if (!thread_slots_) return;
  for (size_t i = 0; i < kThreadSlots; ++i) delete thread_slots_[i].planned.load(std::memory_order_acquire);
}

void MemoryPlanner::Signature(const std::vector<Value>& inputs, std::vector<int64_t>* out) {
  out->clear();
  for (const Value& v : inputs) {
    out->push_back(static_cast<int64_t>(v.kind));
    if (v.kind != Value::Kind::kTensor) continue;
    out->push_back(static_cast<int64_t>(v.tensor.dtype()));
    out->push_back(v.tensor.rank());
    out->insert(out->end(), v.tensor.shape().begin(), v.tensor.shape().end());
  }
}

RunAllocator* MemoryPlanner::Begin(const std::vector<int64_t>& signature) {
  if (!enabled_) return nullptr;
  std::unique_ptr<Planned> stale;
  if (Planned* mine = SlotOf(thread_slots_.get()).planned.exchange(nullptr, std::memory_order_acquire)) {
    if (mine->signature_ == signature && !mine->entry_->disabled.load(std::memory_order_relaxed)) {
      mine->Restart();
      return mine;
    }
    stale.reset(mine);  // another signature: back to its entry's pool below
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stale) stale->entry_->free_allocators.push_back(std::move(stale));
  auto it = entries_.find(signature);
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxPlans) return nullptr;
    it = entries_.emplace(signature, std::make_shared<Entry>()).first;
  }
  Entry* entry = it->second.get();
  if (entry->disabled.load(std::memory_order_relaxed)) return nullptr;
  if (!entry->plan) {
    if (entry->recording) return nullptr;  // another thread is recording
    entry->recording = true;
    return new Recorder(it->second);
  }
  if (entry->free_allocators.empty()) return new Planned(entry, signature);
  Planned* alloc = entry->free_allocators.back().release();
  entry->free_allocators.pop_back();
  alloc->Restart();
  return alloc;
}

void MemoryPlanner::End(RunAllocator* allocator) {
  if (allocator == nullptr) return;
  if (auto* rec = dynamic_cast<Recorder*>(allocator)) {
    MemoryPlan plan = rec->Finish();
    std::shared_ptr<Entry> entry = rec->entry();
    delete rec;
    std::lock_guard<std::mutex> lock(mu_);
    entry->recording = false;
    entry->plan = std::make_shared<const MemoryPlan>(std::move(plan));
    return;
  }
  std::unique_ptr<Planned> planned(static_cast<Planned*>(allocator));
  if (planned->arena_.use_count() == 1) {
    // The usual case: keep it for this thread's next run.
    Planned* empty = nullptr;
    if (SlotOf(thread_slots_.get()).planned.compare_exchange_strong(empty, planned.get(),
                                                                    std::memory_order_release)) {
      planned.release();
      return;
    }
  } else if (planned->arena_) {
    // Something still references the arena after the run: the plan missed an
    // alias. Keep that memory with its user and stop planning this signature.
    planned->arena_.reset();
    planned->entry_->disabled.store(true, std::memory_order_relaxed);
  }
  std::lock_guard<std::mutex> lock(mu_);
  planned->entry_->free_allocators.push_back(std::move(planned));
}

size_t MemoryPlanner::num_plans() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [sig, e] : entries_) n += e->plan != nullptr;
  return n;
}

size_t MemoryPlanner::arena_bytes(const std::vector<int64_t>& signature) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(signature);
  return it == entries_.end() || !it->second->plan ? 0 : it->second->plan->arena_bytes;
}

}  // namespace hepml
