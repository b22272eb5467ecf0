// The Slurm executor against a real one-node Slurm cluster (slurmctld,
// slurmd and munged started by the test on loopback; slurm_test_cluster.h).
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "jobs/batch_executors.h"
#include "jobs/batch_util.h"
#include "jobs/slurm_test_cluster.h"

namespace hepml::jobs {
namespace {

using ::testing::HasSubstr;

class SlurmExecutorTest : public testing::SlurmClusterSuite<SlurmExecutorTest> {
 protected:

  void SetUp() override {
    if (!testing::SlurmTestCluster::Installed()) GTEST_SKIP() << testing::SlurmTestCluster::kNotInstalled;
    ASSERT_TRUE(start_status_->ok()) << *start_status_;
    work_ = std::filesystem::path(cluster_->dir()) / "jobs" /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto e = MakeSlurmExecutor({});
    ASSERT_TRUE(e.ok()) << e.status();
    executor_ = std::move(*e);
  }

  JobSpec Job(const std::string& name, const std::string& command) {
    JobSpec j;
    j.name = name;
    j.command = command;
    j.work_dir = (work_ / name).string();
    return j;
  }

  // Polls until the job is finished (at most 90 s), recording every state seen.
  JobStatus WaitFinished(const std::string& handle, std::vector<JobState>* seen = nullptr) {
    JobStatus st;
    for (int i = 0; i < 900; ++i) {
      auto s = executor_->Poll(handle);
      EXPECT_TRUE(s.ok()) << s.status();
      if (!s.ok()) return st;
      st = *s;
      if (seen && (seen->empty() || seen->back() != st.state)) seen->push_back(st.state);
      if (st.state != JobState::kQueued && st.state != JobState::kRunning) return st;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << handle << " did not finish";
    return st;
  }

  static std::string Read(const std::filesystem::path& p) { return batch::ReadFile(p.string()).value_or(""); }

  std::filesystem::path work_;
  std::unique_ptr<Executor> executor_;
};


TEST_F(SlurmExecutorTest, RunsAJobThroughQueuedRunningSucceeded) {
  JobSpec job = Job("hello", "sleep 2; echo \"hello from $GREETING\"; echo oops >&2");
  job.env["GREETING"] = "it's slurm";
  auto handle = executor_->Submit(job);
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_TRUE(absl::StartsWith(*handle, "slurm:")) << *handle;
  std::vector<JobState> seen;
  JobStatus st = WaitFinished(*handle, &seen);
  EXPECT_EQ(st.state, JobState::kSucceeded) << st.reason;
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_EQ(st.native_id, handle->substr(6));
  // The 2 s sleep is seen running; the measured wall time covers it.
  EXPECT_THAT(seen, ::testing::Contains(JobState::kRunning));
  EXPECT_EQ(seen.back(), JobState::kSucceeded);
  EXPECT_GE(st.wall_s, 1.5);
  EXPECT_GT(st.peak_rss_kb, 0);  // GNU time is installed here
  EXPECT_EQ(Read(work_ / "hello" / "stdout.log"), "hello from it's slurm\n");
  EXPECT_EQ(Read(work_ / "hello" / "stderr.log"), "oops\n");
}

TEST_F(SlurmExecutorTest, AnotherProcessPollsTheHandleAfterARestart) {
  auto handle = executor_->Submit(Job("restart", "echo done"));
  ASSERT_TRUE(handle.ok()) << handle.status();
  ASSERT_EQ(WaitFinished(*handle).state, JobState::kSucceeded);
  // A new executor knows nothing of the job but its handle: the controller
  // still names its folder, so the wrapper's measurement is found too.
  auto fresh = MakeSlurmExecutor({});
  ASSERT_TRUE(fresh.ok());
  auto st = (*fresh)->Poll(*handle);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->state, JobState::kSucceeded);
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_GT(st->peak_rss_kb, 0);
  // A job Slurm never had, and whose folder nobody knows, is lost, with why.
  auto lost = (*fresh)->Poll("slurm:999999");
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_EQ(lost->state, JobState::kLost);
  EXPECT_THAT(lost->reason, HasSubstr("no longer knows job 999999"));
}

TEST_F(SlurmExecutorTest, NonZeroExitIsFailedWithTheCode) {
  auto handle = executor_->Submit(Job("three", "echo before; exit 3"));
  ASSERT_TRUE(handle.ok()) << handle.status();
  JobStatus st = WaitFinished(*handle);
  EXPECT_EQ(st.state, JobState::kFailed);
  EXPECT_EQ(st.exit_code, 3);
  EXPECT_THAT(st.reason, HasSubstr("exit code 3"));
  EXPECT_EQ(Read(work_ / "three" / "stdout.log"), "before\n");
}

TEST_F(SlurmExecutorTest, CancelStopsARunningJob) {
  auto handle = executor_->Submit(Job("sleeper", "echo $$ > pid; exec sleep 300"));
  ASSERT_TRUE(handle.ok()) << handle.status();
  std::string pid_file = (work_ / "sleeper" / "pid").string();
  for (int i = 0; i < 600 && Read(pid_file).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(Read(pid_file)), &pid)) << "the job never started";
  ASSERT_EQ(kill(pid, 0), 0) << "the job's process should be running";
  auto running = executor_->Poll(*handle);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->state, JobState::kRunning);

