// Studies: the study file (study_file.cc) and the runner that keeps trials
// in flight, follows their metrics, prunes, and records everything in the
// registry (study.cc). Used by `hepml hpo`.
//
// Where the state lives. Every trial is a registry run in the experiment
// named after the study ("NAME-trial-N"; tags hepml.hpo.trial=N,
// hepml.hpo.state, hepml.hpo.handle, hepml.hpo.trial_dir, ...; its
// parameters as run params; its metrics as run metrics by step). One more run
// of that experiment, tagged hepml.hpo.role=study, keeps the study file's
// text and the folder it was read from, so `hepml hpo resume NAME` needs only
// the name. A trial is recorded before it is submitted, so a crash leaves at
// worst a recorded trial that never started; resuming marks it (and any
// trial whose process is gone) failed with "lost: ..." and runs its
// parameters again as a new trial. Lost trials do not count against the
// trial budget or max_failures.
//
// One runner per study at a time: the runner holds an exclusive lock
// (flock) on WORK_DIR/.hepml-study.lock while it runs, and numbers new
// trials from the registry's highest one, so trial numbers never repeat.
// The lock is released by the kernel when the runner dies, however it dies.
#ifndef HEPML_JOBS_STUDY_H_
#define HEPML_JOBS_STUDY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hepml/jobs.h"
#include "hepml/registry.h"

namespace hepml::jobs {

struct StudyBudget {
  int64_t trials = 0;         // trials to finish (complete, pruned or failed); required
  int64_t parallel = 1;       // trials in flight at once
  int64_t max_failures = -1;  // stop launching after more failures than this (-1: no limit)
  double wall_time_s = 0;     // stop (cancelling running trials) after this long; 0: no limit
};

struct StudyConfig {
  std::string name;
  // /bin/sh command with {param}, {trial_dir}, {trial_number}, {study},
  // {study_dir}; run in the trial's folder.
  std::string command;
  SearchSpace space;
  std::string objective;  // the metric the study optimises
  Direction direction = Direction::kMinimize;
  std::string metrics_source = "stdout";  // stdout | jsonl
  std::string metrics_file;               // jsonl: the file, relative to the trial folder
  SamplerOptions sampler;
  PrunerOptions pruner;
  StudyBudget budget;
  Resources resources;
  ExecutorOptions executor;
  // Registry: a folder (registry_dir), or metadata + blob URIs.
  std::string registry_dir;
  std::string registry_metadata;
  std::string registry_blobs;
  std::string work_dir;  // absolute; trial folders are WORK_DIR/trial-NNNNN
  std::string base_dir;  // the study file's folder (relative paths are resolved against it)
  std::string text;      // the study file as read
};

// Parses a study file's text. `origin` names it in messages; relative paths
// (work_dir, registry) are resolved against `base_dir`. Strict: an unknown
// key anywhere is an error that names it and its line.
absl::StatusOr<StudyConfig> ParseStudyConfig(const std::string& text, const std::string& origin,
                                             const std::string& base_dir);
absl::StatusOr<StudyConfig> LoadStudyFile(const std::string& path);

// One metric value from a trial's output.
struct MetricValue {
  std::string name;
  double value = 0;
  std::optional<int64_t> step;
};

// "hepml-metric NAME=VALUE [NAME=VALUE ...] [step=N]": nullopt for a line
// that is not a metric line (does not start with "hepml-metric"), an error
// saying what is wrong for a metric line that does not parse.
absl::StatusOr<std::optional<std::vector<MetricValue>>> ParseMetricLine(const std::string& line);
// {"name": ..., "value": ..., "step": ...}: nullopt for a blank line.
absl::StatusOr<std::optional<std::vector<MetricValue>>> ParseMetricJson(const std::string& line);

// The command of one trial: {name} of each parameter (the empty string for
// an inactive conditional one), {trial_dir}, {trial_number}, {study},
// {study_dir} (the study file's folder).
// Categorical values and the trial folder are single-quoted for the shell
// when they hold anything but letters, digits and _.,+-=/:@%. A placeholder
// naming nothing known is an error; "{{" and "}}" stand for braces.
absl::StatusOr<std::string> ExpandCommand(const std::string& command, const SearchSpace& space,
                                          const ParamSet& params, const std::string& trial_dir,
                                          int64_t trial_number, const std::string& study,
                                          const std::string& study_dir = "");

// A trial as recorded in the registry.
struct TrialRecord {
  Trial trial;
  int64_t run_id = 0;
  std::string handle;
  std::string trial_dir;
  bool lost = false;  // failed because its runner went away (re-run as another trial)
  std::optional<int64_t> retry_of;
  double wall_s = 0;
  double cpu_s = 0;
  int64_t peak_rss_kb = 0;
  int exit_code = -1;
  std::string gpus;
  int64_t warnings = 0;
};

struct StudyOptions {
  // Overrides of what the study file says (the command line's flags).
  std::optional<std::string> executor_kind;
  std::optional<std::string> gpus;
  // Injected parts (tests); null: made from the study file.
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<Pruner> pruner;
  std::unique_ptr<Executor> executor;
  // Set (from a signal handler) to stop: running trials are cancelled and
  // recorded as lost, so a resume runs them again.
  const std::atomic<bool>* stop = nullptr;
  // Grace between SIGTERM and SIGKILL when cancelling trials.
  double cancel_grace_s = 10;
  // Where progress lines go (one per finished trial); null: nowhere.
  std::function<void(const std::string&)> log;
};

struct StudySummary {
  int64_t complete = 0;
  int64_t pruned = 0;
  int64_t failed = 0;
  int64_t lost = 0;
  std::string stopped;  // why the runner stopped early ("" when the budget was used up)
};

class Study {
 public:
  ~Study();
  // A new study: refused (AlreadyExists) when the registry has one of that name.
  static absl::StatusOr<std::unique_ptr<Study>> Create(StudyConfig config, registry::Registry* registry,
                                                       StudyOptions options = {});
  // The study of that name, as recorded (for resume, status and best).
  static absl::StatusOr<std::unique_ptr<Study>> Open(const std::string& name, registry::Registry* registry,
                                                     StudyOptions options = {});

  const StudyConfig& config() const;

  // Runs trials until the budget is used up, max_failures is exceeded, the
  // wall time is over or options.stop is set. Resumes what is recorded: the
  // same call serves `run` (nothing recorded yet) and `resume`.
  absl::StatusOr<StudySummary> Run();

  // The trials as recorded now, by number.
  absl::StatusOr<std::vector<TrialRecord>> Trials();
  // The best complete trial (NotFound when none has completed).
  absl::StatusOr<TrialRecord> Best();

 private:
  struct Impl;
  explicit Study(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Opens the registry a study names (its folder, or its URIs).
absl::StatusOr<std::unique_ptr<registry::Registry>> OpenStudyRegistry(const StudyConfig& config);

}  // namespace hepml::jobs

#endif  // HEPML_JOBS_STUDY_H_
