// The executors behind MakeExecutor (include/hepml/jobs.h), one file each:
// local_executor.cc, slurm_executor.cc, condor_executor.cc.
#ifndef HEPML_JOBS_EXECUTORS_H_
#define HEPML_JOBS_EXECUTORS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "hepml/jobs.h"

namespace hepml::jobs {

// Local slots: options.cpu_slots CPUs (0: the cores), the GPUs in
// options.gpus (empty and detect_gpus: what nvidia-smi lists). Jobs that do
// not fit in the free slots wait in Submit's queue and start from Poll.
absl::StatusOr<std::unique_ptr<Executor>> MakeLocalExecutor(const ExecutorOptions& options);
absl::StatusOr<std::unique_ptr<Executor>> MakeSlurmExecutor(const ExecutorOptions& options);
absl::StatusOr<std::unique_ptr<Executor>> MakeCondorExecutor(const ExecutorOptions& options);

}  // namespace hepml::jobs

#endif  // HEPML_JOBS_EXECUTORS_H_
