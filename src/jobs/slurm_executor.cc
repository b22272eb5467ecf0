// The Slurm executor (batch_executors.h): sbatch, squeue, sacct, scontrol,
// scancel.
#include <cstring>
#include <chrono>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "jobs/batch_executors.h"
#include "jobs/batch_util.h"
#include "hepml/status.h"

namespace hepml::jobs {
namespace {

using batch::CommandFailed;
using batch::RunCommand;
using batch::ShellQuote;

constexpr const char* kPrefix = "slurm:";

bool ValidEnvName(const std::string& name) {
  if (name.empty() || absl::ascii_isdigit(name[0])) return false;
  for (char c : name)
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  return true;
}

absl::Status CheckOneLine(const std::string& what, const std::string& value) {
  if (value.find_first_of("\n\r") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", value, "' contains a line break"));
  }
  return absl::OkStatus();
}

absl::Status CheckJob(const JobSpec& job) {
  if (job.command.empty()) return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': empty command"));
  if (job.work_dir.empty()) return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': no work_dir"));
  for (const auto& [k, v] : job.env) {
    if (!ValidEnvName(k)) {
      return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': environment name '", k,
                                                     "' is not a valid variable name"));
    }
  }
  const Resources& r = job.resources;
  if (r.cpus < 1) return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': cpus must be at least 1"));
  if (r.gpus < 0 || r.memory_mb < 0 || r.time_limit_s < 0) {
    return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': negative gpus, memory or time limit"));
  }
  absl::Status s = CheckOneLine("job name", job.name);
  if (s.ok()) s = CheckOneLine("work_dir", job.work_dir);
  return s;
}

// The job id in a handle ("slurm:123", "slurm:123_4").
absl::StatusOr<std::string> JobId(const std::string& handle) {
  if (!absl::StartsWith(handle, kPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat("'", handle, "' is not a Slurm job handle (slurm:JOBID)"));
  }
  std::string id = handle.substr(strlen(kPrefix));
  bool ok = !id.empty();
  for (char c : id)
    if (!absl::ascii_isdigit(c) && c != '_') ok = false;
  if (!ok) return absl::InvalidArgumentError(absl::StrCat("'", handle, "' is not a Slurm job handle (slurm:JOBID)"));
  return id;
}

// Slurm's job state words (squeue %T, sacct State, scontrol JobState).
enum class Phase { kQueued, kRunning, kFinished };

Phase PhaseOf(const std::string& state) {
  static const char* kQueuedStates[] = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                                        "RESV_DEL_HOLD"};
  static const char* kRunningStates[] = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED",
                                         "SIGNALING", "STAGE_OUT",  "RESIZING"};
  for (const char* s : kQueuedStates)
    if (state == s) return Phase::kQueued;
  for (const char* s : kRunningStates)
    if (state == s) return Phase::kRunning;
  return Phase::kFinished;
}

bool UnknownJob(const batch::CommandResult& r) {
  return absl::StrContains(r.err, "Invalid job id") || absl::StrContains(r.out, "Invalid job id");
}

// "3:0" -> exit 3, signal 0.
void ParseExitCode(const std::string& text, JobStatus* st) {
  std::pair<std::string, std::string> p = absl::StrSplit(text, absl::MaxSplits(':', 1));
  int code = 0, sig = 0;
  if (absl::SimpleAtoi(p.first, &code)) st->exit_code = code;
  if (absl::SimpleAtoi(p.second, &sig)) st->term_signal = sig;
}

// A finished Slurm state and exit code as a JobStatus.
void Finish(const std::string& state_word, JobStatus* st) {
  std::string state = state_word.substr(0, state_word.find(' '));  // "CANCELLED by 0"
  if (state == "COMPLETED" && st->exit_code == 0 && st->term_signal == 0) {
    st->state = JobState::kSucceeded;
  } else if (state == "CANCELLED") {
    st->state = JobState::kCancelled;
    st->reason = "cancelled (scancel)";
  } else {
    st->state = JobState::kFailed;
    if (state == "COMPLETED" || state == "FAILED") {
      st->reason = st->term_signal ? absl::StrCat("killed by signal ", st->term_signal)
                                   : absl::StrCat("exit code ", st->exit_code);
    } else {
      // TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, BOOT_FAIL, DEADLINE.
      st->reason = absl::StrCat("Slurm state ", state, " (exit code ", st->exit_code,
                                st->term_signal ? absl::StrCat(", signal ", st->term_signal) : "", ")");
    }
  }
}

