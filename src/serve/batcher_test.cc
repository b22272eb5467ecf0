#include "serve/batcher.h"

#include <future>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"

namespace hepml::serve {
namespace {

// An executor that returns its input ("y" = "x") and records batch sizes.
// The first call can be held until `release` so that requests queue up.
struct Recorder {
  std::mutex mu;
  std::vector<int64_t> batch_sizes;
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> first_started;
  bool hold_first = false;
  bool fail = false;

  BatchExecutor Executor() {
    return [this](const Session::NamedTensors& inputs, const std::vector<std::string>&, int) -> absl::StatusOr<std::vector<Tensor>> {
      bool first;
      {
        std::lock_guard<std::mutex> lock(mu);
        first = batch_sizes.empty();
        batch_sizes.push_back(inputs[0].second.dim(0));
      }
      if (first && hold_first) {
        first_started.set_value();
        gate.wait();
      }
      if (fail) return absl::InternalError("model failed");
      return std::vector<Tensor>{inputs[0].second.Clone()};
    };
  }
  std::vector<int64_t> Sizes() {
    std::lock_guard<std::mutex> lock(mu);
    return batch_sizes;
  }
};

Tensor Rows(int64_t rows, int64_t cols, float first) {
  std::vector<float> v(rows * cols);
  for (size_t i = 0; i < v.size(); ++i) v[i] = first + static_cast<float>(i);
  return Tensor::FromVector<float>({rows, cols}, v);
}

struct Result {
  std::promise<absl::StatusOr<std::vector<Tensor>>> promise;
  std::future<absl::StatusOr<std::vector<Tensor>>> future = promise.get_future();
  RequestTiming timing;
};

BatchItem Item(Tensor x, Result* r) {
  BatchItem item;
  item.inputs = {{"x", std::move(x)}};
  item.output_names = {"y"};
  item.done = [r](absl::StatusOr<std::vector<Tensor>> out, const RequestTiming& t) {
    r->timing = t;
    r->promise.set_value(std::move(out));
  };
  return item;
}

void ExpectRows(Result& r, int64_t rows, int64_t cols, float first) {
  auto out = r.future.get();
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  const Tensor& y = (*out)[0];
  ASSERT_EQ(y.shape(), (Shape{rows, cols}));
  for (int64_t i = 0; i < y.size(); ++i) EXPECT_EQ(y.data<float>()[i], first + i);
}

TEST(BatcherTest, SingleRequestGetsItsOutput) {
  Recorder rec;
  Batcher batcher({.max_batch_size = 8, .dynamic = true}, rec.Executor());
  Result r;
  ASSERT_TRUE(batcher.Submit(Item(Rows(2, 3, 10), &r)).ok());
  ExpectRows(r, 2, 3, 10);
  EXPECT_EQ(rec.Sizes(), (std::vector<int64_t>{2}));
}

TEST(BatcherTest, QueuedRequestsRunAsOneBatchAndSplitBack) {
  Recorder rec;
  rec.hold_first = true;
  Batcher batcher({.max_batch_size = 8, .dynamic = true, .max_queue_delay_us = 0, .instances = 1}, rec.Executor());
  Result first;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 2, 0), &first)).ok());
  rec.first_started.get_future().wait();  // the only instance is busy now
  std::vector<Result> results(5);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(batcher.Submit(Item(Rows(i + 1 == 3 ? 2 : 1, 2, 100 * i), &results[i])).ok());
  rec.release.set_value();
  ExpectRows(first, 1, 2, 0);
  for (int i = 0; i < 5; ++i) ExpectRows(results[i], i + 1 == 3 ? 2 : 1, 2, 100 * i);
  EXPECT_EQ(rec.Sizes(), (std::vector<int64_t>{1, 6}));
  EXPECT_EQ(results[4].timing.batch_size, 6);
}

TEST(BatcherTest, BatchesNeverExceedMaxBatchSize) {
  Recorder rec;
  rec.hold_first = true;
  Batcher batcher({.max_batch_size = 4, .dynamic = true, .instances = 1}, rec.Executor());
  Result first;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &first)).ok());
  rec.first_started.get_future().wait();
  std::vector<Result> results(10);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, i), &results[i])).ok());
  rec.release.set_value();
  for (int i = 0; i < 10; ++i) ExpectRows(results[i], 1, 1, i);
  EXPECT_EQ(rec.Sizes(), (std::vector<int64_t>{1, 4, 4, 2}));
}

