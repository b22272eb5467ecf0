// Helpers shared by the batch-system executors (Slurm, HTCondor): running a
// client command and capturing what it says, quoting for sh, the wrapper
// that measures a job's exit code, wall and CPU time and peak memory.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hepml/jobs.h"

namespace hepml::jobs::batch {

struct CommandResult {
  int exit_code = -1;  // 128 + N when killed by signal N
  std::string out;
  std::string err;
};

// Runs argv[0] (searched on PATH unless it contains '/') with the caller's
// environment, stdin from /dev/null, and returns its exit code and output.
// An error only when it cannot be started or outlives `timeout_s` (then it
// is killed); a non-zero exit is the caller's to judge.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv, double timeout_s = 120);

// "sbatch --parsable FILE" for messages.
std::string CommandLine(const std::vector<std::string>& argv);

// A client command's failure, naming the command line, its exit code and
// the first lines of its stderr (or stdout when stderr is empty).
absl::Status CommandFailed(const std::vector<std::string>& argv, const CommandResult& r);

// 'text' for /bin/sh, with embedded ' written as '\''.
std::string ShellQuote(const std::string& text);

// The sh lines that run `command` in the folder `work_dir_word` (a shell
// word: ShellQuote(dir), or an expression such as 'DIR'/"$TASK") and
// measure it: they write WORK_DIR/hepml-exit (the exit status of `/bin/sh -c command`, 128 + N
// when it died of signal N) and WORK_DIR/hepml-usage. The measurement is
// GNU time's (`/usr/bin/time -f '%e %U %S %M'`: wall, user and system CPU
// of the command and its children, their peak resident set in KiB) when
// /usr/bin/time exists on the node, else the shell's own: `date +%s.%N`
// before and after for wall time and the `times` builtin for the CPU time
// of its children (peak memory unknown, reported as 0).
std::string MeasuredCommandScript(const std::string& command, const std::string& work_dir_word);

// What MeasuredCommandScript left in `work_dir`: nullopt when the job
// never wrote its exit file (still running, killed, never started).
struct Measured {
  int exit_code = -1;
  double wall_s = 0;
  double cpu_s = 0;
  int64_t peak_rss_kb = 0;
};
std::optional<Measured> ReadMeasured(const std::string& work_dir);

// Removes what an earlier job left in `work_dir` (hepml-exit, hepml-usage,
// hepml-cancelled), so a reused folder never reports a previous result.
void ClearJobFiles(const std::string& work_dir);

// Creates `dir` and its parents; an error naming it.
absl::Status MakeDirs(const std::string& dir);
absl::Status WriteFile(const std::string& path, const std::string& text);
// The whole file, or nullopt when it cannot be read.
std::optional<std::string> ReadFile(const std::string& path);
// Absolute form of `path` (relative to the current directory).
std::string Absolute(const std::string& path);

// "H:MM:SS", "MM:SS", "D-HH:MM:SS" and fractional seconds ("00:01.234")
// as sacct prints Elapsed and TotalCPU.
std::optional<double> ParseSlurmDuration(const std::string& text);
// sacct's MaxRSS ("1234K", "12M", "3G"; a bare number is bytes) in KiB.
std::optional<int64_t> ParseSlurmMemoryKb(const std::string& text);

}  // namespace hepml::jobs::batch