std::string ResourceLines(const JobSpec& job, const ExecutorOptions& options) {
  const Resources& r = job.resources;
  std::string s = absl::StrCat("#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=", r.cpus, "\n");
  if (r.gpus > 0) absl::StrAppend(&s, "#SBATCH --gres=gpu:", r.gpus, "\n");
  if (r.memory_mb > 0) absl::StrAppend(&s, "#SBATCH --mem=", r.memory_mb, "M\n");
  if (r.time_limit_s > 0) absl::StrAppend(&s, "#SBATCH --time=", SlurmTimeLimit(r.time_limit_s), "\n");
  if (!options.partition.empty()) absl::StrAppend(&s, "#SBATCH --partition=", options.partition, "\n");
  if (!options.account.empty()) absl::StrAppend(&s, "#SBATCH --account=", options.account, "\n");
  for (const auto& a : options.extra_args) absl::StrAppend(&s, "#SBATCH ", a, "\n");
  return s;
}

}  // namespace

std::string SlurmTimeLimit(int64_t seconds) {
  if (seconds % 60 == 0 && seconds < 86400) return absl::StrCat(seconds / 60);
  int64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60;
  char buf[64];
  snprintf(buf, sizeof(buf), "%lld-%02lld:%02lld:%02lld", static_cast<long long>(d), static_cast<long long>(h),
           static_cast<long long>(m), static_cast<long long>(s));
  return buf;
}

SlurmExecutor::SlurmExecutor(const ExecutorOptions& options) : options_(options) {}

std::string SlurmExecutor::Tool(const std::string& name) const {
  return options_.bin_dir.empty() ? name : absl::StrCat(options_.bin_dir, "/", name);
}

void SlurmExecutor::Remember(const std::string& id, const std::string& work_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  work_dirs_[id] = work_dir;
}

std::string SlurmExecutor::WorkDirOf(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = work_dirs_.find(id);
  return it == work_dirs_.end() ? "" : it->second;
}

std::string SlurmExecutor::BatchScript(const JobSpec& job, const std::string& array) const {
  std::string wd = batch::Absolute(job.work_dir);
  std::string out_dir = array.empty() ? wd : absl::StrCat(wd, "/%a");
  std::string s = "#!/bin/sh\n";
  absl::StrAppend(&s, "#SBATCH --job-name=", job.name.empty() ? "hepml-job" : job.name, "\n");
  if (!array.empty()) absl::StrAppend(&s, "#SBATCH --array=", array, "\n");
  absl::StrAppend(&s, "#SBATCH --output=", out_dir, "/stdout.log\n");
  absl::StrAppend(&s, "#SBATCH --error=", out_dir, "/stderr.log\n");
  absl::StrAppend(&s, "#SBATCH --chdir=", wd, "\n");
  absl::StrAppend(&s, ResourceLines(job, options_));
  absl::StrAppend(&s,
                  "# Written by hepml's Slurm executor: runs the command under a measuring\n"
                  "# wrapper that leaves hepml-exit and hepml-usage in its folder.\n");
  for (const auto& [k, v] : job.env) absl::StrAppend(&s, "export ", k, "=", ShellQuote(v), "\n");
  std::string dir_word = ShellQuote(wd);
  if (!array.empty()) {
    absl::StrAppend(&s, "HEPML_TASK_ID=$SLURM_ARRAY_TASK_ID\nexport HEPML_TASK_ID\n");
    dir_word = absl::StrCat(ShellQuote(wd), "/\"$SLURM_ARRAY_TASK_ID\"");
  }
  absl::StrAppend(&s, batch::MeasuredCommandScript(job.command, dir_word));
  return s;
}

