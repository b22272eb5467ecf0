// The HTCondor executor (batch_executors.h): condor_submit, condor_q,
// condor_history, condor_rm.
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hepml/status.h"
#include "jobs/batch_executors.h"
#include "jobs/batch_util.h"
#include "nlohmann/json.hpp"

namespace hepml::jobs {
namespace {

using batch::CommandFailed;
using batch::RunCommand;

constexpr const char* kPrefix = "htcondor:";

// One word of the new syntax: single-quoted, '' for ', "" for ".
std::string CondorWord(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "''";
    } else if (c == '"') {
      out += "\"\"";
    } else {
      out += c;
    }
  }
  return out + "'";
}

absl::Status CheckOneLine(const std::string& what, const std::string& value) {
  if (value.find_first_of("\n\r") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", value, "' contains a line break"));
  }
  return absl::OkStatus();
}

bool ValidEnvName(const std::string& name) {
  if (name.empty() || absl::ascii_isdigit(name[0])) return false;
  for (char c : name)
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  return true;
}

absl::Status CheckJob(const JobSpec& job) {
  if (job.command.empty()) return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': empty command"));
  if (job.work_dir.empty()) return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': no work_dir"));
  for (const auto& [k, v] : job.env) {
    if (!ValidEnvName(k)) {
      return absl::InvalidArgumentError(
          absl::StrCat("job '", job.name, "': environment name '", k, "' is not a valid variable name"));
    }
    HEPML_RETURN_IF_ERROR(CheckOneLine(absl::StrCat("environment value of ", k), v));
  }
  const Resources& r = job.resources;
  if (r.cpus < 1) return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': cpus must be at least 1"));
  if (r.gpus < 0 || r.memory_mb < 0 || r.time_limit_s < 0) {
    return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': negative gpus, memory or time limit"));
  }
  HEPML_RETURN_IF_ERROR(CheckOneLine("job name", job.name));
  return CheckOneLine("work_dir", job.work_dir);
}

// "htcondor:12.0" -> "12.0".
absl::StatusOr<std::string> JobId(const std::string& handle) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("'", handle, "' is not an HTCondor job handle (htcondor:CLUSTER.PROC)"));
  };
  if (!absl::StartsWith(handle, kPrefix)) return bad();
  std::string id = handle.substr(strlen(kPrefix));
  std::vector<std::string> parts = absl::StrSplit(id, '.');
  int64_t n = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &n) || !absl::SimpleAtoi(parts[1], &n) ||
      parts[0].find_first_not_of("0123456789") != std::string::npos ||
      parts[1].find_first_not_of("0123456789") != std::string::npos) {
    return bad();
  }
  return id;
}

// The job ad of `id` in a -json answer (an array of ads; empty output when
// nothing matched).
absl::StatusOr<std::optional<nlohmann::json>> FindAd(const std::vector<std::string>& argv,
                                                     const batch::CommandResult& r, const std::string& id) {
  std::string text(absl::StripAsciiWhitespace(r.out));
  if (text.empty()) return std::optional<nlohmann::json>();
  nlohmann::json ads = nlohmann::json::parse(text, nullptr, false);
  if (!ads.is_array()) {
    return absl::InternalError(absl::StrCat("'", batch::CommandLine(argv), "' did not print a JSON array of ads"));
  }
  for (const auto& ad : ads) {
    if (!ad.is_object()) continue;
    if (absl::StrCat(ad.value("ClusterId", int64_t{-1}), ".", ad.value("ProcId", int64_t{-1})) == id) {
      return std::optional<nlohmann::json>(ad);
    }
  }
  return std::optional<nlohmann::json>();
}

double Num(const nlohmann::json& ad, const char* key) {
  auto it = ad.find(key);
  if (it == ad.end() || !it->is_number()) return 0;
  return it->get<double>();
}

std::string Str(const nlohmann::json& ad, const char* key) {
  auto it = ad.find(key);
  return it != ad.end() && it->is_string() ? it->get<std::string>() : "";
}

