// hepml::jobs: hyperparameter optimisation and (re)training jobs on the local
// machine, Slurm and HTCondor.
//
// The pieces, each behind one interface so they combine freely:
//   - SearchSpace / ParamSet: what a study searches (float uniform or log, int,
//     categorical, parameters active only under a condition on another one).
//   - Sampler: proposes a ParamSet for the next trial from the finished ones
//     (random, grid, TPE, CMA-ES). Deterministic given (seed, history, trial
//     number), so a resumed study proposes what the killed one would have.
//   - Pruner: decides from intermediate objective values whether a running
//     trial stops early (none, median, successive halving/ASHA, Hyperband).
//   - Executor: runs one trial's command with its resources and reports its
//     state, exit code, wall and CPU time, peak memory (local slots with GPUs,
//     Slurm through sbatch/squeue/scancel, HTCondor through condor_submit/
//     condor_q/condor_rm).
//   - The study runner (`hepml hpo run`) ties them together and records every
//     trial as a run in the registry (hepml::registry::Registry), where the
//     study's state lives, so `hepml hpo resume` loses and repeats no finished
//     trial.
//
// Metrics: a trial reports objective values on its standard output as lines
//   hepml-metric NAME=VALUE [step=N]
// or as JSON lines {"name": ..., "value": ..., "step": ...} in a file; every
// executor writes the trial's stdout and stderr to files in its trial folder,
// which the runner follows, so metric reading is the same on every executor.
#ifndef HEPML_JOBS_H_
#define HEPML_JOBS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hepml::jobs {

// ---------------------------------------------------------------- search space

enum class ParamKind { kFloat, kInt, kCategorical };

struct ParamSpec {
  std::string name;
  ParamKind kind = ParamKind::kFloat;
  double low = 0;   // kFloat, kInt: inclusive bounds
  double high = 0;
  bool log = false;  // sample uniformly in log space (low > 0)
  double step = 0;   // > 0: values low + k*step only (kFloat, kInt; kInt defaults to 1)
  std::vector<std::string> choices;  // kCategorical
  // Conditional parameter: active only when the parameter `parent` took one of
  // `parent_values` (compared as formatted by FormatParam). Empty: always active.
  std::string parent;
  std::vector<std::string> parent_values;
};

struct SearchSpace {
  std::vector<ParamSpec> params;  // parents before their children

  // Non-empty, unique names, low < high (low > 0 when log), integral int
  // bounds, non-empty and unique choices, parents that exist and come first.
  absl::Status Validate() const;
  const ParamSpec* Find(const std::string& name) const;
};

// A parameter's value: double for kFloat, int64_t for kInt, the choice for
// kCategorical.
using ParamValue = std::variant<double, int64_t, std::string>;
// The active parameters of one trial (inactive conditional ones are absent).
using ParamSet = std::map<std::string, ParamValue>;

// Shortest text that reads back to the same value ("0.001", "64", "relu");
// what a command template's {name} is replaced with.
std::string FormatParam(const ParamValue& value);
// True when `spec` is active under the values in `params`.
bool IsActive(const ParamSpec& spec, const ParamSet& params);

// ---------------------------------------------------------------- trials

enum class Direction { kMinimize, kMaximize };

enum class TrialState { kQueued, kRunning, kComplete, kPruned, kFailed };
const char* TrialStateName(TrialState state);  // "queued", "running", ...

struct Trial {
  int64_t number = 0;  // 0, 1, 2, ... in the order trials were proposed
  TrialState state = TrialState::kQueued;
  ParamSet params;
  // Objective values reported while running, by step (epoch).
  std::map<int64_t, double> intermediate;
  // The final objective (the last reported value of the objective metric)
  // for kComplete trials; for kPruned trials the last intermediate value.
  std::optional<double> value;
  std::string fail_reason;  // kFailed (and kPruned: which rule)
};

// ---------------------------------------------------------------- samplers

struct SamplerOptions {
  std::string kind = "random";  // random | grid | tpe | cmaes
  uint64_t seed = 0;
  // TPE: random trials before the model is used, candidates scored per
  // proposal, the good fraction gamma (at most 25 trials by default).
  int64_t n_startup_trials = 10;
  int64_t n_ei_candidates = 24;
  double gamma = 0.25;
  // CMA-ES: initial step size as a fraction of each range (population size
  // 4 + 3 ln(d) when 0).
  double sigma0 = 0.3;
  int64_t population = 0;
  // grid: points per float parameter without a step (ints and categoricals
  // use every value).
  int64_t grid_points = 5;
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  // Proposes the parameters of trial `trial_number`. `history` holds every
  // earlier trial in any state; samplers learn from kComplete ones (and may
  // use the intermediate values of kPruned ones). A grid that is exhausted
  // returns OutOfRange.
  virtual absl::StatusOr<ParamSet> Sample(const SearchSpace& space, Direction direction,
                                          const std::vector<Trial>& history, int64_t trial_number) = 0;
};