absl::StatusOr<std::string> SlurmExecutor::Submit(const JobSpec& job) {
  HEPML_RETURN_IF_ERROR(CheckJob(job));
  std::string wd = batch::Absolute(job.work_dir);
  HEPML_RETURN_IF_ERROR(batch::MakeDirs(wd));
  batch::ClearJobFiles(wd);
  std::string script = wd + "/job.sbatch";
  HEPML_RETURN_IF_ERROR(batch::WriteFile(script, BatchScript(job)));
  std::vector<std::string> argv = {Tool("sbatch"), "--parsable", script};
  HEPML_ASSIGN_OR_RETURN(auto r, RunCommand(argv));
  if (r.exit_code != 0) return CommandFailed(argv, r);
  // --parsable prints "JOBID" or "JOBID;CLUSTER".
  std::string id(absl::StripAsciiWhitespace(r.out.substr(0, r.out.find(';'))));
  int64_t n = 0;
  if (!absl::SimpleAtoi(id, &n)) {
    return absl::InternalError(absl::StrCat("'", batch::CommandLine(argv), "' printed '", r.out,
                                            "', not a job id"));
  }
  Remember(id, wd);
  return absl::StrCat(kPrefix, id);
}

absl::StatusOr<std::vector<std::string>> SlurmExecutor::SubmitArray(const JobSpec& job, int64_t count,
                                                                    int64_t parallel) {
  HEPML_RETURN_IF_ERROR(CheckJob(job));
  if (count < 1) return absl::InvalidArgumentError("an array job needs at least one task");
  if (parallel < 0) return absl::InvalidArgumentError("array parallelism must not be negative");
  std::string wd = batch::Absolute(job.work_dir);
  for (int64_t i = 0; i < count; ++i) {
    HEPML_RETURN_IF_ERROR(batch::MakeDirs(absl::StrCat(wd, "/", i)));
    batch::ClearJobFiles(absl::StrCat(wd, "/", i));
  }
  std::string array = absl::StrCat("0-", count - 1, parallel > 0 ? absl::StrCat("%", parallel) : "");
  std::string script = wd + "/job.sbatch";
  HEPML_RETURN_IF_ERROR(batch::WriteFile(script, BatchScript(job, array)));
  std::vector<std::string> argv = {Tool("sbatch"), "--parsable", script};
  HEPML_ASSIGN_OR_RETURN(auto r, RunCommand(argv));
  if (r.exit_code != 0) return CommandFailed(argv, r);
  std::string id(absl::StripAsciiWhitespace(r.out.substr(0, r.out.find(';'))));
  int64_t n = 0;
  if (!absl::SimpleAtoi(id, &n)) {
    return absl::InternalError(absl::StrCat("'", batch::CommandLine(argv), "' printed '", r.out,
                                            "', not a job id"));
  }
  std::vector<std::string> handles;
  for (int64_t i = 0; i < count; ++i) {
    std::string task = absl::StrCat(id, "_", i);
    Remember(task, absl::StrCat(wd, "/", i));
    handles.push_back(absl::StrCat(kPrefix, task));
  }
  return handles;
}