  ASSERT_TRUE(executor_->Cancel(*handle, 5).ok());
  JobStatus st = WaitFinished(*handle);
  EXPECT_EQ(st.state, JobState::kCancelled) << st.reason;
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = kill(pid, 0) != 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(gone) << "process " << pid << " survived the cancel";
  // Another process polling the handle sees a cancellation too, not a
  // failure, although the job ended on the SIGTERM.
  auto fresh = MakeSlurmExecutor({});
  auto again = (*fresh)->Poll(*handle);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state, JobState::kCancelled) << again->reason;
  // Cancelling again, now that it is over, is not an error.
  EXPECT_TRUE(executor_->Cancel(*handle, 1).ok());
}

TEST_F(SlurmExecutorTest, AJobWaitingForResourcesIsQueuedWithSlurmsReasonAndCancels) {
  JobSpec blocker = Job("blocker", "exec sleep 300");
  blocker.resources.cpus = 2;  // the whole node
  auto b = executor_->Submit(blocker);
  ASSERT_TRUE(b.ok()) << b.status();
  JobSpec waiter = Job("waiter", "echo never");
  waiter.resources.cpus = 2;
  auto w = executor_->Submit(waiter);
  ASSERT_TRUE(w.ok()) << w.status();
  JobStatus st;
  for (int i = 0; i < 300; ++i) {
    auto s = executor_->Poll(*w);
    ASSERT_TRUE(s.ok()) << s.status();
    st = *s;
    if (!st.reason.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(st.state, JobState::kQueued);
  EXPECT_THAT(st.reason, ::testing::StartsWith("pending: "));
  ASSERT_TRUE(executor_->Cancel(*w, 5).ok());
  JobStatus cancelled = WaitFinished(*w);
  EXPECT_EQ(cancelled.state, JobState::kCancelled) << cancelled.reason;
  EXPECT_EQ(Read(work_ / "waiter" / "stdout.log"), "");  // it never ran
  ASSERT_TRUE(executor_->Cancel(*b, 1).ok());
  EXPECT_EQ(WaitFinished(*b).state, JobState::kCancelled);
}

TEST_F(SlurmExecutorTest, ResourcesGoIntoTheBatchScript) {
  ExecutorOptions o;
  o.partition = "debug";
  o.extra_args = {"--comment=hepml-test"};
  SlurmExecutor slurm(o);
  JobSpec job = Job("res", "true");
  job.resources = {.cpus = 2, .gpus = 0, .memory_mb = 200, .time_limit_s = 600};
  auto handle = slurm.Submit(job);
  ASSERT_TRUE(handle.ok()) << handle.status();
  std::string script = Read(work_ / "res" / "job.sbatch");
  EXPECT_THAT(script, HasSubstr("#SBATCH --cpus-per-task=2\n"));
  EXPECT_THAT(script, HasSubstr("#SBATCH --mem=200M\n"));
  EXPECT_THAT(script, HasSubstr("#SBATCH --time=10\n"));
  EXPECT_THAT(script, HasSubstr("#SBATCH --partition=debug\n"));
  EXPECT_THAT(script, HasSubstr("#SBATCH --comment=hepml-test\n"));
  EXPECT_THAT(script, ::testing::Not(HasSubstr("--gres")));
  JobStatus st = [&] {
    for (int i = 0; i < 900; ++i) {
      auto s = slurm.Poll(*handle);
      if (!s.ok() || (s->state != JobState::kQueued && s->state != JobState::kRunning)) return s.value_or(JobStatus{});
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return JobStatus{};
  }();
  EXPECT_EQ(st.state, JobState::kSucceeded) << st.reason;

  // The node has no GPUs: the script asks for them and sbatch's refusal
  // comes back naming the command and what sbatch said.
  JobSpec gpu = Job("gpu", "true");
  gpu.resources.gpus = 2;
  auto refused = slurm.Submit(gpu);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(Read(work_ / "gpu" / "job.sbatch"), HasSubstr("#SBATCH --gres=gpu:2\n"));
  EXPECT_THAT(refused.status().message(), HasSubstr("sbatch --parsable"));
  EXPECT_THAT(refused.status().message(), HasSubstr("gres"));
}

TEST_F(SlurmExecutorTest, TimeLimitFormats) {
  EXPECT_EQ(SlurmTimeLimit(60), "1");
  EXPECT_EQ(SlurmTimeLimit(3600), "60");
  EXPECT_EQ(SlurmTimeLimit(90), "0-00:01:30");
  EXPECT_EQ(SlurmTimeLimit(2 * 86400 + 3 * 3600 + 4 * 60 + 5), "2-03:04:05");
  EXPECT_EQ(SlurmTimeLimit(86400), "1-00:00:00");
}

TEST_F(SlurmExecutorTest, ArrayJobRunsEveryTask) {
  auto* slurm = dynamic_cast<SlurmExecutor*>(executor_.get());
  ASSERT_NE(slurm, nullptr);
  auto handles = slurm->SubmitArray(Job("array", "echo task $HEPML_TASK_ID; exit $HEPML_TASK_ID"), 3, 2);
  ASSERT_TRUE(handles.ok()) << handles.status();
  ASSERT_EQ(handles->size(), 3u);
  EXPECT_THAT(Read(work_ / "array" / "job.sbatch"), HasSubstr("#SBATCH --array=0-2%2\n"));
  for (int i = 0; i < 3; ++i) {
    JobStatus st = WaitFinished((*handles)[i]);
    EXPECT_EQ(st.exit_code, i) << (*handles)[i];
    EXPECT_EQ(st.state, i == 0 ? JobState::kSucceeded : JobState::kFailed);
    EXPECT_EQ(Read(work_ / "array" / std::to_string(i) / "stdout.log"), "task " + std::to_string(i) + "\n");
  }
  // Another process finds each task's own folder (and measurement) too.
  auto fresh = MakeSlurmExecutor({});
  auto task2 = (*fresh)->Poll((*handles)[2]);
  ASSERT_TRUE(task2.ok()) << task2.status();
  EXPECT_EQ(task2->exit_code, 2);
  EXPECT_GT(task2->peak_rss_kb, 0);
}

TEST_F(SlurmExecutorTest, ADownControllerIsAClearError) {
  std::string down = cluster_->WriteDownConfig();
  std::string saved = getenv("SLURM_CONF");
  setenv("SLURM_CONF", down.c_str(), 1);
  auto handle = executor_->Submit(Job("down", "true"));
  auto polled = executor_->Poll("slurm:1");
  setenv("SLURM_CONF", saved.c_str(), 1);
  ASSERT_FALSE(handle.ok());
  EXPECT_THAT(handle.status().message(), HasSubstr("'sbatch --parsable"));
  EXPECT_THAT(handle.status().message(), HasSubstr("Unable to contact slurm controller"));
  ASSERT_FALSE(polled.ok());
  EXPECT_THAT(polled.status().message(), HasSubstr("squeue"));
  EXPECT_THAT(polled.status().message(), HasSubstr("Unable to contact slurm controller"));
}

TEST_F(SlurmExecutorTest, BadHandlesAndJobsAreRefused) {
  EXPECT_EQ(executor_->Poll("htcondor:1.0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(executor_->Poll("slurm:12;rm").status().code(), absl::StatusCode::kInvalidArgument);
  JobSpec j = Job("badenv", "true");
  j.env["1BAD"] = "x";
  EXPECT_THAT(executor_->Submit(j).status().message(), HasSubstr("1BAD"));
}

// A cluster that forgets finished jobs within seconds (MinJobAge=2) and has
// no accounting: the executor then reads the exit code its wrapper left in
// the job's folder, so a finished job is never reported lost by the process
// that submitted it.
TEST(SlurmForgetfulClusterTest, AFinishedJobTheControllerForgotStillPollsAsFinished) {
  if (!testing::SlurmTestCluster::Installed()) GTEST_SKIP() << testing::SlurmTestCluster::kNotInstalled;
  testing::SlurmTestCluster cluster({.min_job_age_s = 2});
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  auto executor = MakeSlurmExecutor({});
  ASSERT_TRUE(executor.ok());
  JobSpec good{.name = "good", .command = "echo fine", .work_dir = cluster.dir() + "/jobs/good"};
  JobSpec bad{.name = "bad", .command = "sleep 1; exit 5", .work_dir = cluster.dir() + "/jobs/bad"};
  auto g = (*executor)->Submit(good);
  auto b = (*executor)->Submit(bad);
  ASSERT_TRUE(g.ok() && b.ok()) << g.status() << b.status();
  // Wait until the controller has dropped both.
  bool forgotten = false;
  for (int i = 0; i < 600 && !forgotten; ++i) {
    auto r = batch::RunCommand({"scontrol", "show", "job", b->substr(6)});
    auto r2 = batch::RunCommand({"scontrol", "show", "job", g->substr(6)});
    forgotten = r.ok() && r2.ok() && r->exit_code != 0 && r2->exit_code != 0;
    if (!forgotten) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(forgotten) << "the controller kept the jobs for 60 s";
  auto gs = (*executor)->Poll(*g);
  ASSERT_TRUE(gs.ok()) << gs.status();
  EXPECT_EQ(gs->state, JobState::kSucceeded) << gs->reason;
  auto bs = (*executor)->Poll(*b);
  ASSERT_TRUE(bs.ok()) << bs.status();
  EXPECT_EQ(bs->state, JobState::kFailed);
  EXPECT_EQ(bs->exit_code, 5);
  EXPECT_GE(bs->wall_s, 0.9);  // the wrapper's measurement of the 1 s sleep
  // A process that never saw the job's folder cannot tell, and says why.
  auto fresh = MakeSlurmExecutor({});
  auto lost = (*fresh)->Poll(*b);
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_EQ(lost->state, JobState::kLost);
  EXPECT_THAT(lost->reason, HasSubstr("work folder is unknown"));
}

}  // namespace
}  // namespace hepml::jobs
