// The local executor with real processes: slots, GPUs, exit codes, rusage,
// cancellation (the process group really ends) and handles that survive the
// executor (a restarted runner).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hepml/jobs.h"

namespace hepml::jobs {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A process that exists and is not a zombie (an orphan whose parent died
// waits as a zombie until the init process reaps it).
bool Alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

class LocalExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / absl::StrCat("hepml_local_exec_", getpid(), "_",
                                                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Executor> Make(int64_t cpus, const std::string& gpus = "") {
    ExecutorOptions o;
    o.kind = "local";
    o.cpu_slots = cpus;
    o.gpus = gpus;
    o.detect_gpus = false;
    auto e = MakeExecutor(o);
    EXPECT_TRUE(e.ok()) << e.status();
    return std::move(*e);
  }

  JobSpec Job(const std::string& name, const std::string& command, int64_t gpus = 0) {
    JobSpec j;
    j.name = name;
    j.command = command;
    j.work_dir = (dir_ / name).string();
    j.resources.gpus = gpus;
    return j;
  }

  // Polls until the job has finished (at most 20 s).
  JobStatus Wait(Executor& e, const std::string& handle) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      auto s = e.Poll(handle);
      EXPECT_TRUE(s.ok()) << s.status();
      if (!s.ok()) return {};
      if (s->state != JobState::kRunning && s->state != JobState::kQueued) return *s;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "job " << handle << " did not finish";
    return {};
  }

  std::string Read(const std::string& name, const std::string& file) {
    std::ifstream in(dir_ / name / file);
    std::stringstream ss;
    ss << in.rdbuf();
    return std::string(absl::StripAsciiWhitespace(ss.str()));
  }

  pid_t ReadPid(const std::string& name) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int pid = 0;
      if (absl::SimpleAtoi(Read(name, "pid"), &pid) && pid > 0) return pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << name << " wrote no pid";
    return 0;
  }

  fs::path dir_;
};

