// The study runner: trials in flight, their metrics followed from their
// output files, pruning, budgets, and every step recorded in the registry
// (see study.h for where the state lives and how a resume works).
#include "jobs/study.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace hepml::jobs {

namespace {

namespace fs = std::filesystem;
using registry::Registry;
using registry::RunBatch;
using registry::RunInfo;

// Run tags.
constexpr const char* kRole = "hepml.hpo.role";  // study | trial
constexpr const char* kTrialTag = "hepml.hpo.trial";
constexpr const char* kState = "hepml.hpo.state";
constexpr const char* kHandle = "hepml.hpo.handle";
constexpr const char* kTrialDir = "hepml.hpo.trial_dir";
constexpr const char* kReason = "hepml.hpo.reason";
constexpr const char* kValue = "hepml.hpo.value";
constexpr const char* kLost = "hepml.hpo.lost";
constexpr const char* kRetryOf = "hepml.hpo.retry_of";
constexpr const char* kExitCode = "hepml.hpo.exit_code";
constexpr const char* kWall = "hepml.hpo.wall_s";
constexpr const char* kCpu = "hepml.hpo.cpu_s";
constexpr const char* kPeakRss = "hepml.hpo.peak_rss_kb";
constexpr const char* kGpus = "hepml.hpo.gpus";
constexpr const char* kSignal = "hepml.hpo.term_signal";
constexpr const char* kWarnings = "hepml.hpo.warnings";
constexpr const char* kLastWarning = "hepml.hpo.last_warning";
constexpr const char* kConfig = "hepml.hpo.config";
constexpr const char* kBaseDir = "hepml.hpo.base_dir";
constexpr int64_t kAllRuns = int64_t{1} << 40;
constexpr double kPollErrorsGiveUpS = 600;

std::string Num(double v) { return absl::StrFormat("%.17g", v); }

double SteadyS() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool ShellSafe(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && std::string_view("_.,+-=/:@%").find(c) == std::string_view::npos) return false;
  }
  return true;
}

std::string ShellQuote(const std::string& s) {
  if (ShellSafe(s)) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

absl::StatusOr<ParamValue> ParseValue(const ParamSpec& spec, const std::string& text) {
  if (spec.kind == ParamKind::kCategorical) return ParamValue(text);
  if (spec.kind == ParamKind::kInt) {
    int64_t i = 0;
    if (absl::SimpleAtoi(text, &i)) return ParamValue(i);
  } else {
    double d = 0;
    if (absl::SimpleAtod(text, &d)) return ParamValue(d);
  }
  return absl::DataLossError(absl::StrCat("parameter ", spec.name, "='", text, "' does not read back"));
}

TrialState StateFromName(const std::string& s) {
  if (s == "running") return TrialState::kRunning;
  if (s == "complete") return TrialState::kComplete;
  if (s == "pruned") return TrialState::kPruned;
  if (s == "failed") return TrialState::kFailed;
  return TrialState::kQueued;
}

const std::string* Tag(const RunInfo& r, const char* key) {
  auto it = r.tags.find(key);
  return it == r.tags.end() ? nullptr : &it->second;
}

bool IsBetter(double a, double b, Direction d) { return d == Direction::kMinimize ? a < b : a > b; }

}  // namespace

// ---------------------------------------------------------------- metric lines

absl::StatusOr<std::optional<std::vector<MetricValue>>> ParseMetricLine(const std::string& raw) {
  absl::string_view line = absl::StripAsciiWhitespace(raw);
  if (!absl::ConsumePrefix(&line, "hepml-metric")) return std::optional<std::vector<MetricValue>>();
  if (!line.empty() && !absl::ascii_isspace(line[0])) return std::optional<std::vector<MetricValue>>();
  std::vector<MetricValue> values;
  std::optional<int64_t> step;
  for (absl::string_view item : absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
    auto eq = item.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("'", item, "' is not NAME=VALUE"));
    }
    std::string name(item.substr(0, eq));
    absl::string_view text = item.substr(eq + 1);
    if (name == "step") {
      int64_t s = 0;
      if (!absl::SimpleAtoi(text, &s) || s < 0) {
        return absl::InvalidArgumentError(absl::StrCat("step '", text, "' is not a non-negative integer"));
      }
      if (step) return absl::InvalidArgumentError("step given twice");
      step = s;
      continue;
    }
    double v = 0;
    if (!absl::SimpleAtod(text, &v)) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": '", text, "' is not a number"));
    }
    if (!std::isfinite(v)) return absl::InvalidArgumentError(absl::StrCat(name, ": ", text, " is not a finite number"));
    for (const auto& m : values) {
      if (m.name == name) return absl::InvalidArgumentError(absl::StrCat(name, " given twice"));
    }
    values.push_back({name, v, std::nullopt});
  }
  if (values.empty()) return absl::InvalidArgumentError("no NAME=VALUE");
  for (auto& m : values) m.step = step;
  return std::optional<std::vector<MetricValue>>(std::move(values));
}