TEST(BatcherTest, PreferredBatchSizeRunsAtOnce) {
  Recorder rec;
  rec.hold_first = true;
  // A long delay: only the preferred size (or the deadline) makes a batch run.
  Batcher batcher({.max_batch_size = 8, .dynamic = true, .preferred_batch_sizes = {2}, .max_queue_delay_us = 100000,
                   .instances = 1},
                  rec.Executor());
  Result first;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &first)).ok());
  rec.first_started.get_future().wait();
  std::vector<Result> results(5);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, i), &results[i])).ok());
  rec.release.set_value();
  for (int i = 0; i < 5; ++i) ExpectRows(results[i], 1, 1, i);
  EXPECT_EQ(rec.Sizes(), (std::vector<int64_t>{1, 2, 2, 1}));
}

TEST(BatcherTest, WaitsUpToTheDelayToFillABatch) {
  Recorder rec;
  // The delay is far longer than submitting three requests takes; the batch
  // runs as soon as it is full.
  Batcher batcher({.max_batch_size = 3, .dynamic = true, .max_queue_delay_us = 20000000}, rec.Executor());
  std::vector<Result> results(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(batcher.Submit(Item(Rows(1, 2, 10 * i), &results[i])).ok());
  for (int i = 0; i < 3; ++i) ExpectRows(results[i], 1, 2, 10 * i);
  EXPECT_EQ(rec.Sizes(), (std::vector<int64_t>{3}));
}

TEST(BatcherTest, DifferentShapesAreNotMerged) {
  Recorder rec;
  rec.hold_first = true;
  Batcher batcher({.max_batch_size = 8, .dynamic = true, .instances = 1}, rec.Executor());
  Result first;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &first)).ok());
  rec.first_started.get_future().wait();
  Result a, b, c;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 3, 0), &a)).ok());
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 4, 0), &b)).ok());
  ASSERT_TRUE(batcher.Submit(Item(Rows(2, 3, 5), &c)).ok());
  rec.release.set_value();
  ExpectRows(a, 1, 3, 0);
  ExpectRows(b, 1, 4, 0);
  ExpectRows(c, 2, 3, 5);
  EXPECT_EQ(rec.Sizes(), (std::vector<int64_t>{1, 3, 1}));
}

TEST(BatcherTest, WithoutDynamicBatchingEachRequestRunsAlone) {
  Recorder rec;
  rec.hold_first = true;
  Batcher batcher({.max_batch_size = 8, .dynamic = false, .instances = 1}, rec.Executor());
  Result first;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &first)).ok());
  rec.first_started.get_future().wait();
  std::vector<Result> results(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, i), &results[i])).ok());
  rec.release.set_value();
  for (int i = 0; i < 3; ++i) ExpectRows(results[i], 1, 1, i);
  EXPECT_EQ(rec.Sizes(), (std::vector<int64_t>{1, 1, 1, 1}));
}

TEST(BatcherTest, FullQueueRejectsWithUnavailable) {
  Recorder rec;
  rec.hold_first = true;
  Batcher batcher({.max_batch_size = 8, .dynamic = true, .max_queue_size = 2, .instances = 1}, rec.Executor());
  Result first, a, b, c;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &first)).ok());
  rec.first_started.get_future().wait();
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &a)).ok());
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &b)).ok());
  absl::Status st = batcher.Submit(Item(Rows(1, 1, 0), &c));
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  rec.release.set_value();
  EXPECT_TRUE(a.future.get().ok());
  EXPECT_TRUE(b.future.get().ok());
}