const char* const kAttributes =
    "ClusterId,ProcId,JobStatus,ExitCode,ExitBySignal,ExitSignal,RemoteWallClockTime,RemoteUserCpu,"
    "RemoteSysCpu,ResidentSetSize_RAW,MemoryUsage,HoldReason,RemoveReason,Iwd,AssignedGPUs";

// JobStatus: 1 idle, 2 running, 3 removed, 4 completed, 5 held, 6
// transferring output, 7 suspended.
void FromAd(const nlohmann::json& ad, JobStatus* st) {
  int status = static_cast<int>(Num(ad, "JobStatus"));
  st->wall_s = Num(ad, "RemoteWallClockTime");
  st->cpu_s = Num(ad, "RemoteUserCpu") + Num(ad, "RemoteSysCpu");
  if (double rss = Num(ad, "ResidentSetSize_RAW"); rss > 0) {
    st->peak_rss_kb = static_cast<int64_t>(rss);
  } else if (double mb = Num(ad, "MemoryUsage"); mb > 0) {
    st->peak_rss_kb = static_cast<int64_t>(mb * 1024);
  }
  st->gpus = Str(ad, "AssignedGPUs");  // e.g. "CUDA0,CUDA1", where the pool assigns GPUs
  switch (status) {
    case 1:
      st->state = JobState::kQueued;
      break;
    case 5:
      st->state = JobState::kQueued;
      st->reason = absl::StrCat("held: ", Str(ad, "HoldReason"));
      break;
    case 2:
    case 6:
    case 7:
      st->state = JobState::kRunning;
      break;
    case 3: {
      std::string why = Str(ad, "RemoveReason");
      if (absl::StrContains(why, "PeriodicRemove") || absl::StrContains(why, "periodic_remove")) {
        st->state = JobState::kFailed;
        st->reason = absl::StrCat("removed by its time limit (", why, ")");
      } else {
        st->state = JobState::kCancelled;
        st->reason = why.empty() ? "removed (condor_rm)" : absl::StrCat("removed: ", why);
      }
      break;
    }
    case 4: {
      auto sig = ad.find("ExitBySignal");
      bool by_signal = sig != ad.end() && sig->is_boolean() && sig->get<bool>();
      if (by_signal) {
        st->term_signal = static_cast<int>(Num(ad, "ExitSignal"));
        st->state = JobState::kFailed;
        st->reason = absl::StrCat("killed by signal ", st->term_signal);
      } else {
        st->exit_code = static_cast<int>(Num(ad, "ExitCode"));
        st->state = st->exit_code == 0 ? JobState::kSucceeded : JobState::kFailed;
        if (st->exit_code != 0) st->reason = absl::StrCat("exit code ", st->exit_code);
      }
      break;
    }
    default:
      st->state = JobState::kLost;
      st->reason = absl::StrCat("unknown HTCondor JobStatus ", status);
  }
}

}  // namespace

std::string CondorArguments(const std::vector<std::string>& args) {
  std::string out = "\"";
  for (size_t i = 0; i < args.size(); ++i) {
    if (i) out += ' ';
    out += CondorWord(args[i]);
  }
  return out + "\"";
}

std::string CondorEnvironment(const std::map<std::string, std::string>& env) {
  std::string out = "\"";
  bool first = true;
  for (const auto& [k, v] : env) {
    if (!first) out += ' ';
    first = false;
    out += CondorWord(absl::StrCat(k, "=", v));
  }
  return out + "\"";
}

CondorExecutor::CondorExecutor(const ExecutorOptions& options) : options_(options) {}

std::string CondorExecutor::Tool(const std::string& name) const {
  return options_.bin_dir.empty() ? name : absl::StrCat(options_.bin_dir, "/", name);
}