absl::StatusOr<std::optional<std::vector<MetricValue>>> ParseMetricJson(const std::string& raw) {
  absl::string_view line = absl::StripAsciiWhitespace(raw);
  if (line.empty()) return std::optional<std::vector<MetricValue>>();
  nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("not a JSON object");
  MetricValue m;
  if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty()) {
    return absl::InvalidArgumentError("no \"name\" string");
  }
  m.name = j["name"].get<std::string>();
  if (!j.contains("value") || !j["value"].is_number()) return absl::InvalidArgumentError("no numeric \"value\"");
  m.value = j["value"].get<double>();
  if (!std::isfinite(m.value)) return absl::InvalidArgumentError("\"value\" is not finite");
  if (j.contains("step")) {
    if (!j["step"].is_number_integer() || j["step"].get<int64_t>() < 0) {
      return absl::InvalidArgumentError("\"step\" is not a non-negative integer");
    }
    m.step = j["step"].get<int64_t>();
  }
  for (const auto& [k, v] : j.items()) {
    if (k != "name" && k != "value" && k != "step") return absl::InvalidArgumentError(absl::StrCat("unknown key \"", k, "\""));
  }
  return std::optional<std::vector<MetricValue>>(std::vector<MetricValue>{m});
}

absl::StatusOr<std::string> ExpandCommand(const std::string& command, const SearchSpace& space, const ParamSet& params,
                                          const std::string& trial_dir, int64_t trial_number,
                                          const std::string& study, const std::string& study_dir) {
  std::string out;
  for (size_t i = 0; i < command.size(); ++i) {
    char c = command[i];
    if (c == '{' && i + 1 < command.size() && command[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    if (c == '}' && i + 1 < command.size() && command[i + 1] == '}') {
      out += '}';
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    size_t end = command.find('}', i);
    if (end == std::string::npos) return absl::InvalidArgumentError(absl::StrCat("'{' at offset ", i, " is not closed"));
    std::string name = command.substr(i + 1, end - i - 1);
    i = end;
    if (name == "trial_dir") {
      out += ShellQuote(trial_dir);
    } else if (name == "trial_number") {
      out += absl::StrCat(trial_number);
    } else if (name == "study") {
      out += ShellQuote(study);
    } else if (name == "study_dir") {
      out += ShellQuote(study_dir);
    } else if (const ParamSpec* spec = space.Find(name)) {
      auto it = params.find(name);
      if (it != params.end()) {
        std::string v = FormatParam(it->second);
        out += spec->kind == ParamKind::kCategorical ? ShellQuote(v) : v;
      }
    } else {
      std::vector<std::string> names;
      for (const auto& p : space.params) names.push_back(p.name);
      return absl::InvalidArgumentError(absl::StrCat("unknown placeholder {", name, "} (parameters: ",
                                                     absl::StrJoin(names, ", "),
                                                     "; also {trial_dir}, {trial_number}, {study}, {study_dir})"));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Registry>> OpenStudyRegistry(const StudyConfig& config) {
  if (!config.registry_metadata.empty()) return Registry::Open(config.registry_metadata, config.registry_blobs);
  return Registry::OpenDir(config.registry_dir);
}

// ---------------------------------------------------------------- the runner

struct Study::Impl {
  StudyConfig config;
  Registry* reg = nullptr;
  StudyOptions options;
  int64_t experiment_id = 0;
  int64_t study_run = 0;

  // Runtime state (Run only).
  std::vector<TrialRecord> records;  // by trial number
  std::vector<Trial> all;            // records[i].trial, as the sampler and pruner see it
  struct Active {
    size_t index = 0;
    std::string metrics_path;
    int64_t offset = 0;
    std::string partial;
    std::map<std::string, int64_t> next_step;
    std::set<std::pair<std::string, int64_t>> logged;
    // Points in the registry before a restart, not yet read again.
    std::set<std::pair<std::string, int64_t>> recorded;
    bool pruning = false;
    int64_t pruned_step = 0;
    std::string lost_reason;  // cancelled by the runner itself (stop, wall time)
    bool cancelled = false;
    double poll_errors_since = 0;  // steady-clock time of the first of failed polls in a row
  };
  std::vector<Active> active;
  std::deque<size_t> requeue;  // lost trials whose parameters run again
  std::unique_ptr<Executor> executor;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<Pruner> pruner;
  int lock_fd = -1;

  ~Impl() {
    if (lock_fd >= 0) close(lock_fd);
  }

  void Log(const std::string& line) {
    if (options.log) options.log(line);
  }

  absl::StatusOr<std::vector<TrialRecord>> Load() {
    auto runs = reg->SearchRuns({experiment_id}, kAllRuns);
    if (!runs.ok()) return runs.status();
    std::vector<TrialRecord> out;
    for (const RunInfo& r : *runs) {
      const std::string* role = Tag(r, kRole);
      const std::string* num = Tag(r, kTrialTag);
      TrialRecord t;
      if (role != nullptr && *role == "trial" && num != nullptr) {
        if (!absl::SimpleAtoi(*num, &t.trial.number)) continue;
      } else {
        // A runner that died between starting a trial's run and tagging it:
        // the run's name still says which trial it is (it is then queued,
        // without a handle, so it is marked lost and run again).
        absl::string_view name = r.name;
        if (role != nullptr || !absl::ConsumePrefix(&name, absl::StrCat(config.name, "-trial-")) ||
            !absl::SimpleAtoi(name, &t.trial.number)) {
          continue;
        }
      }
      t.run_id = r.id;
      const std::string* state = Tag(r, kState);
      t.trial.state = state ? StateFromName(*state) : TrialState::kQueued;
      for (const auto& [k, v] : r.params) {
        const ParamSpec* spec = config.space.Find(k);
        if (spec == nullptr) continue;
        auto pv = ParseValue(*spec, v);
        if (!pv.ok()) return pv.status();
        t.trial.params[k] = *pv;
      }
      for (const auto& m : r.metrics) {
        if (m.key == config.objective) t.trial.intermediate[m.step] = m.value;
      }
      double d = 0;
      int64_t i = 0;
      if (const std::string* v = Tag(r, kValue); v && absl::SimpleAtod(*v, &d)) t.trial.value = d;
      if (const std::string* v = Tag(r, kReason)) t.trial.fail_reason = *v;
      if (const std::string* v = Tag(r, kHandle)) t.handle = *v;
      if (const std::string* v = Tag(r, kTrialDir)) t.trial_dir = *v;
      if (const std::string* v = Tag(r, kLost)) t.lost = *v == "1";
      if (const std::string* v = Tag(r, kRetryOf); v && absl::SimpleAtoi(*v, &i)) t.retry_of = i;
      if (const std::string* v = Tag(r, kWall); v && absl::SimpleAtod(*v, &d)) t.wall_s = d;
      if (const std::string* v = Tag(r, kCpu); v && absl::SimpleAtod(*v, &d)) t.cpu_s = d;
      if (const std::string* v = Tag(r, kPeakRss); v && absl::SimpleAtoi(*v, &i)) t.peak_rss_kb = i;
      if (const std::string* v = Tag(r, kExitCode); v && absl::SimpleAtoi(*v, &i)) t.exit_code = static_cast<int>(i);
      if (const std::string* v = Tag(r, kGpus)) t.gpus = *v;
      if (const std::string* v = Tag(r, kWarnings); v && absl::SimpleAtoi(*v, &i)) t.warnings = i;
      if (t.wall_s == 0 && t.trial.state == TrialState::kRunning) t.wall_s = (registry_now_ms() - r.start_ms) / 1e3;
      out.push_back(std::move(t));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.trial.number < b.trial.number; });
    for (size_t i = 1; i < out.size(); ++i) {
      if (out[i].trial.number == out[i - 1].trial.number) {
        return absl::DataLossError(absl::StrCat("study ", config.name, ": trial ", out[i].trial.number,
                                                " is recorded twice (runs ", out[i - 1].run_id, " and ", out[i].run_id, ")"));
      }
    }
    return out;
  }

  static int64_t registry_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  absl::Status Lock() {
    std::error_code ec;
    fs::create_directories(config.work_dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", config.work_dir, ": ", ec.message()));
    std::string path = (fs::path(config.work_dir) / ".hepml-study.lock").string();
    lock_fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) return absl::InternalError(absl::StrCat("cannot open ", path));
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      return absl::FailedPreconditionError(absl::StrCat("study ", config.name, " is being run by another process (",
                                                        path, " is locked)"));
    }
    return absl::OkStatus();
  }

  void Sync(size_t i) { all[i] = records[i].trial; }

  // The executor, sampler and pruner: injected ones, else from the study file.
  absl::Status MakeParts() {
    if (!executor) {
      if (options.executor) {
        executor = std::move(options.executor);
      } else {
        ExecutorOptions eo = config.executor;
        if (options.executor_kind) eo.kind = *options.executor_kind;
        if (options.gpus) eo.gpus = *options.gpus;
        auto e = MakeExecutor(eo);
        if (!e.ok()) return e.status();
        executor = std::move(*e);
      }
    }
    if (!sampler) {
      if (options.sampler) {
        sampler = std::move(options.sampler);
      } else {
        auto s = MakeSampler(config.sampler);
        if (!s.ok()) return s.status();
        sampler = std::move(*s);
      }
    }
    if (!pruner) {
      if (options.pruner) {
        pruner = std::move(options.pruner);
      } else {
        auto p = MakePruner(config.pruner);
        if (!p.ok()) return p.status();
        pruner = std::move(*p);
      }
    }
    return absl::OkStatus();
  }

  // Records the end of a trial: its tags, then the run's end.
  absl::Status Finish(size_t i, const JobStatus& js, const std::string& run_status) {
    TrialRecord& t = records[i];
    t.wall_s = js.wall_s;
    t.cpu_s = js.cpu_s;
    t.peak_rss_kb = js.peak_rss_kb;
    t.exit_code = js.exit_code;
    if (!js.gpus.empty()) t.gpus = js.gpus;
    Sync(i);
    RunBatch b;
    b.tags = {{kRole, "trial"},
              {kTrialTag, absl::StrCat(t.trial.number)},
              {kState, TrialStateName(t.trial.state)},
              {kExitCode, absl::StrCat(js.exit_code)},
              {kWall, Num(js.wall_s)},
              {kCpu, Num(js.cpu_s)},
              {kPeakRss, absl::StrCat(js.peak_rss_kb)},
              {kGpus, t.gpus}};
    if (t.trial.value) b.tags.emplace_back(kValue, Num(*t.trial.value));
    if (!t.trial.fail_reason.empty()) b.tags.emplace_back(kReason, t.trial.fail_reason);
    if (t.lost) b.tags.emplace_back(kLost, "1");
    if (js.term_signal != 0) b.tags.emplace_back(kSignal, absl::StrCat(js.term_signal));
    if (js.gpu_util_mean >= 0) {
      b.tags.emplace_back("hepml.hpo.gpu_util", Num(js.gpu_util_mean));
      b.tags.emplace_back("hepml.hpo.gpu_mem_mb", absl::StrCat(js.gpu_mem_peak_mb));
    }
    if (absl::Status s = reg->LogBatch(t.run_id, b); !s.ok()) return s;
    registry::RunEnd end;
    end.status = run_status;
    end.cpu_seconds = js.cpu_s;
    if (!t.gpus.empty()) {
      end.gpu_seconds = js.wall_s * static_cast<double>(std::count(t.gpus.begin(), t.gpus.end(), ',') + 1);
    }
    if (js.peak_rss_kb > 0) end.peak_memory_bytes = js.peak_rss_kb * 1024;
    absl::Status s = reg->EndRun(t.run_id, end);
    if (!s.ok() && s.code() != absl::StatusCode::kFailedPrecondition) return s;  // ended already: fine
    std::string line = absl::StrCat("trial ", t.trial.number, " ", TrialStateName(t.trial.state));
    if (t.trial.value) absl::StrAppend(&line, " ", config.objective, "=", absl::StrFormat("%.6g", *t.trial.value));
    if (!t.trial.fail_reason.empty()) absl::StrAppend(&line, " (", t.trial.fail_reason, ")");
    absl::StrAppend(&line, absl::StrFormat(" %.1f s", js.wall_s));
    Log(line);
    return absl::OkStatus();
  }

  absl::Status MarkLost(size_t i, const std::string& reason, const JobStatus& js) {
    TrialRecord& t = records[i];
    t.trial.state = TrialState::kFailed;
    t.trial.fail_reason = absl::StrCat("lost: ", reason);
    t.lost = true;
    requeue.push_back(i);
    return Finish(i, js, "failed");
  }

  // Starts trial `number` with `params` (a retry of `retry_of` if set).
  absl::Status Launch(ParamSet params, std::optional<int64_t> retry_of) {
    int64_t number = static_cast<int64_t>(records.size());
    std::string trial_dir = (fs::path(config.work_dir) / absl::StrFormat("trial-%05d", number)).string();
    registry::RunStart start;
    start.name = absl::StrCat(config.name, "-trial-", number);
    start.experiment_id = experiment_id;
    for (const auto& [k, v] : params) start.params[k] = FormatParam(v);
    auto run = reg->StartRun(start);
    if (!run.ok()) return run.status();
    TrialRecord t;
    t.trial.number = number;
    t.trial.state = TrialState::kQueued;
    t.trial.params = std::move(params);
    t.run_id = *run;
    t.trial_dir = trial_dir;
    t.retry_of = retry_of;
    RunBatch b;
    b.tags = {{kRole, "trial"}, {kTrialTag, absl::StrCat(number)}, {kState, "queued"}, {kTrialDir, trial_dir}};
    if (retry_of) b.tags.emplace_back(kRetryOf, absl::StrCat(*retry_of));
    if (absl::Status s = reg->LogBatch(*run, b); !s.ok()) return s;
    records.push_back(t);
    all.push_back(t.trial);
    size_t i = records.size() - 1;

    auto fail = [&](const std::string& reason) -> absl::Status {
      records[i].trial.state = TrialState::kFailed;
      records[i].trial.fail_reason = reason;
      return Finish(i, JobStatus{}, "failed");
    };
    auto command = ExpandCommand(config.command, config.space, records[i].trial.params, trial_dir, number, config.name,
                                 config.base_dir);
    if (!command.ok()) return fail(absl::StrCat("command: ", command.status().message()));
    JobSpec job;
    job.name = start.name;
    job.command = *command;
    job.work_dir = trial_dir;
    job.resources = config.resources;
    job.env["HEPML_TRIAL_NUMBER"] = absl::StrCat(number);
    job.env["HEPML_TRIAL_DIR"] = trial_dir;
    job.env["HEPML_STUDY"] = config.name;
    job.env["HEPML_STUDY_DIR"] = config.base_dir;
    // A retry must not read what the lost attempt left behind.
    std::error_code ec;
    fs::remove_all(trial_dir, ec);
    auto handle = executor->Submit(job);
    if (!handle.ok()) return fail(absl::StrCat("could not start: ", handle.status().message()));
    records[i].handle = *handle;
    records[i].trial.state = TrialState::kRunning;
    Sync(i);
    RunBatch r;
    r.tags = {{kHandle, *handle}, {kState, "running"}};
    if (absl::Status s = reg->LogBatch(*run, r); !s.ok()) return s;
    Attach(i);
    return absl::OkStatus();
  }

  void Attach(size_t i) {
    Active a;
    a.index = i;
    const TrialRecord& t = records[i];
    a.metrics_path = (fs::path(t.trial_dir) / (config.metrics_source == "jsonl" ? config.metrics_file : "stdout.log")).string();
    active.push_back(std::move(a));
  }

  // Reads new output of a trial; logs its metrics; asks the pruner. Returns
  // whether anything new arrived.
  absl::StatusOr<bool> Follow(Active& a, bool final) {
    std::ifstream in(a.metrics_path, std::ios::binary);
    if (!in) return false;
    in.seekg(a.offset);
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (chunk.empty() && !(final && !a.partial.empty())) return false;
    a.offset += static_cast<int64_t>(chunk.size());
    a.partial += chunk;
    std::vector<std::string> lines;
    size_t startpos = 0;
    for (size_t nl; (nl = a.partial.find('\n', startpos)) != std::string::npos; startpos = nl + 1) {
      lines.push_back(a.partial.substr(startpos, nl - startpos));
    }
    a.partial.erase(0, startpos);
    if (final && !a.partial.empty()) {
      lines.push_back(a.partial);
      a.partial.clear();
    }
    TrialRecord& t = records[a.index];
    RunBatch batch;
    std::vector<int64_t> new_objective_steps;
    std::string last_warning;
    int64_t warnings = 0;
    for (const std::string& line : lines) {
      auto parsed = config.metrics_source == "jsonl" ? ParseMetricJson(line) : ParseMetricLine(line);
      if (!parsed.ok()) {
        ++warnings;
        last_warning = absl::StrCat("bad metric line '", line.substr(0, 200), "': ", parsed.status().message());
        continue;
      }
      if (!parsed->has_value()) continue;
      for (const MetricValue& m : **parsed) {
        int64_t step = m.step ? *m.step : a.next_step[m.name];
        a.next_step[m.name] = std::max(a.next_step[m.name], step + 1);
        if (a.recorded.erase({m.name, step}) > 0) {  // recorded before a restart
          a.logged.insert({m.name, step});
          continue;
        }
        if (!a.logged.insert({m.name, step}).second) {
          ++warnings;
          last_warning = absl::StrCat(m.name, " at step ", step, " reported twice; the first value is kept");
          continue;
        }
        batch.metrics.push_back({m.name, step, m.value, 0});
        if (m.name == config.objective) {
          t.trial.intermediate[step] = m.value;
          new_objective_steps.push_back(step);
        }
      }
    }
    if (warnings > 0) {
      t.warnings += warnings;
      batch.tags = {{kWarnings, absl::StrCat(t.warnings)}, {kLastWarning, last_warning}};
    }
    if (!batch.metrics.empty() || !batch.tags.empty()) {
      if (absl::Status s = reg->LogBatch(t.run_id, batch); !s.ok()) return s;
    }
    if (!new_objective_steps.empty()) {
      Sync(a.index);
      if (!a.pruning && !final && config.pruner.kind != "none") {
        for (int64_t step : new_objective_steps) {
          if (pruner->ShouldPrune(t.trial, step, all, config.direction)) {
            a.pruning = true;
            a.pruned_step = step;
            if (absl::Status s = executor->Cancel(t.handle, options.cancel_grace_s); !s.ok()) {
              Log(absl::StrCat("trial ", t.trial.number, ": cancel failed (tried again at the next step): ", s.message()));
              a.pruning = false;
            }
            break;
          }
        }
      }
    }
    return !lines.empty();
  }

  absl::StatusOr<bool> PollOne(Active& a, bool* done) {
    *done = false;
    TrialRecord& t = records[a.index];
    auto js = executor->Poll(t.handle);
    if (!js.ok()) {
      // A batch system's query can fail for a while (a busy scheduler): try
      // again at the next poll, and give the trial up only when it persists.
      double now = SteadyS();
      if (a.poll_errors_since == 0) a.poll_errors_since = now;
      if (now - a.poll_errors_since < kPollErrorsGiveUpS) return false;
      *done = true;
      JobStatus gone;
      gone.reason = absl::StrCat("polls failed for ", kPollErrorsGiveUpS, " s; the last: ", js.status().message());
      if (absl::Status s = executor->Cancel(t.handle, options.cancel_grace_s); !s.ok()) {
        Log(absl::StrCat("trial ", t.trial.number, ": cancel failed: ", s.message()));
      }
      if (absl::Status s = MarkLost(a.index, gone.reason, gone); !s.ok()) return s;
      return true;
    }
    a.poll_errors_since = 0;
    bool finished = js->state != JobState::kRunning && js->state != JobState::kQueued;
    auto got = Follow(a, finished);
    if (!got.ok()) return got.status();
    if (!finished) return *got;
    *done = true;
    if (!a.lost_reason.empty()) {
      if (absl::Status s = MarkLost(a.index, a.lost_reason, *js); !s.ok()) return s;
      return true;
    }
    if (js->state == JobState::kLost) {
      if (absl::Status s = MarkLost(a.index, js->reason.empty() ? "the executor lost the job" : js->reason, *js); !s.ok()) {
        return s;
      }
      return true;
    }
    std::string run_status = "failed";
    if (a.pruning) {
      t.trial.state = TrialState::kPruned;
      t.trial.fail_reason = absl::StrCat("pruned at step ", a.pruned_step, " by ", config.pruner.kind);
      if (!t.trial.intermediate.empty()) t.trial.value = t.trial.intermediate.rbegin()->second;
      run_status = "killed";
    } else if (js->state == JobState::kSucceeded) {
      if (t.trial.intermediate.empty()) {
        t.trial.state = TrialState::kFailed;
        t.trial.fail_reason = absl::StrCat("exit code 0 but no ", config.objective, " was reported");
      } else {
        t.trial.state = TrialState::kComplete;
        t.trial.value = t.trial.intermediate.rbegin()->second;
        run_status = "finished";
      }
    } else {
      t.trial.state = TrialState::kFailed;
      t.trial.fail_reason = js->reason.empty() ? JobStateName(js->state) : js->reason;
      std::string err = LastLine(fs::path(t.trial_dir) / "stderr.log");
      if (!err.empty()) absl::StrAppend(&t.trial.fail_reason, "; stderr: ", err);
    }
    if (absl::Status s = Finish(a.index, *js, run_status); !s.ok()) return s;
    return true;
  }

  static std::string LastLine(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return "";
    in.seekg(0, std::ios::end);
    std::streamoff size = in.tellg();
    std::streamoff from = std::max<std::streamoff>(0, size - 4096);
    in.seekg(from);
    std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> lines = absl::StrSplit(tail, '\n', absl::SkipWhitespace());
    if (lines.empty()) return "";
    std::string last(absl::StripAsciiWhitespace(lines.back()));
    return last.substr(0, 300);
  }

  absl::StatusOr<StudySummary> Run() {
    absl::StatusOr<StudySummary> result = RunLocked();
    if (lock_fd >= 0) {
      close(lock_fd);  // releases the study lock
      lock_fd = -1;
    }
    active.clear();
    requeue.clear();
    return result;
  }

  absl::StatusOr<StudySummary> RunLocked() {
    if (absl::Status s = Lock(); !s.ok()) return s;
    auto loaded = Load();
    if (!loaded.ok()) return loaded.status();
    records = std::move(*loaded);
    for (size_t i = 0; i < records.size(); ++i) {
      if (records[i].trial.number != static_cast<int64_t>(i)) {
        return absl::DataLossError(absl::StrCat("study ", config.name, ": trial ", i, " is missing from the registry"));
      }
    }
    all.clear();
    for (const auto& r : records) all.push_back(r.trial);
    if (absl::Status s = MakeParts(); !s.ok()) return s;
    // Trials left running or queued by an earlier runner: re-attach, or lost.
    std::set<int64_t> retried;
    for (const auto& r : records) {
      if (r.retry_of) retried.insert(*r.retry_of);
    }
    for (size_t i = 0; i < records.size(); ++i) {
      TrialRecord& t = records[i];
      if (t.trial.state != TrialState::kRunning && t.trial.state != TrialState::kQueued) {
        if (t.lost && retried.count(t.trial.number) == 0) requeue.push_back(i);
        continue;
      }
      if (t.handle.empty()) {
        if (absl::Status s = MarkLost(i, "runner restarted before the trial was submitted", {}); !s.ok()) return s;
        continue;
      }
      auto js = executor->Poll(t.handle);
      if (!js.ok() || js->state == JobState::kLost) {
        std::string why = js.ok() ? js->reason : std::string(js.status().message());
        if (absl::Status s = MarkLost(i, absl::StrCat("runner restarted; ", why), js.ok() ? *js : JobStatus{}); !s.ok()) {
          return s;
        }
        continue;
      }
      Attach(i);
      Active& a = active.back();
      // Points already recorded are not logged again when the output is re-read.
      auto run = reg->GetRun(t.run_id);
      if (run.ok()) {
        for (const auto& m : run->metrics) a.recorded.insert({m.key, m.step});
      }
      Log(absl::StrCat("trial ", t.trial.number, " re-attached (", t.handle, ")"));
    }

    StudySummary summary;
    auto count = [&](StudySummary* s) {
      s->complete = s->pruned = s->failed = s->lost = 0;
      for (const auto& r : records) {
        if (r.lost) ++s->lost;
        else if (r.trial.state == TrialState::kComplete) ++s->complete;
        else if (r.trial.state == TrialState::kPruned) ++s->pruned;
        else if (r.trial.state == TrialState::kFailed) ++s->failed;
      }
    };
    count(&summary);
    int64_t finished = summary.complete + summary.pruned + summary.failed;
    int64_t failures = summary.failed;
    int64_t limit = std::max<int64_t>(1, std::min<int64_t>(config.budget.parallel, executor->capacity()));
    double started = SteadyS();
    double sleep_s = 0.001;
    bool stop_launching = false;
    std::string stopped;
    if (absl::Status s = reg->SetRunTag(study_run, kState, "running"); !s.ok()) return s;

    while (true) {
      bool event = false;
      bool stop_now = options.stop != nullptr && options.stop->load();
      bool out_of_time = config.budget.wall_time_s > 0 && SteadyS() - started > config.budget.wall_time_s;
      if ((stop_now || out_of_time) && stopped.empty()) {
        stopped = stop_now ? "interrupted" : absl::StrCat("wall_time of ", config.budget.wall_time_s, " s used up");
        stop_launching = true;
        for (Active& a : active) {
          if (a.cancelled) continue;
          a.cancelled = true;
          a.lost_reason = absl::StrCat("runner stopped: ", stopped);
          a.pruning = false;
          if (absl::Status s = executor->Cancel(records[a.index].handle, options.cancel_grace_s); !s.ok()) {
            Log(absl::StrCat("trial ", records[a.index].trial.number, ": cancel failed: ", s.message()));
          }
        }
      }
      if (config.budget.max_failures >= 0 && failures > config.budget.max_failures && !stop_launching) {
        stop_launching = true;
        stopped = absl::StrCat("more than max_failures (", config.budget.max_failures, ") trials failed");
      }
      // Launch.
      while (!stop_launching && static_cast<int64_t>(active.size()) < limit &&
             finished + static_cast<int64_t>(active.size()) < config.budget.trials) {
        ParamSet params;
        std::optional<int64_t> retry_of;
        if (!requeue.empty()) {
          size_t from = requeue.front();
          requeue.pop_front();
          params = records[from].trial.params;
          retry_of = records[from].trial.number;
        } else {
          auto p = sampler->Sample(config.space, config.direction, all, static_cast<int64_t>(records.size()));
          if (absl::IsOutOfRange(p.status())) {
            stop_launching = true;
            if (stopped.empty()) stopped = "the sampler has no more points";
            break;
          }
          if (!p.ok()) return p.status();
          params = std::move(*p);
        }
        if (absl::Status s = Launch(std::move(params), retry_of); !s.ok()) return s;
        event = true;
        if (records.back().trial.state == TrialState::kFailed) {
          ++finished;
          ++failures;
          if (config.budget.max_failures >= 0 && failures > config.budget.max_failures) break;
        }
      }
      if (active.empty()) break;
      // Poll.
      for (size_t k = 0; k < active.size();) {
        bool done = false;
        auto got = PollOne(active[k], &done);
        if (!got.ok()) return got.status();
        event = event || *got;
        if (done) {
          const TrialRecord& t = records[active[k].index];
          if (!t.lost) {
            ++finished;
            if (t.trial.state == TrialState::kFailed) ++failures;
          }
          active.erase(active.begin() + static_cast<std::ptrdiff_t>(k));
          event = true;
        } else {
          ++k;
        }
      }
      if (event) {
        sleep_s = 0.001;
      } else {
        std::this_thread::sleep_for(std::chrono::duration<double>(sleep_s));
        sleep_s = std::min(0.05, sleep_s * 2);
      }
    }
    if (config.budget.max_failures >= 0 && failures > config.budget.max_failures && stopped.empty()) {
      stopped = absl::StrCat("more than max_failures (", config.budget.max_failures, ") trials failed");
    }
    count(&summary);
    summary.stopped = stopped;
    std::string state = stopped.empty() ? "complete" : absl::StrCat("stopped: ", stopped);
    if (absl::Status s = reg->SetRunTag(study_run, kState, state); !s.ok()) return s;
    return summary;
  }
};

Study::Study(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Study::~Study() = default;

const StudyConfig& Study::config() const { return impl_->config; }

absl::StatusOr<std::unique_ptr<Study>> Study::Create(StudyConfig config, Registry* registry, StudyOptions options) {
  // The parts first: a study that cannot run (an executor or sampler that is
  // not built in) is not recorded.
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  impl->reg = registry;
  impl->options = std::move(options);
  if (absl::Status s = impl->MakeParts(); !s.ok()) return s;
  const StudyConfig& c = impl->config;
  auto existing = registry->GetExperimentByName(c.name);
  if (existing.ok()) {
    return absl::AlreadyExistsError(absl::StrCat("study ", c.name, " exists in this registry already; `hepml hpo ",
                                                 "resume ", c.name, "` continues it"));
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();
  auto exp = registry->CreateExperiment(c.name);
  if (!exp.ok()) return exp.status();
  registry::RunStart start;
  start.name = c.name;
  start.experiment_id = exp->id;
  auto run = registry->StartRun(start);
  if (!run.ok()) return run.status();
  RunBatch b;
  b.tags = {{kRole, "study"}, {kConfig, c.text}, {kBaseDir, c.base_dir}, {kState, "created"}};
  if (absl::Status s = registry->LogBatch(*run, b); !s.ok()) return s;
  impl->experiment_id = exp->id;
  impl->study_run = *run;
  return std::unique_ptr<Study>(new Study(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Study>> Study::Open(const std::string& name, Registry* registry, StudyOptions options) {
  auto exp = registry->GetExperimentByName(name);
  if (absl::IsNotFound(exp.status())) {
    return absl::NotFoundError(absl::StrCat("no study named ", name, " in the registry at ", registry->metadata_uri()));
  }
  if (!exp.ok()) return exp.status();
  auto runs = registry->SearchRuns({exp->id}, kAllRuns);
  if (!runs.ok()) return runs.status();
  for (const RunInfo& r : *runs) {
    const std::string* role = Tag(r, kRole);
    if (role == nullptr || *role != "study") continue;
    const std::string* text = Tag(r, kConfig);
    const std::string* base = Tag(r, kBaseDir);
    if (text == nullptr || base == nullptr) break;
    auto config = ParseStudyConfig(*text, absl::StrCat("study ", name, " (as recorded)"), *base);
    if (!config.ok()) return config.status();
    auto impl = std::make_unique<Impl>();
    impl->config = std::move(*config);
    impl->reg = registry;
    impl->options = std::move(options);
    impl->experiment_id = exp->id;
    impl->study_run = r.id;
    return std::unique_ptr<Study>(new Study(std::move(impl)));
  }
  return absl::NotFoundError(absl::StrCat("experiment ", name, " is not a hepml hpo study (no study record)"));
}

absl::StatusOr<StudySummary> Study::Run() { return impl_->Run(); }

absl::StatusOr<std::vector<TrialRecord>> Study::Trials() { return impl_->Load(); }

absl::StatusOr<TrialRecord> Study::Best() {
  auto trials = impl_->Load();
  if (!trials.ok()) return trials.status();
  const TrialRecord* best = nullptr;
  for (const auto& t : *trials) {
    if (t.trial.state != TrialState::kComplete || !t.trial.value) continue;
    if (best == nullptr || IsBetter(*t.trial.value, *best->trial.value, impl_->config.direction)) best = &t;
  }
  if (best == nullptr) return absl::NotFoundError(absl::StrCat("study ", impl_->config.name, " has no complete trial yet"));
  return *best;
}

}  // namespace hepml::jobs