TEST(BatcherTest, RequestsPastTheQueueTimeoutAreRejected) {
  Recorder rec;
  rec.hold_first = true;
  Batcher batcher({.max_batch_size = 8, .dynamic = true, .instances = 1, .queue_timeout_us = 20000}, rec.Executor());
  Result first, a, b;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &first)).ok());
  rec.first_started.get_future().wait();
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &a)).ok());
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &b)).ok());
  // The only instance stays busy until both have been answered.
  auto ra = a.future.get();
  auto rb = b.future.get();
  EXPECT_TRUE(absl::IsUnavailable(ra.status())) << ra.status();
  EXPECT_TRUE(absl::IsUnavailable(rb.status())) << rb.status();
  EXPECT_NE(ra.status().message().find("timeout"), std::string::npos);
  rec.release.set_value();
  ExpectRows(first, 1, 1, 0);
  EXPECT_EQ(rec.Sizes(), (std::vector<int64_t>{1}));
}

TEST(BatcherTest, BatchSizeOutsideLimitIsInvalid) {
  Recorder rec;
  Batcher batcher({.max_batch_size = 4, .dynamic = true}, rec.Executor());
  Result r;
  EXPECT_TRUE(absl::IsInvalidArgument(batcher.Submit(Item(Rows(5, 1, 0), &r))));
  EXPECT_TRUE(absl::IsInvalidArgument(batcher.Submit(Item(Rows(0, 1, 0), &r))));
}

TEST(BatcherTest, ExecutorErrorReachesEveryRequestOfTheBatch) {
  Recorder rec;
  rec.hold_first = true;
  rec.fail = true;
  Batcher batcher({.max_batch_size = 8, .dynamic = true, .instances = 1}, rec.Executor());
  Result first, a, b;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &first)).ok());
  rec.first_started.get_future().wait();
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &a)).ok());
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &b)).ok());
  rec.release.set_value();
  EXPECT_EQ(first.future.get().status().message(), "model failed");
  EXPECT_EQ(a.future.get().status().message(), "model failed");
  EXPECT_EQ(b.future.get().status().message(), "model failed");
}

TEST(BatcherTest, ShutdownAnswersEveryQueuedRequest) {
  Recorder rec;
  rec.hold_first = true;
  auto batcher = std::make_unique<Batcher>(
      BatcherOptions{.max_batch_size = 2, .dynamic = true, .max_queue_delay_us = 50000000, .instances = 1},
      rec.Executor());
  Result first;  // a full batch: runs at once
  ASSERT_TRUE(batcher->Submit(Item(Rows(2, 1, 0), &first)).ok());
  rec.first_started.get_future().wait();
  std::vector<Result> results(5);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(batcher->Submit(Item(Rows(1, 1, i), &results[i])).ok());
  std::thread releaser([&] { rec.release.set_value(); });
  batcher->Shutdown();
  releaser.join();
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(results[i].future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    ExpectRows(results[i], 1, 1, i);
  }
  Result late;
  EXPECT_TRUE(absl::IsUnavailable(batcher->Submit(Item(Rows(1, 1, 0), &late))));
}

TEST(BatcherTest, FlushRunsWithoutWaitingForTheDelay) {
  Recorder rec;
  Batcher batcher({.max_batch_size = 8, .dynamic = true, .max_queue_delay_us = 600000000}, rec.Executor());
  Result a;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 3), &a)).ok());
  batcher.Flush();  // else `a` would wait ten minutes for company
  ExpectRows(a, 1, 1, 3);
  Result b;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 4), &b)).ok());
  ExpectRows(b, 1, 1, 4);
}

TEST(BatcherTest, InstancesRunBatchesConcurrently) {
  // Two instances: while the first batch is held, a second runs.
  Recorder rec;
  rec.hold_first = true;
  Batcher batcher({.max_batch_size = 8, .dynamic = true, .instances = 2}, rec.Executor());
  Result first, second;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 0), &first)).ok());
  rec.first_started.get_future().wait();
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, 7), &second)).ok());
  ExpectRows(second, 1, 1, 7);  // completes while the first is still held
  rec.release.set_value();
  ExpectRows(first, 1, 1, 0);
}

