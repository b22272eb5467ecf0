// The HTCondor executor. HTCondor is not packaged for Debian 12: the submit
// description files are checked against the HTCondor manual's syntax, and
// the command lines run against tests/jobs/htcondor_standin.py, a test
// stand-in (NOT HTCondor) installed as condor_submit, condor_q,
// condor_history and condor_rm in a temporary bin folder. It parses the
// submit file strictly (new-syntax arguments and environment), runs the job
// on this machine and answers in HTCondor's -terse and -json formats.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "jobs/batch_executors.h"
#include "jobs/batch_util.h"

namespace hepml::jobs {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class CondorExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hepml-condor-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto made = batch::RunCommand({"/usr/bin/python3", HEPML_SOURCE_DIR "/tests/jobs/htcondor_standin.py",
                                   "--make-bin", (dir_ / "bin").string()});
    ASSERT_TRUE(made.ok() && made->exit_code == 0) << (made.ok() ? made->err : made.status().ToString());
    setenv("HEPML_CONDOR_STANDIN_DIR", (dir_ / "condor-state").c_str(), 1);
    ExecutorOptions o;
    o.kind = "htcondor";
    o.bin_dir = (dir_ / "bin").string();
    auto e = MakeCondorExecutor(o);
    ASSERT_TRUE(e.ok()) << e.status();
    executor_ = std::move(*e);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  JobSpec Job(const std::string& name, const std::string& command) {
    JobSpec j;
    j.name = name;
    j.command = command;
    j.work_dir = (dir_ / "jobs" / name).string();
    return j;
  }

  JobStatus WaitFinished(const std::string& handle, std::vector<JobState>* seen = nullptr) {
    JobStatus st;
    for (int i = 0; i < 600; ++i) {
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

  static std::string Read(const fs::path& p) { return batch::ReadFile(p.string()).value_or(""); }

  fs::path dir_;
  std::unique_ptr<Executor> executor_;
};

// The manual's examples of the new syntax, written by hepml.
TEST(CondorQuoting, FollowsTheManualsNewSyntax) {
  EXPECT_EQ(CondorArguments({"one", "two with spaces", "3"}), "\"'one' 'two with spaces' '3'\"");
  EXPECT_EQ(CondorArguments({"one", "\"two\"", "spacey 'quoted' argument"}),
            "\"'one' '\"\"two\"\"' 'spacey ''quoted'' argument'\"");
  EXPECT_EQ(CondorEnvironment({{"one", "1"}, {"two", "\"2\""}, {"three", "spacey 'quoted' value"}}),
            "\"'one=1' 'three=spacey ''quoted'' value' 'two=\"\"2\"\"'\"");
  EXPECT_EQ(CondorArguments({}), "\"\"");
}

TEST_F(CondorExecutorTest, SubmitDescriptionHasTheManualsCommands) {
  ExecutorOptions o;
  o.account = "group_atlas.ml";
  o.extra_args = {"requirements = (OpSysAndVer == \"AlmaLinux9\")"};
  CondorExecutor condor(o);
  JobSpec job = Job("desc", "python train.py --lr 0.1");
  job.env = {{"A", "1"}, {"B", "two words"}};
  job.resources = {.cpus = 4, .gpus = 1, .memory_mb = 8000, .time_limit_s = 3600};
  std::string wd = batch::Absolute(job.work_dir);
  std::string sub = condor.SubmitDescription(job);
  std::vector<std::string> lines = absl::StrSplit(sub, '\n', absl::SkipEmpty());
  auto has = [&](const std::string& line) { return std::find(lines.begin(), lines.end(), line) != lines.end(); };
  EXPECT_TRUE(has("universe = vanilla")) << sub;
  EXPECT_TRUE(has("executable = /bin/sh")) << sub;
  EXPECT_TRUE(has("arguments = \"'" + wd + "/job.sh'\"")) << sub;
  EXPECT_TRUE(has("initialdir = " + wd)) << sub;
  EXPECT_TRUE(has("output = " + wd + "/stdout.log")) << sub;
  EXPECT_TRUE(has("error = " + wd + "/stderr.log")) << sub;
  EXPECT_TRUE(has("log = " + wd + "/condor.log")) << sub;
  EXPECT_TRUE(has("request_cpus = 4")) << sub;
  EXPECT_TRUE(has("request_gpus = 1")) << sub;
  EXPECT_TRUE(has("request_memory = 8000")) << sub;
  EXPECT_TRUE(has("environment = \"'A=1' 'B=two words'\"")) << sub;
  EXPECT_TRUE(has("+MaxRuntime = 3600")) << sub;
  EXPECT_TRUE(has("periodic_remove = (JobStatus == 2) && (time() - EnteredCurrentStatus > 3600)")) << sub;
  EXPECT_TRUE(has("accounting_group = group_atlas.ml")) << sub;
  EXPECT_TRUE(has("requirements = (OpSysAndVer == \"AlmaLinux9\")")) << sub;
  EXPECT_EQ(lines.back(), "queue");
  // No GPU, memory or time requests when none are asked for.
  JobSpec plain = Job("plain", "true");
  std::string p = condor.SubmitDescription(plain);
  EXPECT_THAT(p, ::testing::Not(HasSubstr("request_gpus")));
  EXPECT_THAT(p, ::testing::Not(HasSubstr("request_memory")));
  EXPECT_THAT(p, ::testing::Not(HasSubstr("periodic_remove")));
}

TEST_F(CondorExecutorTest, RunsAJobAndReadsItsAd) {
  JobSpec job = Job("hello", "sleep 1; echo \"$GREETING|$QUOTES\"; echo oops >&2");
  job.env = {{"GREETING", "it's condor"}, {"QUOTES", "say \"hi\""}};
  auto handle = executor_->Submit(job);
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_EQ(*handle, "htcondor:1.0");
  std::vector<JobState> seen;
  JobStatus st = WaitFinished(*handle, &seen);
  EXPECT_EQ(st.state, JobState::kSucceeded) << st.reason;
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_EQ(st.native_id, "1.0");
  EXPECT_THAT(seen, ::testing::Contains(JobState::kRunning));
  EXPECT_GE(st.wall_s, 0.9);
  EXPECT_GT(st.peak_rss_kb, 0);
  // The environment went through the new syntax and back unchanged.
  EXPECT_EQ(Read(dir_ / "jobs" / "hello" / "stdout.log"), "it's condor|say \"hi\"\n");
  EXPECT_EQ(Read(dir_ / "jobs" / "hello" / "stderr.log"), "oops\n");
}

TEST_F(CondorExecutorTest, NonZeroExitIsFailedWithTheCode) {
  auto handle = executor_->Submit(Job("three", "exit 3"));
  ASSERT_TRUE(handle.ok()) << handle.status();
  JobStatus st = WaitFinished(*handle);
  EXPECT_EQ(st.state, JobState::kFailed);
  EXPECT_EQ(st.exit_code, 3);
  EXPECT_THAT(st.reason, HasSubstr("exit code 3"));
}

TEST_F(CondorExecutorTest, CancelRemovesARunningJob) {
  auto handle = executor_->Submit(Job("sleeper", "echo $$ > pid; exec sleep 300"));
  ASSERT_TRUE(handle.ok()) << handle.status();
  fs::path pid_file = dir_ / "jobs" / "sleeper" / "pid";
  for (int i = 0; i < 300 && Read(pid_file).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(Read(pid_file)), &pid));
  ASSERT_EQ(kill(pid, 0), 0);
  ASSERT_TRUE(executor_->Cancel(*handle).ok());
  JobStatus st = WaitFinished(*handle);
  EXPECT_EQ(st.state, JobState::kCancelled) << st.reason;
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = kill(pid, 0) != 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone);
  EXPECT_TRUE(executor_->Cancel(*handle).ok());  // already gone: not an error
}

