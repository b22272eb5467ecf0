// JobStateName and MakeExecutor: the dispatch on ExecutorOptions::kind.
#include "absl/strings/str_cat.h"
#include "hepml/jobs.h"
#include "jobs/executors.h"

namespace hepml::jobs {

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kSucceeded: return "succeeded";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
    case JobState::kLost: return "lost";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<Executor>> MakeExecutor(const ExecutorOptions& options) {
  if (options.kind == "local") return MakeLocalExecutor(options);
  if (options.kind == "slurm") return MakeSlurmExecutor(options);
  if (options.kind == "htcondor") return MakeCondorExecutor(options);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown executor kind '", options.kind, "' (expected local, slurm or htcondor)"));
}

}  // namespace hepml::jobs