absl::StatusOr<JobStatus> SlurmExecutor::Poll(const std::string& handle) {
  HEPML_ASSIGN_OR_RETURN(std::string id, JobId(handle));
  JobStatus st;
  st.native_id = id;
  bool cancelled_here;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_here = cancelled_.count(id) > 0;
  }

  // 1. The queue.
  std::vector<std::string> squeue = {Tool("squeue"), "-h", "-j", id, "-o", "%T %r"};
  HEPML_ASSIGN_OR_RETURN(auto q, RunCommand(squeue));
  if (q.exit_code != 0 && !UnknownJob(q)) return CommandFailed(squeue, q);
  std::pair<std::string, std::string> state_reason =
      absl::StrSplit(absl::StripAsciiWhitespace(q.exit_code == 0 ? q.out : ""), absl::MaxSplits(' ', 1));
  const std::string& queue_state = state_reason.first;
  if (!queue_state.empty()) {
    Phase p = PhaseOf(queue_state);
    if (p == Phase::kQueued) {
      st.state = JobState::kQueued;
      // Why it waits (Priority, Resources, ReqNodeNotAvail, PartitionDown, ...).
      if (!state_reason.second.empty() && state_reason.second != "None") {
        st.reason = absl::StrCat("pending: ", state_reason.second);
      }
      return st;
    }
    if (p == Phase::kRunning) {
      st.state = JobState::kRunning;
      return st;
    }
  }

  std::string work_dir = WorkDirOf(id);
  // Slurm's WorkDir is the --chdir folder; an array task's files are in its
  // own subfolder (SubmitArray).
  auto learn = [&](const std::string& dir) {
    if (!work_dir.empty() || dir.empty()) return;
    auto underscore = id.find('_');
    work_dir = underscore == std::string::npos ? dir : absl::StrCat(dir, "/", id.substr(underscore + 1));
  };
  std::string final_state;
  bool have_figures = false;

  // 2. Accounting.
  std::vector<std::string> sacct = {Tool("sacct"), "-n", "-P", "-j", id,
                                    "--format=JobID,State,ExitCode,ElapsedRaw,TotalCPU,MaxRSS,WorkDir"};
  auto a = RunCommand(sacct);
  if (a.ok() && a->exit_code == 0) {
    for (absl::string_view line : absl::StrSplit(a->out, '\n', absl::SkipWhitespace())) {
      std::vector<std::string> f = absl::StrSplit(line, '|');
      if (f.size() < 7) continue;
      if (f[0] == id) {
        final_state = f[1];
        ParseExitCode(f[2], &st);
        double elapsed = 0;
        if (absl::SimpleAtod(f[3], &elapsed)) st.wall_s = elapsed;
        if (auto cpu = batch::ParseSlurmDuration(f[4])) st.cpu_s = *cpu;
        learn(f[6]);
        have_figures = true;
      }
      if (auto rss = batch::ParseSlurmMemoryKb(f[5])) st.peak_rss_kb = std::max(st.peak_rss_kb, *rss);
    }
    if (!final_state.empty() && PhaseOf(final_state.substr(0, final_state.find(' '))) != Phase::kFinished) {
      // squeue and sacct disagree for a moment around state changes.
      st.state = PhaseOf(final_state) == Phase::kQueued ? JobState::kQueued : JobState::kRunning;
      return st;
    }
  }

  // 3. The controller's memory of the job.
  if (final_state.empty()) {
    std::vector<std::string> scontrol = {Tool("scontrol"), "show", "job", id};
    HEPML_ASSIGN_OR_RETURN(auto c, RunCommand(scontrol));
    if (c.exit_code != 0 && !UnknownJob(c)) return CommandFailed(scontrol, c);
    if (c.exit_code == 0) {
      for (absl::string_view tok : absl::StrSplit(c.out, absl::ByAnyChar(" \n"), absl::SkipWhitespace())) {
        std::pair<std::string, std::string> kv = absl::StrSplit(tok, absl::MaxSplits('=', 1));
        if (kv.first == "JobState") final_state = kv.second;
        if (kv.first == "ExitCode") ParseExitCode(kv.second, &st);
        if (kv.first == "RunTime") {
          if (auto t = batch::ParseSlurmDuration(kv.second)) st.wall_s = *t;
        }
        if (kv.first == "WorkDir") learn(kv.second);
      }
      if (!final_state.empty() && PhaseOf(final_state) != Phase::kFinished) {
        st.state = PhaseOf(final_state) == Phase::kQueued ? JobState::kQueued : JobState::kRunning;
        return st;
      }
    }
  }

  // 4. What the job's wrapper left in its folder.
  std::optional<batch::Measured> measured;
  if (!work_dir.empty()) measured = batch::ReadMeasured(work_dir);
  if (measured && !have_figures) {
    st.wall_s = measured->wall_s;
    st.cpu_s = measured->cpu_s;
    st.peak_rss_kb = measured->peak_rss_kb;
  }
  if (final_state.empty()) {
    if (!measured) {
      st.state = cancelled_here ? JobState::kCancelled : JobState::kLost;
      st.reason = work_dir.empty()
                      ? absl::StrCat("Slurm no longer knows job ", id,
                                     " (no accounting storage) and its work folder is unknown here")
                      : absl::StrCat("Slurm no longer knows job ", id, " and it left no exit code in ", work_dir);
      return st;
    }
    st.exit_code = measured->exit_code;
    if (st.exit_code > 128 && st.exit_code < 128 + 65) st.term_signal = st.exit_code - 128;
    final_state = st.exit_code == 0 ? "COMPLETED" : "FAILED";
  }
  Finish(final_state, &st);
  if (!cancelled_here && !work_dir.empty()) {
    cancelled_here = batch::ReadFile(work_dir + "/hepml-cancelled").has_value();  // by another process
  }
  if (cancelled_here && st.state == JobState::kFailed) {
    st.state = JobState::kCancelled;
    st.reason = absl::StrCat("cancelled (ended on SIGTERM: ", st.reason, ")");
  }
  return st;
}