absl::StatusOr<std::unique_ptr<Sampler>> MakeSampler(const SamplerOptions& options);

// ---------------------------------------------------------------- pruners

struct PrunerOptions {
  std::string kind = "none";  // none | median | asha | hyperband
  // median: no pruning before this many completed trials, nor before this step.
  int64_t n_startup_trials = 5;
  int64_t n_warmup_steps = 0;
  // asha / hyperband: resources in steps (epochs) and the reduction factor eta.
  int64_t min_resource = 1;
  int64_t max_resource = 0;  // required for asha and hyperband
  double reduction_factor = 3;
};

class Pruner {
 public:
  virtual ~Pruner() = default;
  // Whether `trial` (kRunning, its intermediate values up to `step`) should
  // stop now, given every trial of the study (including `trial`). Must be a
  // pure function of its arguments so a resumed study decides the same way.
  virtual bool ShouldPrune(const Trial& trial, int64_t step, const std::vector<Trial>& all,
                           Direction direction) const = 0;
};

absl::StatusOr<std::unique_ptr<Pruner>> MakePruner(const PrunerOptions& options);

// ---------------------------------------------------------------- executors

struct Resources {
  int64_t cpus = 1;
  int64_t gpus = 0;
  int64_t memory_mb = 0;       // 0: no request
  int64_t time_limit_s = 0;    // 0: none
};

// One command to run: a trial or a training job.
struct JobSpec {
  std::string name;     // unique within the study, e.g. "mystudy-trial-17"
  std::string command;  // run by /bin/sh -c in work_dir
  std::map<std::string, std::string> env;  // added to the environment
  std::string work_dir;  // created if missing; stdout.log and stderr.log land here
  Resources resources;
};

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled, kLost };
const char* JobStateName(JobState state);

struct JobStatus {
  JobState state = JobState::kQueued;
  int exit_code = -1;   // when finished; -1 unknown
  int term_signal = 0;  // the signal that ended it, if any
  double wall_s = 0;
  double cpu_s = 0;           // user + system
  int64_t peak_rss_kb = 0;    // 0 when the executor cannot tell
  std::string gpus;           // the devices it was given, e.g. "0,1"
  // GPU use sampled while it ran (local executor, from nvidia-smi every few
  // seconds): mean utilisation in percent over its GPUs and samples (-1: not
  // measured) and the peak of the memory used on its GPUs together.
  double gpu_util_mean = -1;
  int64_t gpu_mem_peak_mb = 0;
  std::string native_id;      // pid, Slurm job id, HTCondor cluster.proc
  std::string reason;         // why it failed or was lost, in words
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string kind() const = 0;  // "local", "slurm", "htcondor"
  // How many jobs may run at once (local: slots; batch systems: the study's
  // parallel budget decides, so they return a large number).
  virtual int64_t capacity() const = 0;
  // Starts or queues the job. Returns a handle that Poll and Cancel accept,
  // also from another process after a restart (a local handle of a process
  // that is gone polls as kLost).
  virtual absl::StatusOr<std::string> Submit(const JobSpec& job) = 0;
  virtual absl::StatusOr<JobStatus> Poll(const std::string& handle) = 0;
  // Stops the job: SIGTERM, then SIGKILL after `grace_s` (batch systems: their
  // cancel command). Cancelling a finished job is not an error.
  virtual absl::Status Cancel(const std::string& handle, double grace_s = 10) = 0;
};

struct ExecutorOptions {
  std::string kind = "local";  // local | slurm | htcondor
  // local: CPU slots (0: the number of cores), GPU ids ("0,1,3"; empty: from
  // `nvidia-smi --query-gpu=index --format=csv,noheader`, none if it fails).
  int64_t cpu_slots = 0;
  std::string gpus;
  bool detect_gpus = true;
  // slurm: partition, account, extra sbatch arguments, the command folder
  // (empty: sbatch/squeue/scancel/sacct on PATH).
  // htcondor: extra submit-description lines, the command folder.
  std::string partition;
  std::string account;
  std::vector<std::string> extra_args;
  std::string bin_dir;
};

absl::StatusOr<std::unique_ptr<Executor>> MakeExecutor(const ExecutorOptions& options);

}  // namespace hepml::jobs

#endif  // HEPML_JOBS_H_