std::string CondorExecutor::SubmitDescription(const JobSpec& job) const {
  std::string wd = batch::Absolute(job.work_dir);
  const Resources& r = job.resources;
  std::string s =
      "# Written by hepml's HTCondor executor: job.sh runs the command under a\n"
      "# measuring wrapper that leaves hepml-exit and hepml-usage in initialdir.\n";
  absl::StrAppend(&s, "universe = vanilla\n");
  absl::StrAppend(&s, "executable = /bin/sh\n");
  absl::StrAppend(&s, "arguments = ", CondorArguments({wd + "/job.sh"}), "\n");
  absl::StrAppend(&s, "initialdir = ", wd, "\n");
  absl::StrAppend(&s, "output = ", wd, "/stdout.log\n");
  absl::StrAppend(&s, "error = ", wd, "/stderr.log\n");
  absl::StrAppend(&s, "log = ", wd, "/condor.log\n");
  if (!job.name.empty()) absl::StrAppend(&s, "batch_name = ", job.name, "\n");
  absl::StrAppend(&s, "request_cpus = ", r.cpus, "\n");
  if (r.gpus > 0) absl::StrAppend(&s, "request_gpus = ", r.gpus, "\n");
  if (r.memory_mb > 0) absl::StrAppend(&s, "request_memory = ", r.memory_mb, "\n");
  if (!job.env.empty()) absl::StrAppend(&s, "environment = ", CondorEnvironment(job.env), "\n");
  if (r.time_limit_s > 0) {
    absl::StrAppend(&s, "+MaxRuntime = ", r.time_limit_s, "\n");
    absl::StrAppend(&s, "periodic_remove = (JobStatus == 2) && (time() - EnteredCurrentStatus > ", r.time_limit_s,
                    ")\n");
  }
  if (!options_.account.empty()) absl::StrAppend(&s, "accounting_group = ", options_.account, "\n");
  for (const auto& line : options_.extra_args) absl::StrAppend(&s, line, "\n");
  absl::StrAppend(&s, "queue\n");
  return s;
}

