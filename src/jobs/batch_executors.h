// The batch-system executors: Slurm (sbatch/squeue/sacct/scontrol/scancel)
// and HTCondor (condor_submit/condor_q/condor_history/condor_rm). Both drive
// the batch system's own command-line clients (found in
// ExecutorOptions::bin_dir, else on PATH), so whatever configuration those
// clients use (SLURM_CONF, CONDOR_CONFIG, the site's defaults) applies.
//
// Every job gets its work_dir (created if missing) holding the submit file,
// stdout.log and stderr.log, and the exit-code and usage files the job's
// wrapper writes (batch_util.h: MeasuredCommandScript), so a job the batch
// system has forgotten (no accounting, past MinJobAge) still polls as
// succeeded or failed rather than lost, as long as this process knows its
// work_dir.
//
// Thread safety: one executor may be used from several threads.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hepml/jobs.h"
#include "jobs/executors.h"  // MakeSlurmExecutor, MakeCondorExecutor

namespace hepml::jobs {

// ---------------------------------------------------------------- Slurm

// Handles are "slurm:JOBID" ("slurm:JOBID_TASK" for array tasks).
//
// Submit writes WORK_DIR/job.sbatch (#SBATCH lines for the job name,
// --output/--error into WORK_DIR, --chdir, --ntasks=1, --cpus-per-task,
// --gres=gpu:N when gpus > 0, --mem=NM, --time, partition, account, the
// extra arguments; then the job's environment as exports and the measured
// command) and runs `sbatch --parsable` on it.
//
// Poll asks, in order: `squeue -h -j ID -o %T` (queued or running); `sacct`
// (final state, exit code, Elapsed, TotalCPU, MaxRSS) where accounting
// storage is configured; `scontrol show job ID` while the controller still
// remembers the job (MinJobAge); the exit-code file the wrapper wrote. Wall
// and CPU time and peak memory come from sacct when it has them, else from
// the wrapper's own measurement.
//
// Cancel sends SIGTERM to the batch script and its steps (`scancel --full
// --signal=TERM`), waits up to grace_s for the job to end, then `scancel`s
// it; a job cancelled this way polls as kCancelled even when it ended by
// itself on the SIGTERM (Slurm then calls it FAILED), also in another
// process: Cancel leaves WORK_DIR/hepml-cancelled.
class SlurmExecutor : public Executor {
 public:
  explicit SlurmExecutor(const ExecutorOptions& options);

  std::string kind() const override { return "slurm"; }
  int64_t capacity() const override { return 1 << 20; }
  absl::StatusOr<std::string> Submit(const JobSpec& job) override;
  absl::StatusOr<JobStatus> Poll(const std::string& handle) override;
  absl::Status Cancel(const std::string& handle, double grace_s = 10) override;

  // An array job: `count` tasks (0..count-1) of one template, at most
  // `parallel` running at once (0: no limit), in one `sbatch --array=0-N%P`.
  // Task i runs `job.command` in JOB.work_dir/i with HEPML_TASK_ID=i (and
  // SLURM_ARRAY_TASK_ID) in its environment. Returns one handle per task,
  // "slurm:JOBID_i", which Poll and Cancel take like any other.
  absl::StatusOr<std::vector<std::string>> SubmitArray(const JobSpec& job, int64_t count, int64_t parallel = 0);

  // The batch script Submit would write for `job` (what goes into
  // WORK_DIR/job.sbatch); `array` adds the --array line and per-task folders.
  std::string BatchScript(const JobSpec& job, const std::string& array = "") const;

 private:
  std::string Tool(const std::string& name) const;
  void Remember(const std::string& id, const std::string& work_dir);
  std::string WorkDirOf(const std::string& id);

  ExecutorOptions options_;
  std::mutex mu_;
  std::map<std::string, std::string> work_dirs_;  // job id -> work_dir
  std::set<std::string> cancelled_;
};

// Slurm's --time: minutes when a whole number of minutes under a day, else
// D-HH:MM:SS (Slurm rounds seconds up to whole minutes).
std::string SlurmTimeLimit(int64_t seconds);


// ---------------------------------------------------------------- HTCondor

// Handles are "htcondor:CLUSTER.PROC".
//
// Submit writes WORK_DIR/job.sub, a submit description file (universe =
// vanilla, executable = /bin/sh, arguments in the new quoting syntax,
// initialdir, output/error/log, request_cpus/gpus/memory, environment in
// the new syntax, the time limit as +MaxRuntime and a periodic_remove
// expression, the extra lines, queue) and runs `condor_submit -terse`,
// whose "C.P - C.P" gives the handle. The job runs the measured wrapper
// WORK_DIR/job.sh, so the exit-code file exists here too.
//
// Poll reads `condor_q -json ID` while the job is in the queue, then
// `condor_history -json ID` (JobStatus 1 idle, 2 running, 3 removed, 4
// completed, 5 held, 6 transferring output, 7 suspended; ExitCode,
// ExitBySignal, ExitSignal, RemoteWallClockTime, RemoteUserCpu,
// RemoteSysCpu, ResidentSetSize_RAW (KiB) or MemoryUsage (MB)), else the
// exit-code file. Cancel: `condor_rm ID` (HTCondor itself sends SIGTERM,
// then SIGKILL after the job's kill_sig_timeout).
class CondorExecutor : public Executor {
 public:
  explicit CondorExecutor(const ExecutorOptions& options);

  std::string kind() const override { return "htcondor"; }
  int64_t capacity() const override { return 1 << 20; }
  absl::StatusOr<std::string> Submit(const JobSpec& job) override;
  absl::StatusOr<JobStatus> Poll(const std::string& handle) override;
  absl::Status Cancel(const std::string& handle, double grace_s = 10) override;

  // The submit description file Submit writes for `job`.
  std::string SubmitDescription(const JobSpec& job) const;

 private:
  std::string Tool(const std::string& name) const;

  ExecutorOptions options_;
  std::mutex mu_;
  std::map<std::string, std::string> work_dirs_;
  std::set<std::string> cancelled_;
};

// HTCondor's new argument syntax: the whole list in double quotes, each
// argument in single quotes, '' for a single quote and "" for a double
// quote inside.
std::string CondorArguments(const std::vector<std::string>& args);
// The new environment syntax: "NAME='value' ..." with the same escapes.
std::string CondorEnvironment(const std::map<std::string, std::string>& env);


}  // namespace hepml::jobs