TEST_F(CondorExecutorTest, TimeLimitRemovesTheJobAsFailed) {
  JobSpec job = Job("slow", "sleep 30");
  job.resources.time_limit_s = 1;
  auto handle = executor_->Submit(job);
  ASSERT_TRUE(handle.ok()) << handle.status();
  JobStatus st = WaitFinished(*handle);
  EXPECT_EQ(st.state, JobState::kFailed);
  EXPECT_THAT(st.reason, HasSubstr("time limit"));
}

TEST_F(CondorExecutorTest, SubmitFailuresNameTheCommandAndWhatItSaid) {
  ExecutorOptions o;
  o.bin_dir = (dir_ / "bin").string();
  o.extra_args = {"rquest_disk = 1GB"};  // a typo the stand-in refuses
  CondorExecutor typo(o);
  auto r = typo.Submit(Job("typo", "true"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("condor_submit -terse"));
  EXPECT_THAT(r.status().message(), HasSubstr("rquest_disk"));

  ExecutorOptions missing;
  missing.bin_dir = (dir_ / "nowhere").string();
  CondorExecutor none(missing);
  auto m = none.Submit(Job("none", "true"));
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("condor_submit"));

  EXPECT_EQ(executor_->Poll("slurm:1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(executor_->Poll("htcondor:1").status().code(), absl::StatusCode::kInvalidArgument);
  ExecutorOptions part;
  part.partition = "gpu";
  EXPECT_THAT(MakeCondorExecutor(part).status().message(), HasSubstr("no partitions"));
  ExecutorOptions q;
  q.extra_args = {"queue 10"};
  EXPECT_THAT(MakeCondorExecutor(q).status().message(), HasSubstr("queue"));
}

}  // namespace
}  // namespace hepml::jobs