absl::StatusOr<std::string> CondorExecutor::Submit(const JobSpec& job) {
  HEPML_RETURN_IF_ERROR(CheckJob(job));
  std::string wd = batch::Absolute(job.work_dir);
  HEPML_RETURN_IF_ERROR(batch::MakeDirs(wd));
  batch::ClearJobFiles(wd);
  HEPML_RETURN_IF_ERROR(batch::WriteFile(
      wd + "/job.sh", absl::StrCat("#!/bin/sh\n# Written by hepml's HTCondor executor.\n",
                                   batch::MeasuredCommandScript(job.command, batch::ShellQuote(wd)))));
  std::string sub = wd + "/job.sub";
  HEPML_RETURN_IF_ERROR(batch::WriteFile(sub, SubmitDescription(job)));
  std::vector<std::string> argv = {Tool("condor_submit"), "-terse", sub};
  HEPML_ASSIGN_OR_RETURN(auto r, RunCommand(argv));
  if (r.exit_code != 0) return CommandFailed(argv, r);
  // -terse prints "FIRST - LAST", e.g. "23.0 - 23.0".
  std::string first(absl::StripAsciiWhitespace(r.out.substr(0, r.out.find(" - "))));
  auto id = JobId(absl::StrCat(kPrefix, first));
  if (!id.ok()) {
    return absl::InternalError(
        absl::StrCat("'", batch::CommandLine(argv), "' printed '", r.out, "', not CLUSTER.PROC - CLUSTER.PROC"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    work_dirs_[*id] = wd;
  }
  return absl::StrCat(kPrefix, *id);
}

absl::StatusOr<JobStatus> CondorExecutor::Poll(const std::string& handle) {
  HEPML_ASSIGN_OR_RETURN(std::string id, JobId(handle));
  JobStatus st;
  st.native_id = id;
  std::string work_dir;
  bool cancelled_here;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = work_dirs_.find(id);
    if (it != work_dirs_.end()) work_dir = it->second;
    cancelled_here = cancelled_.count(id) > 0;
  }
  std::optional<nlohmann::json> ad;
  std::vector<std::string> q = {Tool("condor_q"), "-json", id, "-attributes", kAttributes};
  HEPML_ASSIGN_OR_RETURN(auto qr, RunCommand(q));
  if (qr.exit_code != 0) return CommandFailed(q, qr);
  HEPML_ASSIGN_OR_RETURN(ad, FindAd(q, qr, id));
  if (!ad) {
    std::vector<std::string> h = {Tool("condor_history"), "-json", id, "-limit", "1", "-attributes", kAttributes};
    HEPML_ASSIGN_OR_RETURN(auto hr, RunCommand(h));
    if (hr.exit_code != 0) return CommandFailed(h, hr);
    HEPML_ASSIGN_OR_RETURN(ad, FindAd(h, hr, id));
  }
  if (ad) {
    FromAd(*ad, &st);
    if (work_dir.empty()) work_dir = Str(*ad, "Iwd");
  }
  std::optional<batch::Measured> measured;
  if (!work_dir.empty() && st.state != JobState::kQueued && st.state != JobState::kRunning) {
    measured = batch::ReadMeasured(work_dir);
  }
  if (!ad) {
    if (!measured && !work_dir.empty()) measured = batch::ReadMeasured(work_dir);
    if (!measured) {
      st.state = cancelled_here ? JobState::kCancelled : JobState::kLost;
      st.reason = absl::StrCat("neither condor_q nor condor_history knows job ", id,
                               work_dir.empty() ? " and its work folder is unknown here"
                                                : absl::StrCat(" and it left no exit code in ", work_dir));
      return st;
    }
    st.exit_code = measured->exit_code;
    if (st.exit_code > 128 && st.exit_code < 128 + 65) st.term_signal = st.exit_code - 128;
    st.state = st.exit_code == 0 ? JobState::kSucceeded : JobState::kFailed;
    if (st.exit_code != 0) st.reason = absl::StrCat("exit code ", st.exit_code);
  }
  if (measured) {
    if (st.wall_s == 0) st.wall_s = measured->wall_s;
    if (st.cpu_s == 0) st.cpu_s = measured->cpu_s;
    if (st.peak_rss_kb == 0) st.peak_rss_kb = measured->peak_rss_kb;
  }
  return st;
}

absl::Status CondorExecutor::Cancel(const std::string& handle, double /*grace_s*/) {
  HEPML_ASSIGN_OR_RETURN(std::string id, JobId(handle));
  std::vector<std::string> q = {Tool("condor_q"), "-json", id, "-attributes", kAttributes};
  HEPML_ASSIGN_OR_RETURN(auto qr, RunCommand(q));
  if (qr.exit_code != 0) return CommandFailed(q, qr);
  HEPML_ASSIGN_OR_RETURN(auto ad, FindAd(q, qr, id));
  if (!ad) return absl::OkStatus();  // already left the queue
  int status = static_cast<int>(Num(*ad, "JobStatus"));
  if (status == 3 || status == 4) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_.insert(id);
  }
  std::vector<std::string> rm = {Tool("condor_rm"), id};
  HEPML_ASSIGN_OR_RETURN(auto rr, RunCommand(rm));
  if (rr.exit_code != 0) return CommandFailed(rm, rr);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Executor>> MakeCondorExecutor(const ExecutorOptions& options) {
  if (!options.partition.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("executor partition '", options.partition,
                                                   "': HTCondor has no partitions (use extra_args requirements)"));
  }
  for (const auto& line : options.extra_args) {
    HEPML_RETURN_IF_ERROR(CheckOneLine("submit description line", line));
    std::string l(absl::StripAsciiWhitespace(line));
    if (absl::AsciiStrToLower(l).rfind("queue", 0) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("submit description line '", line, "': hepml writes the queue command itself"));
    }
  }
  HEPML_RETURN_IF_ERROR(CheckOneLine("account", options.account));
  return std::unique_ptr<Executor>(new CondorExecutor(options));
}

}  // namespace hepml::jobs
