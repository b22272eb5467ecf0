#include "runtime/memory_plan.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

namespace hepml {
namespace {

bool Overlap(const Allocation& a, const Allocation& b) {
  return a.first_step <= b.last_step && b.first_step <= a.last_step;
}

TEST(AssignOffsetsTest, ReusesMemoryOfTensorsNotAliveTogether) {
  // A chain: each tensor dies right after the next is made.
  std::vector<Allocation> chain = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  MemoryPlan plan = AssignOffsets(chain);
  EXPECT_EQ(plan.arena_bytes, 2 * 1024u);  // two live at a time, 64-byte rounded
}

TEST(AssignOffsetsTest, LiveTensorsNeverShareBytes) {
  std::vector<Allocation> allocs;
  for (int i = 0; i < 40; ++i) {
    allocs.push_back({static_cast<size_t>(64 * (1 + (i * 7) % 13)), i % 9, i % 9 + (i % 4)});
  }
  allocs.push_back({5000, 0, kEscapes});
  MemoryPlan plan = AssignOffsets(allocs);
  EXPECT_EQ(plan.offsets.back(), -1);  // escaping tensors get their own memory
  for (size_t i = 0; i + 1 < allocs.size(); ++i) {
    ASSERT_GE(plan.offsets[i], 0);
    EXPECT_LE(plan.offsets[i] + static_cast<int64_t>(plan.capacity[i]), static_cast<int64_t>(plan.arena_bytes));
    for (size_t j = i + 1; j + 1 < allocs.size(); ++j) {
      if (!Overlap(allocs[i], allocs[j])) continue;
      bool disjoint = plan.offsets[i] + static_cast<int64_t>(plan.capacity[i]) <= plan.offsets[j] ||
                      plan.offsets[j] + static_cast<int64_t>(plan.capacity[j]) <= plan.offsets[i];
      EXPECT_TRUE(disjoint) << i << " and " << j;
    }
  }
}

TEST(MemoryPlannerTest, RecordsThenServesFromAnArena) {
  MemoryPlanner planner(true);
  const std::vector<int64_t> sig = {0, 1, 1, 4};
  RunAllocator* first = planner.Begin(sig);
  ASSERT_NE(first, nullptr);
  {
    first->set_step(0);
    Tensor a = first->Allocate(DType::kFloat32, {256});
    first->set_step(1);
    Tensor b = first->Allocate(DType::kFloat32, {256});
    a = Tensor();  // released at step 1
    first->set_step(2);
    Tensor c = first->Allocate(DType::kFloat32, {256});
  }
  planner.End(first);
  EXPECT_EQ(planner.num_plans(), 1u);
  EXPECT_EQ(planner.arena_bytes(sig), 2 * 1024u);
  RunAllocator* second = planner.Begin(sig);
  ASSERT_NE(second, nullptr);
  second->set_step(0);
  Tensor a = second->Allocate(DType::kFloat32, {256});
  second->set_step(1);
  Tensor b = second->Allocate(DType::kFloat32, {256});
  Tensor bigger = second->Allocate(DType::kFloat32, {100000});  // over plan: own memory
  EXPECT_NE(a.raw_data(), b.raw_data());
  a = Tensor();
  b = Tensor();
  bigger = Tensor();
  planner.End(second);
  EXPECT_EQ(planner.num_plans(), 1u);
}

// Plans the signature with one run that allocates two overlapping tensors.
void RecordTwo(MemoryPlanner& planner, const std::vector<int64_t>& sig) {
  RunAllocator* rec = planner.Begin(sig);
  ASSERT_NE(rec, nullptr);
  {
    rec->set_step(0);
    Tensor a = rec->Allocate(DType::kFloat32, {64});
    Tensor b = rec->Allocate(DType::kFloat32, {64});
    rec->set_step(1);
  }
  planner.End(rec);
}

TEST(MemoryPlannerTest, AThreadGetsItsArenaBackRunAfterRun) {
  MemoryPlanner planner(true);
  const std::vector<int64_t> sig = {0, 1, 1, 64};
  RecordTwo(planner, sig);
  const void* first_data = nullptr;
  for (int run = 0; run < 3; ++run) {
    RunAllocator* alloc = planner.Begin(sig);
    ASSERT_NE(alloc, nullptr);
    Tensor a = alloc->Allocate(DType::kFloat32, {64});
    if (run == 0) first_data = a.raw_data();
    EXPECT_EQ(a.raw_data(), first_data) << "run " << run;
    a = Tensor();
    planner.End(alloc);
  }
}

TEST(MemoryPlannerTest, SwitchingSignaturesKeepsEachPlan) {
  MemoryPlanner planner(true);
  const std::vector<int64_t> small = {0, 1, 1, 64};
  const std::vector<int64_t> large = {0, 1, 1, 4096};
  RecordTwo(planner, small);
  RecordTwo(planner, large);
  for (int run = 0; run < 4; ++run) {
    const auto& sig = run % 2 ? large : small;
    RunAllocator* alloc = planner.Begin(sig);
    ASSERT_NE(alloc, nullptr);
    Tensor a = alloc->Allocate(DType::kFloat32, {sig[3]});
    Tensor b = alloc->Allocate(DType::kFloat32, {sig[3]});
    EXPECT_NE(a.raw_data(), b.raw_data());
    a = Tensor();
    b = Tensor();
    planner.End(alloc);
  }
  EXPECT_EQ(planner.num_plans(), 2u);
}

// Runs in flight at the same time never share an arena.
TEST(MemoryPlannerTest, ConcurrentRunsGetDisjointArenas) {
  MemoryPlanner planner(true);
  const std::vector<int64_t> sig = {0, 1, 1, 64};
  RecordTwo(planner, sig);
  constexpr int kThreads = 4;
  std::atomic<int> overlaps{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int run = 0; run < 2000; ++run) {
        RunAllocator* alloc = planner.Begin(sig);
        if (alloc == nullptr) { overlaps++; return; }
        Tensor a = alloc->Allocate(DType::kFloat32, {64});
        float* p = a.mutable_data<float>();
        for (int i = 0; i < 64; ++i) p[i] = static_cast<float>(t * 100000 + run);
        std::this_thread::yield();
        for (int i = 0; i < 64; ++i) {
          if (p[i] != static_cast<float>(t * 100000 + run)) overlaps++;
        }
        a = Tensor();
        planner.End(alloc);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
}

// A tensor still alive after the run (a missed alias) keeps its memory and
// turns planning off for that signature; later runs take heap memory.
TEST(MemoryPlannerTest, AnArenaStillReferencedAfterTheRunStopsPlanning) {
  MemoryPlanner planner(true);
  const std::vector<int64_t> sig = {0, 1, 1, 64};
  RecordTwo(planner, sig);
  RunAllocator* alloc = planner.Begin(sig);
  ASSERT_NE(alloc, nullptr);
  Tensor kept = alloc->Allocate(DType::kFloat32, {64});
  kept.mutable_data<float>()[0] = 42.0f;
  planner.End(alloc);
  EXPECT_EQ(planner.Begin(sig), nullptr);
  EXPECT_EQ(kept.data<float>()[0], 42.0f);
}

TEST(MemoryPlannerTest, DisabledPlannerGivesNoAllocator) {
  MemoryPlanner planner(false);
  EXPECT_EQ(planner.Begin({0, 1, 0}), nullptr);
}

}  // namespace
}  // namespace hepml