absl::Status SlurmExecutor::Cancel(const std::string& handle, double grace_s) {
  HEPML_ASSIGN_OR_RETURN(std::string id, JobId(handle));
  auto queue_state = [&]() -> absl::StatusOr<std::string> {
    std::vector<std::string> squeue = {Tool("squeue"), "-h", "-j", id, "-o", "%T"};
    HEPML_ASSIGN_OR_RETURN(auto q, RunCommand(squeue));
    if (q.exit_code != 0 && !UnknownJob(q)) return CommandFailed(squeue, q);
    return std::string(absl::StripAsciiWhitespace(q.exit_code == 0 ? q.out : ""));
  };
  HEPML_ASSIGN_OR_RETURN(std::string state, queue_state());
  if (state.empty() || PhaseOf(state) == Phase::kFinished) return absl::OkStatus();  // already over
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_.insert(id);
  }
  // Left in the job's folder so that any process polling it later knows it
  // was cancelled, not failed, when it ends on the SIGTERM.
  std::string work_dir = WorkDirOf(id);
  if (work_dir.empty() && id.find('_') == std::string::npos) {  // an array task's folder is below %Z
    std::vector<std::string> squeue = {Tool("squeue"), "-h", "-j", id, "-o", "%Z"};
    auto q = RunCommand(squeue);
    if (q.ok() && q->exit_code == 0) work_dir = std::string(absl::StripAsciiWhitespace(q->out));
  }
  if (!work_dir.empty()) (void)batch::WriteFile(work_dir + "/hepml-cancelled", "cancelled\n");
  if (PhaseOf(state) == Phase::kRunning && grace_s > 0) {
    std::vector<std::string> term = {Tool("scancel"), "--full", "--signal=TERM", id};
    HEPML_ASSIGN_OR_RETURN(auto t, RunCommand(term));
    if (t.exit_code != 0 && !UnknownJob(t) && !absl::StrContains(t.err, "already complet")) {
      return CommandFailed(term, t);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
    while (std::chrono::steady_clock::now() < deadline) {
      HEPML_ASSIGN_OR_RETURN(state, queue_state());
      if (state.empty() || PhaseOf(state) == Phase::kFinished) return absl::OkStatus();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  std::vector<std::string> kill = {Tool("scancel"), id};
  HEPML_ASSIGN_OR_RETURN(auto k, RunCommand(kill));
  if (k.exit_code != 0 && !UnknownJob(k) && !absl::StrContains(k.err, "already complet")) {
    return CommandFailed(kill, k);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Executor>> MakeSlurmExecutor(const ExecutorOptions& options) {
  for (const auto& a : options.extra_args) HEPML_RETURN_IF_ERROR(CheckOneLine("sbatch argument", a));
  HEPML_RETURN_IF_ERROR(CheckOneLine("partition", options.partition));
  HEPML_RETURN_IF_ERROR(CheckOneLine("account", options.account));
  return std::unique_ptr<Executor>(new SlurmExecutor(options));
}

}  // namespace hepml::jobs