TEST_F(LocalExecutorTest, RunsInWorkDirWithLogsAndExitCodes) {
  auto e = Make(2);
  auto ok = e->Submit(Job("ok", "echo hello; echo oops >&2; pwd > where"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(*ok, ::testing::StartsWith("local:"));
  JobStatus s = Wait(*e, *ok);
  EXPECT_EQ(s.state, JobState::kSucceeded);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(Read("ok", "stdout.log"), "hello");
  EXPECT_EQ(Read("ok", "stderr.log"), "oops");
  EXPECT_EQ(fs::path(Read("ok", "where")), fs::canonical(dir_ / "ok"));

  auto three = e->Submit(Job("three", "exit 3"));
  ASSERT_TRUE(three.ok());
  s = Wait(*e, *three);
  EXPECT_EQ(s.state, JobState::kFailed);
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_THAT(s.reason, HasSubstr("exit code 3"));

  auto missing = e->Submit(Job("missing", "/no/such/program --flag"));
  ASSERT_TRUE(missing.ok());
  s = Wait(*e, *missing);
  EXPECT_EQ(s.state, JobState::kFailed);
  EXPECT_EQ(s.exit_code, 127);
  EXPECT_THAT(s.reason, HasSubstr("command not found"));

  auto segv = e->Submit(Job("segv", "kill -SEGV $$"));
  ASSERT_TRUE(segv.ok());
  s = Wait(*e, *segv);
  EXPECT_EQ(s.state, JobState::kFailed);
  EXPECT_EQ(s.term_signal, SIGSEGV);
  EXPECT_THAT(s.reason, HasSubstr("SIGSEGV"));
}

TEST_F(LocalExecutorTest, EnvironmentReachesTheCommand) {
  auto e = Make(1);
  JobSpec j = Job("env", "echo \"$HEPML_TEST_VALUE $HEPML_JOB_NAME\"");
  j.env["HEPML_TEST_VALUE"] = "forty two";
  auto h = e->Submit(j);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(Wait(*e, *h).state, JobState::kSucceeded);
  EXPECT_EQ(Read("env", "stdout.log"), "forty two env");
}

TEST_F(LocalExecutorTest, RecordsCpuTimeAndPeakMemory) {
  auto e = Make(1);
  // 200 MiB written (so resident), then at least 0.3 s of CPU.
  auto h = e->Submit(Job("hog",
                         "/usr/bin/python3 -c \"import time\nb = b'x' * (200 << 20)\nt = time.process_time()\n"
                         "while time.process_time() - t < 0.3: pass\""));
  ASSERT_TRUE(h.ok());
  JobStatus s = Wait(*e, *h);
  ASSERT_EQ(s.state, JobState::kSucceeded) << s.reason << " " << Read("hog", "stderr.log");
  EXPECT_GE(s.peak_rss_kb, 200 * 1024);
  EXPECT_LT(s.peak_rss_kb, 2 * 1024 * 1024);
  EXPECT_GE(s.cpu_s, 0.3);
  EXPECT_GE(s.wall_s, 0.3);
}

TEST_F(LocalExecutorTest, CancelEndsTheProcessGroup) {
  auto e = Make(1);
  auto h = e->Submit(Job("sleeper", "echo $$ > pid; sleep 30 & echo $! > child; wait"));
  ASSERT_TRUE(h.ok());
  pid_t pid = ReadPid("sleeper");
  int child = 0;
  for (int i = 0; i < 1000 && !absl::SimpleAtoi(Read("sleeper", "child"), &child); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(child, 0);
  ASSERT_EQ(kill(pid, 0), 0);
  ASSERT_TRUE(e->Cancel(*h, 5).ok());
  JobStatus s = Wait(*e, *h);
  EXPECT_EQ(s.state, JobState::kCancelled);
  EXPECT_EQ(s.term_signal, SIGTERM);
  EXPECT_FALSE(Alive(pid));
  EXPECT_FALSE(Alive(child)) << "the background child survived";
  // Cancelling a finished job is not an error.
  EXPECT_TRUE(e->Cancel(*h, 5).ok());
}

TEST_F(LocalExecutorTest, SigkillAfterGraceForCommandsIgnoringSigterm) {
  auto e = Make(1);
  auto h = e->Submit(Job("stubborn", "trap '' TERM; echo $$ > pid; while :; do sleep 0.05; done"));
  ASSERT_TRUE(h.ok());
  pid_t pid = ReadPid("stubborn");
  ASSERT_TRUE(e->Cancel(*h, 0.3).ok());
  JobStatus s = Wait(*e, *h);
  EXPECT_EQ(s.state, JobState::kCancelled);
  EXPECT_FALSE(Alive(pid));
}

TEST_F(LocalExecutorTest, GpuSlotsGiveEachJobItsOwnDevices) {
  auto e = Make(4, "0,1");
  std::string cmd = "echo \"$CUDA_VISIBLE_DEVICES\" > gpu; while [ ! -e ../go ]; do sleep 0.01; done";
  auto a = e->Submit(Job("a", cmd, 1));
  auto b = e->Submit(Job("b", cmd, 1));
  auto c = e->Submit(Job("c", cmd, 1));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  // a and b run at once on different devices; c waits for a free GPU.
  EXPECT_EQ(e->Poll(*a)->state, JobState::kRunning);
  EXPECT_EQ(e->Poll(*b)->state, JobState::kRunning);
  EXPECT_EQ(e->Poll(*c)->state, JobState::kQueued);
  std::string ga = e->Poll(*a)->gpus, gb = e->Poll(*b)->gpus;
  EXPECT_THAT((std::vector<std::string>{ga, gb}), ::testing::UnorderedElementsAre("0", "1"));
  std::ofstream(dir_ / "go") << "";
  EXPECT_EQ(Wait(*e, *a).state, JobState::kSucceeded);
  EXPECT_EQ(Wait(*e, *b).state, JobState::kSucceeded);
  JobStatus sc = Wait(*e, *c);
  EXPECT_EQ(sc.state, JobState::kSucceeded);
  EXPECT_EQ(Read("a", "gpu"), ga);
  EXPECT_EQ(Read("b", "gpu"), gb);
  EXPECT_THAT(Read("c", "gpu"), ::testing::AnyOf("0", "1"));
  EXPECT_EQ(Read("c", "gpu"), sc.gpus);

  // A job needing no GPU sees none; one needing more than exist is refused.
  auto none = e->Submit(Job("none", "echo \"[$CUDA_VISIBLE_DEVICES]\""));
  ASSERT_TRUE(none.ok());
  Wait(*e, *none);
  EXPECT_EQ(Read("none", "stdout.log"), "[]");
  auto three = e->Submit(Job("three", "true", 3));
  EXPECT_EQ(three.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(three.status().message(), HasSubstr("needs 3 GPUs"));
}

// GPU use comes from nvidia-smi. This platform has no GPU, so the test puts a
// stand-in named nvidia-smi first on PATH (tests/jobs/nvidia_smi_standin.sh,
// not NVIDIA's tool) that reports fixed figures per device.
TEST_F(LocalExecutorTest, RecordsGpuUseFromNvidiaSmi) {
  const fs::path bin = dir_ / "bin";
  fs::create_directories(bin);
  fs::copy_file(fs::path(HEPML_SOURCE_DIR) / "tests/jobs/nvidia_smi_standin.sh", bin / "nvidia-smi");
  fs::permissions(bin / "nvidia-smi", fs::perms::owner_all);
  const std::string old_path = getenv("PATH") ? getenv("PATH") : "";
  setenv("PATH", absl::StrCat(bin.string(), ":", old_path).c_str(), 1);
  setenv("HEPML_NVIDIA_SMI_STANDIN", "0, 40, 1000\n1, 80, 3000\n2, 5, 100", 1);
  auto e = Make(4, "0,1,2");
  auto two = e->Submit(Job("two", "sleep 2.5", 2));
  auto none = e->Submit(Job("none", "sleep 1.5", 0));
  ASSERT_TRUE(two.ok() && none.ok());
  JobStatus s = Wait(*e, *two);
  JobStatus n = Wait(*e, *none);
  setenv("PATH", old_path.c_str(), 1);
  unsetenv("HEPML_NVIDIA_SMI_STANDIN");
  EXPECT_EQ(s.state, JobState::kSucceeded);
  EXPECT_EQ(s.gpus, "0,1");
  // The job holds devices 0 and 1: their mean utilisation and summed memory.
  EXPECT_DOUBLE_EQ(s.gpu_util_mean, 60.0);
  EXPECT_EQ(s.gpu_mem_peak_mb, 4000);
  // A job without GPUs is not measured.
  EXPECT_EQ(n.gpu_util_mean, -1);
  EXPECT_EQ(n.gpu_mem_peak_mb, 0);
}

TEST_F(LocalExecutorTest, CpuSlotsQueueJobs) {
  auto e = Make(1);
  auto a = e->Submit(Job("a", "while [ ! -e ../go ]; do sleep 0.01; done"));
  auto b = e->Submit(Job("b", "echo second"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(e->Poll(*b)->state, JobState::kQueued);
  EXPECT_EQ(e->Poll(*a)->state, JobState::kRunning);
  std::ofstream(dir_ / "go") << "";
  EXPECT_EQ(Wait(*e, *b).state, JobState::kSucceeded);
  EXPECT_EQ(Read("b", "stdout.log"), "second");
  EXPECT_EQ(e->Poll(*a)->state, JobState::kSucceeded);
  // Cancelling a queued job takes it off the queue.
  auto c = e->Submit(Job("c", "while [ ! -e ../stop ]; do sleep 0.01; done"));
  auto d = e->Submit(Job("d", "echo never > ran"));
  ASSERT_TRUE(c.ok() && d.ok());
  ASSERT_TRUE(e->Cancel(*d).ok());
  EXPECT_EQ(e->Poll(*d)->state, JobState::kCancelled);
  std::ofstream(dir_ / "stop") << "";
  EXPECT_EQ(Wait(*e, *c).state, JobState::kSucceeded);
  EXPECT_FALSE(fs::exists(dir_ / "d" / "ran"));
}

TEST_F(LocalExecutorTest, AnotherExecutorReattachesByHandle) {
  std::string handle;
  {
    auto first = Make(1);
    auto h = first->Submit(Job("long", "while [ ! -e ../go ]; do sleep 0.01; done; echo done; exit 5"));
    ASSERT_TRUE(h.ok());
    handle = *h;
  }
  // A new executor (as after a runner restart) finds it running, then its end.
  auto second = Make(1);
  auto s = second->Poll(handle);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->state, JobState::kRunning);
  // It holds its slot: a new job waits.
  auto other = second->Submit(Job("other", "true"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(second->Poll(*other)->state, JobState::kQueued);
  std::ofstream(dir_ / "go") << "";
  JobStatus end = Wait(*second, handle);
  EXPECT_EQ(end.state, JobState::kFailed);
  EXPECT_EQ(end.exit_code, 5);
  EXPECT_EQ(Wait(*second, *other).state, JobState::kSucceeded);

  // A process that is gone without an exit status is lost.
  fs::create_directories(dir_ / "gone");
  auto third = Make(1);
  auto lost = third->Poll(absl::StrCat("local:999999999:12345:", (dir_ / "gone").string()));
  ASSERT_TRUE(lost.ok());
  EXPECT_EQ(lost->state, JobState::kLost);
  EXPECT_THAT(lost->reason, HasSubstr("gone"));
  // A recycled pid (here: this test process, with another start time) too.
  lost = third->Poll(absl::StrCat("local:", getpid(), ":1:", (dir_ / "gone").string()));
  ASSERT_TRUE(lost.ok());
  EXPECT_EQ(lost->state, JobState::kLost);

  EXPECT_EQ(third->Poll("slurm:123").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(third->Poll("local:abc:1:/x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LocalExecutorTest, TimeLimitCancels) {
  auto e = Make(1);
  JobSpec j = Job("slow", "sleep 30");
  j.resources.time_limit_s = 1;
  auto h = e->Submit(j);
  ASSERT_TRUE(h.ok());
  JobStatus s = Wait(*e, *h);
  EXPECT_EQ(s.state, JobState::kCancelled);
  EXPECT_THAT(s.reason, HasSubstr("time limit"));
}

TEST(MakeExecutorTest, Kinds) {
  EXPECT_EQ(MakeExecutor({.kind = "pbs"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MakeExecutor({.kind = "pbs"}).status().message(), HasSubstr("unknown executor kind 'pbs'"));
  EXPECT_EQ(MakeExecutor({.kind = "local", .gpus = "0,x"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeExecutor({.kind = "local", .gpus = "1,1"}).status().code(), absl::StatusCode::kInvalidArgument);
  auto e = MakeExecutor({.kind = "local", .cpu_slots = 3, .detect_gpus = false});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->kind(), "local");
  EXPECT_EQ((*e)->capacity(), 3);
  EXPECT_STREQ(JobStateName(JobState::kLost), "lost");
}

}  // namespace
}  // namespace hepml::jobs