TEST(BatcherTest, ABlockingCallersLoneRequestRunsOnItsOwnThread) {
  std::thread::id ran_on;
  Batcher batcher({.max_batch_size = 8, .dynamic = false, .instances = 1},
                  [&](const Session::NamedTensors& inputs, const std::vector<std::string>&,
                      int instance) -> absl::StatusOr<std::vector<Tensor>> {
                    ran_on = std::this_thread::get_id();
                    EXPECT_EQ(instance, 0);
                    return std::vector<Tensor>{inputs[0].second.Clone()};
                  });
  Result r;
  ASSERT_TRUE(batcher.Submit(Item(Rows(2, 3, 10), &r), /*may_run_here=*/true).ok());
  // Answered before Submit returned, on this thread.
  ASSERT_EQ(r.future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  ExpectRows(r, 2, 3, 10);
  // Without may_run_here it goes through the worker threads.
  Result q;
  ASSERT_TRUE(batcher.Submit(Item(Rows(1, 3, 5), &q)).ok());
  ExpectRows(q, 1, 3, 5);
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(BatcherTest, RunningHereNeverSkipsTheQueueNorADelayToFillABatch) {
  // A queue delay to wait out: the request queues even for a blocking caller
  // and is batched with the next one.
  Recorder rec;
  Batcher delayed({.max_batch_size = 8, .dynamic = true, .max_queue_delay_us = 200000, .instances = 1},
                  rec.Executor());
  Result a, b;
  ASSERT_TRUE(delayed.Submit(Item(Rows(1, 1, 0), &a), true).ok());
  EXPECT_EQ(a.future.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  ASSERT_TRUE(delayed.Submit(Item(Rows(1, 1, 1), &b), true).ok());
  ExpectRows(a, 1, 1, 0);
  ExpectRows(b, 1, 1, 1);
  EXPECT_EQ(rec.Sizes(), (std::vector<int64_t>{2}));

  // The only instance busy: a blocking caller's request queues behind.
  Recorder busy;
  busy.hold_first = true;
  Batcher one({.max_batch_size = 8, .dynamic = false, .instances = 1}, busy.Executor());
  Result first, second;
  ASSERT_TRUE(one.Submit(Item(Rows(1, 1, 0), &first)).ok());
  busy.first_started.get_future().wait();
  ASSERT_TRUE(one.Submit(Item(Rows(1, 1, 9), &second), true).ok());
  EXPECT_EQ(second.future.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  busy.release.set_value();
  ExpectRows(first, 1, 1, 0);
  ExpectRows(second, 1, 1, 9);
}

TEST(BatcherTest, InstancesAreNeverSharedByTwoRunsAtOnce) {
  // Callers' threads and the workers draw instances from one pool.
  constexpr int kInstances = 2;
  std::mutex mu;
  std::vector<int> in_use(kInstances, 0);
  bool clash = false;
  Batcher batcher({.max_batch_size = 8, .dynamic = false, .instances = kInstances},
                  [&](const Session::NamedTensors& inputs, const std::vector<std::string>&,
                      int instance) -> absl::StatusOr<std::vector<Tensor>> {
                    {
                      std::lock_guard<std::mutex> lock(mu);
                      if (instance < 0 || instance >= kInstances || in_use[instance]++) clash = true;
                    }
                    std::this_thread::sleep_for(std::chrono::microseconds(200));
                    {
                      std::lock_guard<std::mutex> lock(mu);
                      --in_use[instance];
                    }
                    return std::vector<Tensor>{inputs[0].second.Clone()};
                  });
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        Result r;
        ASSERT_TRUE(batcher.Submit(Item(Rows(1, 1, t * 100 + i), &r), (i + t) % 2 == 0).ok());
        ExpectRows(r, 1, 1, t * 100 + i);
      }
    });
  for (auto& c : callers) c.join();
  EXPECT_FALSE(clash);
}

TEST(BatcherTest, ConcatAndSliceStrings) {
  Tensor a = Tensor::FromVector<std::string>({1, 2}, {"a", "b"});
  Tensor b = Tensor::FromVector<std::string>({2, 2}, {"c", "d", "e", "f"});
  Tensor ab = ConcatRows({&a, &b});
  ASSERT_EQ(ab.shape(), (Shape{3, 2}));
  EXPECT_EQ(ab.data<std::string>()[4], "e");
  Tensor s = SliceRows(ab, 1, 3);
  ASSERT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_EQ(s.data<std::string>()[0], "c");
  EXPECT_EQ(s.data<std::string>()[3], "f");
}

}  // namespace
}  // namespace hepml::serve
