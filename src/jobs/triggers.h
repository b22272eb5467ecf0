// Retraining triggers: when a dataset gets a new version, a model alias
// moves, or a model's reported drift crosses a threshold, run a training
// job, register its output as a new version of a model, and move an alias
// to it when the job file's policy allows.
//
// Everything lives in the registry, as runs and tags of four experiments
// (no tables of its own):
//   hepml.jobs.triggers  one run per trigger (ended at once); tags
//                        hepml.trigger.on ("dataset:NAME", "alias:MODEL@ALIAS",
//                        "drift:MODEL"), hepml.trigger.job_file (the path it
//                        was added from) and hepml.trigger.job_yaml (the job
//                        file's text then: a trigger runs what was checked
//                        when it was added), hepml.trigger.drift_above.
//   hepml.jobs.state     one run, "watch": hepml.watch.last_event_id (the last
//                        registry event evaluated) and
//                        hepml.watch.last_drift_run (the last drift report).
//   hepml.jobs.runs      one run per firing: the training job itself (its
//                        input dataset version, parameters trigger/event,
//                        the objective metric, CPU time and peak memory) and
//                        the decision as tags: hepml.decision (promoted |
//                        registered | failed), hepml.decision.reason,
//                        hepml.job.state, hepml.job.exit_code,
//                        hepml.job.handle, hepml.registered_version.
//   hepml.jobs.drift     one run per drift report: tag hepml.drift.model,
//                        metric "drift".
// The new model version's lineage points at that run (source_run) and the
// dataset version it was trained on.
//
// Thread safety: none; one watcher per registry at a time (two watchers
// would both fire for the same event).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hepml/jobs.h"
#include "hepml/registry.h"

namespace hepml::jobs {

// A job file (YAML; unknown keys are errors naming them):
//   command: "python train.py --data {dataset}@{dataset_version} --out {out}"
//   model: btag                 # register the output as a version of this model
//   output: model.onnx          # the file the command writes, relative to {work_dir}
//   metric: {name: auc, direction: maximize}
//   alias: production           # the alias the policy may move
//   policy: {promote_if: better_or_equal}   # better_or_equal | always | never
//   dataset: jets               # alias: and drift: triggers: train on its latest version
//   drift_threshold: 0.2        # drift: triggers fire when a report reaches it
//   work_root: /shared/hepml-jobs   # job folders (default: hepml-jobs beside the job file)
//   env: {KEY: value}
//   executor: {kind: slurm, partition: gpu, account: atlas, extra_args: [...], bin_dir: ...}
//   resources: {cpus: 4, gpus: 1, memory_mb: 8000, time_limit_s: 3600}
// The command's placeholders: {dataset}, {dataset_version}, {out} (the
// absolute path of `output`), {work_dir}, {model}.
enum class PromotePolicy { kBetterOrEqual, kAlways, kNever };

struct RetrainJob {
  std::string command;
  std::string model;
  std::string output = "model.onnx";
  std::string metric;
  Direction direction = Direction::kMaximize;
  std::string alias = "production";
  PromotePolicy policy = PromotePolicy::kBetterOrEqual;
  std::string dataset;
  std::optional<double> drift_threshold;
  std::string work_root;
  std::map<std::string, std::string> env;
  ExecutorOptions executor;
  Resources resources;
};

// `base_dir` resolves a relative work_root (the job file's folder).
absl::StatusOr<RetrainJob> ParseRetrainJob(const std::string& yaml_text, const std::string& source,
                                           const std::string& base_dir);
absl::StatusOr<RetrainJob> LoadRetrainJob(const std::string& path);

struct Trigger {
  int64_t id = 0;  // its run id in hepml.jobs.triggers
  std::string on;  // dataset:NAME | alias:MODEL@ALIAS | drift:MODEL
  std::string job_file;
  std::string job_yaml;
  int64_t created_at_ms = 0;
};

// Checks `on` and the job file (a drift trigger needs drift_threshold; an
// alias trigger must not watch the alias its own job moves) and records it.
absl::StatusOr<Trigger> AddTrigger(registry::Registry& reg, const std::string& on, const std::string& job_file);
// The triggers in force (removed ones are left out), oldest first.
absl::StatusOr<std::vector<Trigger>> ListTriggers(registry::Registry& reg);
// Stops a trigger from firing again (its record and its decisions stay:
// tag hepml.trigger.removed). NotFound for an id that is no trigger.
absl::Status RemoveTrigger(registry::Registry& reg, int64_t id);

// Records one drift measurement of `model` (as `hepml serve --drift-window` records them).
absl::StatusOr<int64_t> ReportDrift(registry::Registry& reg, const std::string& model, double value);

// One firing of a trigger, as recorded in hepml.jobs.runs.
struct Decision {
  int64_t run_id = 0;
  int64_t trigger_id = 0;
  std::string on;
  std::string cause;     // "dataset jets@3", "alias btag@production -> 4", "drift btag 0.31"
  std::string decision;  // promoted | registered | failed
  std::string reason;
  std::string job_state;  // succeeded, failed, ...
  int exit_code = -1;
  std::optional<double> metric;
  std::optional<int64_t> version;  // the registered version
  int64_t start_ms = 0;
};

struct WatchOptions {
  // Makes the executor a job file asks for (the CLI: local, slurm or
  // htcondor; tests: their own).
  std::function<absl::StatusOr<std::unique_ptr<Executor>>(const ExecutorOptions&)> make_executor;
  double poll_interval_s = 1;
  // Called with each decision as it is recorded (progress output).
  std::function<void(const Decision&)> on_decision;
  // Polled while a job runs: when it returns true the job is cancelled, its
  // firing recorded as failed ("the watcher was stopped"), and WatchOnce
  // returns without moving past the event, so the next watcher evaluates the
  // event's other triggers.
  std::function<bool()> should_stop;
};

// Evaluates every trigger against the registry events and drift reports
// recorded since the last call, runs the jobs of those that fire (one after
// the other, waiting for each), and records where it got to. Returns the
// decisions made. A job that fails is a decision, not an error; errors are
// for a registry that cannot be read or written.
absl::StatusOr<std::vector<Decision>> WatchOnce(registry::Registry& reg, const WatchOptions& options);

// Every decision, newest first.
absl::StatusOr<std::vector<Decision>> History(registry::Registry& reg, int64_t max_results = 1000);

// Reads "hepml-metric NAME=VALUE [step=N]" lines: the last value of `name`
// (nullopt when none), and every metric's last value into `all`.
std::optional<double> LastMetric(const std::string& text, const std::string& name,
                                 std::map<std::string, double>* all = nullptr);

}  // namespace hepml::jobs
