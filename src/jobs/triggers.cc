// Retraining triggers (triggers.h).
#include "jobs/triggers.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hepml/status.h"
#include "jobs/batch_util.h"
#include "nlohmann/json.hpp"

namespace hepml::jobs {
namespace {

using registry::Registry;
using registry::RunInfo;

constexpr const char* kTriggersExperiment = "hepml.jobs.triggers";
constexpr const char* kStateExperiment = "hepml.jobs.state";
constexpr const char* kRunsExperiment = "hepml.jobs.runs";
constexpr const char* kDriftExperiment = "hepml.jobs.drift";
constexpr int64_t kMaxRuns = 1000000;

// ---------------------------------------------------------------- job files

std::string Expected(const std::vector<std::string>& keys) { return absl::StrJoin(keys, ", "); }

// Unknown keys of `node` (a map) as an error naming them and the known ones.
absl::Status CheckKeys(const YAML::Node& node, const std::string& where, const std::vector<std::string>& known) {
  if (!node.IsMap()) return absl::InvalidArgumentError(absl::StrCat(where, ": expected a mapping"));
  std::vector<std::string> unknown;
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end()) unknown.push_back("'" + key + "'");
  }
  if (unknown.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(where, ": unknown key", unknown.size() > 1 ? "s " : " ",
                                                 absl::StrJoin(unknown, ", "), " (expected ", Expected(known), ")"));
}

template <typename T>
absl::Status Get(const YAML::Node& node, const std::string& key, const std::string& where, T* out) {
  const YAML::Node v = node[key];
  if (!v) return absl::OkStatus();
  try {
    *out = v.as<T>();
  } catch (const YAML::Exception&) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": '", key, "' has the wrong type"));
  }
  return absl::OkStatus();
}

// {name} placeholders of a command (not ${VAR} shell expansions).
std::set<std::string> Placeholders(const std::string& command) {
  std::set<std::string> out;
  for (size_t i = 0; i < command.size(); ++i) {
    if (command[i] != '{' || (i > 0 && command[i - 1] == '$')) continue;
    size_t close = command.find('}', i);
    if (close == std::string::npos) break;
    std::string name = command.substr(i + 1, close - i - 1);
    bool ident = !name.empty();
    for (char c : name)
      if (!absl::ascii_isalnum(c) && c != '_') ident = false;
    if (ident) out.insert(name);
  }
  return out;
}

const std::vector<std::string> kCommandPlaceholders = {"dataset", "dataset_version", "out", "work_dir", "model"};

}  // namespace

absl::StatusOr<RetrainJob> ParseRetrainJob(const std::string& yaml_text, const std::string& source,
                                           const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("job file ", source, ": not YAML: ", e.what()));
  }
  const std::string where = absl::StrCat("job file ", source);
  HEPML_RETURN_IF_ERROR(CheckKeys(root, where,
                                  {"command", "model", "output", "metric", "alias", "policy", "dataset",
                                   "drift_threshold", "work_root", "env", "executor", "resources"}));
  RetrainJob job;
  HEPML_RETURN_IF_ERROR(Get(root, "command", where, &job.command));
  HEPML_RETURN_IF_ERROR(Get(root, "model", where, &job.model));
  HEPML_RETURN_IF_ERROR(Get(root, "output", where, &job.output));
  HEPML_RETURN_IF_ERROR(Get(root, "alias", where, &job.alias));
  HEPML_RETURN_IF_ERROR(Get(root, "dataset", where, &job.dataset));
  HEPML_RETURN_IF_ERROR(Get(root, "work_root", where, &job.work_root));
  if (root["drift_threshold"]) {
    double t = 0;
    HEPML_RETURN_IF_ERROR(Get(root, "drift_threshold", where, &t));
    job.drift_threshold = t;
  }
  if (job.command.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": 'command' is missing"));
  if (job.model.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": 'model' is missing"));
  if (job.output.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": 'output' is empty"));
  if (job.alias.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": 'alias' is empty"));
  for (const auto& p : Placeholders(job.command)) {
    if (std::find(kCommandPlaceholders.begin(), kCommandPlaceholders.end(), p) == kCommandPlaceholders.end()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": command placeholder {", p, "} is unknown (expected {",
                                                     absl::StrJoin(kCommandPlaceholders, "}, {"), "})"));
    }
  }

  const YAML::Node metric = root["metric"];
  if (!metric) return absl::InvalidArgumentError(absl::StrCat(where, ": 'metric' is missing"));
  if (metric.IsScalar()) {
    job.metric = metric.as<std::string>();
  } else {
    HEPML_RETURN_IF_ERROR(CheckKeys(metric, where + ": metric", {"name", "direction"}));
    HEPML_RETURN_IF_ERROR(Get(metric, "name", where + ": metric", &job.metric));
    std::string dir = "maximize";
    HEPML_RETURN_IF_ERROR(Get(metric, "direction", where + ": metric", &dir));
    if (dir == "maximize") {
      job.direction = Direction::kMaximize;
    } else if (dir == "minimize") {
      job.direction = Direction::kMinimize;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": metric direction '", dir, "' (expected maximize or minimize)"));
    }
  }
  if (job.metric.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": metric name is empty"));

  if (const YAML::Node policy = root["policy"]) {
    std::string promote_if = "better_or_equal";
    if (policy.IsScalar()) {
      promote_if = policy.as<std::string>();
    } else {
      HEPML_RETURN_IF_ERROR(CheckKeys(policy, where + ": policy", {"promote_if"}));
      HEPML_RETURN_IF_ERROR(Get(policy, "promote_if", where + ": policy", &promote_if));
    }
    if (promote_if == "better_or_equal") {
      job.policy = PromotePolicy::kBetterOrEqual;
    } else if (promote_if == "always") {
      job.policy = PromotePolicy::kAlways;
    } else if (promote_if == "never") {
      job.policy = PromotePolicy::kNever;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(where, ": policy promote_if '", promote_if,
                                                     "' (expected better_or_equal, always or never)"));
    }
  }

  if (const YAML::Node env = root["env"]) {
    if (!env.IsMap()) return absl::InvalidArgumentError(absl::StrCat(where, ": 'env' must be a mapping"));
    for (const auto& kv : env) job.env[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }

  if (const YAML::Node ex = root["executor"]) {
    const std::string w = where + ": executor";
    HEPML_RETURN_IF_ERROR(
        CheckKeys(ex, w, {"kind", "partition", "account", "extra_args", "bin_dir", "cpu_slots", "gpus"}));
    HEPML_RETURN_IF_ERROR(Get(ex, "kind", w, &job.executor.kind));
    HEPML_RETURN_IF_ERROR(Get(ex, "partition", w, &job.executor.partition));
    HEPML_RETURN_IF_ERROR(Get(ex, "account", w, &job.executor.account));
    HEPML_RETURN_IF_ERROR(Get(ex, "extra_args", w, &job.executor.extra_args));
    HEPML_RETURN_IF_ERROR(Get(ex, "bin_dir", w, &job.executor.bin_dir));
    HEPML_RETURN_IF_ERROR(Get(ex, "cpu_slots", w, &job.executor.cpu_slots));
    HEPML_RETURN_IF_ERROR(Get(ex, "gpus", w, &job.executor.gpus));
    if (job.executor.kind != "local" && job.executor.kind != "slurm" && job.executor.kind != "htcondor") {
      return absl::InvalidArgumentError(
          absl::StrCat(w, ": kind '", job.executor.kind, "' (expected local, slurm or htcondor)"));
    }
  }
  if (const YAML::Node res = root["resources"]) {
    const std::string w = where + ": resources";
    HEPML_RETURN_IF_ERROR(CheckKeys(res, w, {"cpus", "gpus", "memory_mb", "time_limit_s"}));
    HEPML_RETURN_IF_ERROR(Get(res, "cpus", w, &job.resources.cpus));
    HEPML_RETURN_IF_ERROR(Get(res, "gpus", w, &job.resources.gpus));
    HEPML_RETURN_IF_ERROR(Get(res, "memory_mb", w, &job.resources.memory_mb));
    HEPML_RETURN_IF_ERROR(Get(res, "time_limit_s", w, &job.resources.time_limit_s));
    if (job.resources.cpus < 1 || job.resources.gpus < 0 || job.resources.memory_mb < 0 ||
        job.resources.time_limit_s < 0) {
      return absl::InvalidArgumentError(absl::StrCat(w, ": cpus must be at least 1, the others not negative"));
    }
  }
  if (job.work_root.empty()) job.work_root = "hepml-jobs";
  if (!std::filesystem::path(job.work_root).is_absolute()) {
    job.work_root = (std::filesystem::path(base_dir.empty() ? "." : base_dir) / job.work_root).string();
  }
  job.work_root = batch::Absolute(job.work_root);
  return job;
}

absl::StatusOr<RetrainJob> LoadRetrainJob(const std::string& path) {
  auto text = batch::ReadFile(path);
  if (!text) return absl::NotFoundError(absl::StrCat("job file ", path, ": cannot be read"));
  return ParseRetrainJob(*text, path, std::filesystem::path(batch::Absolute(path)).parent_path().string());
}

std::optional<double> LastMetric(const std::string& text, const std::string& name, std::map<std::string, double>* all) {
  std::optional<double> last;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, "hepml-metric ")) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (fields.empty()) continue;
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(fields[0], absl::MaxSplits('=', 1));
    double v = 0;
    if (kv.first.empty() || !absl::SimpleAtod(kv.second, &v)) continue;
    if (all) (*all)[std::string(kv.first)] = v;
    if (kv.first == name) last = v;
  }
  return last;
}

namespace {

// ---------------------------------------------------------------- registry records

absl::StatusOr<int64_t> ExperimentId(Registry& reg, const std::string& name) {
  auto e = reg.GetExperimentByName(name);
  if (e.ok()) return e->id;
  if (e.status().code() != absl::StatusCode::kNotFound) return e.status();
  auto created = reg.CreateExperiment(name);
  if (created.ok()) return created->id;
  e = reg.GetExperimentByName(name);  // another process made it first
  if (e.ok()) return e->id;
  return created.status();
}

std::string Tag(const RunInfo& r, const std::string& key) {
  auto it = r.tags.find(key);
  return it == r.tags.end() ? "" : it->second;
}

int64_t TagInt(const RunInfo& r, const std::string& key) {
  int64_t v = 0;
  return absl::SimpleAtoi(Tag(r, key), &v) ? v : 0;
}

absl::Status SetTags(Registry& reg, int64_t run, const std::vector<std::pair<std::string, std::string>>& tags) {
  registry::RunBatch b;
  b.tags = tags;
  return reg.LogBatch(run, b);
}

// The newest event id and drift report now (what a new trigger starts after).
absl::StatusOr<std::pair<int64_t, int64_t>> Horizon(Registry& reg) {
  HEPML_ASSIGN_OR_RETURN(auto events, reg.Events(0));
  int64_t last_event = events.empty() ? 0 : events.back().id;
  HEPML_ASSIGN_OR_RETURN(int64_t drift_exp, ExperimentId(reg, kDriftExperiment));
  HEPML_ASSIGN_OR_RETURN(auto drift, reg.SearchRuns({drift_exp}, 1));
  return std::make_pair(last_event, drift.empty() ? int64_t{0} : drift.front().id);
}

struct ParsedOn {
  std::string kind;  // dataset | alias | drift
  std::string name;  // dataset or model
  std::string alias;
};

absl::StatusOr<ParsedOn> ParseOn(const std::string& on) {
  ParsedOn p;
  auto colon = on.find(':');
  if (colon != std::string::npos) {
    p.kind = on.substr(0, colon);
    p.name = on.substr(colon + 1);
  }
  if (p.kind == "alias") {
    auto at = p.name.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == p.name.size()) {
      return absl::InvalidArgumentError(absl::StrCat("trigger '", on, "': expected alias:MODEL@ALIAS"));
    }
    p.alias = p.name.substr(at + 1);
    p.name = p.name.substr(0, at);
  }
  if ((p.kind != "dataset" && p.kind != "alias" && p.kind != "drift") || p.name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trigger '", on, "': expected dataset:NAME, alias:MODEL@ALIAS or drift:MODEL"));
  }
  return p;
}

}  // namespace

absl::StatusOr<Trigger> AddTrigger(Registry& reg, const std::string& on, const std::string& job_file) {
  HEPML_ASSIGN_OR_RETURN(ParsedOn p, ParseOn(on));
  std::string path = batch::Absolute(job_file);
  auto text = batch::ReadFile(path);
  if (!text) return absl::NotFoundError(absl::StrCat("job file ", job_file, ": cannot be read"));
  HEPML_ASSIGN_OR_RETURN(RetrainJob job, LoadRetrainJob(path));
  if (p.kind == "drift" && !job.drift_threshold) {
    return absl::InvalidArgumentError(
        absl::StrCat("trigger '", on, "': the job file ", job_file, " has no drift_threshold"));
  }
  if (p.kind == "alias" && p.name == job.model && p.alias == job.alias && job.policy != PromotePolicy::kNever) {
    return absl::InvalidArgumentError(absl::StrCat("trigger '", on, "': its job moves the alias it watches (",
                                                   job.model, "@", job.alias, "), which would retrain forever"));
  }
  HEPML_ASSIGN_OR_RETURN(auto horizon, Horizon(reg));
  HEPML_ASSIGN_OR_RETURN(int64_t exp, ExperimentId(reg, kTriggersExperiment));
  registry::RunStart start;
  start.name = absl::StrCat("trigger ", on);
  start.experiment_id = exp;
  HEPML_ASSIGN_OR_RETURN(int64_t id, reg.StartRun(start));
  HEPML_RETURN_IF_ERROR(SetTags(reg, id,
                                {{"hepml.trigger.on", on},
                                 {"hepml.trigger.job_file", path},
                                 {"hepml.trigger.job_yaml", *text},
                                 {"hepml.trigger.after_event", absl::StrCat(horizon.first)},
                                 {"hepml.trigger.after_drift_run", absl::StrCat(horizon.second)},
                                 {"hepml.trigger.drift_above", "0"}}));
  HEPML_RETURN_IF_ERROR(reg.EndRun(id, {}));
  HEPML_ASSIGN_OR_RETURN(RunInfo r, reg.GetRun(id));
  return Trigger{id, on, path, *text, r.start_ms};
}

absl::StatusOr<std::vector<Trigger>> ListTriggers(Registry& reg) {
  HEPML_ASSIGN_OR_RETURN(int64_t exp, ExperimentId(reg, kTriggersExperiment));
  HEPML_ASSIGN_OR_RETURN(auto runs, reg.SearchRuns({exp}, kMaxRuns));
  std::vector<Trigger> out;
  for (const auto& r : runs) {
    if (Tag(r, "hepml.trigger.removed") == "1") continue;
    out.push_back({r.id, Tag(r, "hepml.trigger.on"), Tag(r, "hepml.trigger.job_file"), Tag(r, "hepml.trigger.job_yaml"),
                   r.start_ms});
  }
  std::sort(out.begin(), out.end(), [](const Trigger& a, const Trigger& b) { return a.id < b.id; });
  return out;
}

absl::Status RemoveTrigger(Registry& reg, int64_t id) {
  HEPML_ASSIGN_OR_RETURN(auto triggers, ListTriggers(reg));
  for (const auto& t : triggers) {
    if (t.id == id) return reg.SetRunTag(id, "hepml.trigger.removed", "1");
  }
  return absl::NotFoundError(absl::StrCat("no trigger ", id, " (hepml jobs trigger list shows them)"));
}

absl::StatusOr<int64_t> ReportDrift(Registry& reg, const std::string& model, double value) {
  if (model.empty()) return absl::InvalidArgumentError("drift report: empty model name");
  HEPML_ASSIGN_OR_RETURN(int64_t exp, ExperimentId(reg, kDriftExperiment));
  registry::RunStart start;
  start.name = absl::StrCat("drift ", model);
  start.experiment_id = exp;
  HEPML_ASSIGN_OR_RETURN(int64_t id, reg.StartRun(start));
  registry::RunBatch b;
  b.tags = {{"hepml.drift.model", model}};
  b.metrics = {{"drift", 0, value, 0}};
  HEPML_RETURN_IF_ERROR(reg.LogBatch(id, b));
  HEPML_RETURN_IF_ERROR(reg.EndRun(id, {}));
  return id;
}

namespace {

// ---------------------------------------------------------------- firing

struct Cause {
  std::string text;
  int64_t event_id = 0;
  std::optional<registry::DatasetVersionRef> dataset;
  std::string key;  // "event:ID" or "drift:RUN": with the trigger id, what fires at most once
};

std::string Substitute(const std::string& command, const std::map<std::string, std::string>& values) {
  std::vector<std::pair<std::string, std::string>> repl;
  for (const auto& [k, v] : values) repl.push_back({"{" + k + "}", v});
  return absl::StrReplaceAll(command, repl);
}

bool Better(double candidate, double current, Direction d) {
  return d == Direction::kMaximize ? candidate >= current : candidate <= current;
}

Decision Fire(Registry& reg, const Trigger& trigger, const RetrainJob& job, const Cause& cause,
              const WatchOptions& options, absl::Status* registry_error) {
  Decision d;
  d.trigger_id = trigger.id;
  d.on = trigger.on;
  d.cause = cause.text;
  auto fail_registry = [&](absl::Status s) {
    *registry_error = s;
    d.decision = "failed";
    d.reason = std::string(s.message());
    return d;
  };
  auto exp = ExperimentId(reg, kRunsExperiment);
  if (!exp.ok()) return fail_registry(exp.status());
  registry::RunStart start;
  start.name = absl::StrCat("retrain ", job.model);
  start.experiment_id = *exp;
  start.params = {{"trigger", absl::StrCat(trigger.id)}, {"trigger_on", trigger.on}, {"cause", cause.text}};
  if (cause.dataset) start.inputs.push_back(*cause.dataset);
  auto run = reg.StartRun(start);
  if (!run.ok()) return fail_registry(run.status());
  d.run_id = *run;
  // Marks (trigger, cause) as taken before the job starts, so a watcher that
  // dies mid-job does not start it again for the same cause.
  if (absl::Status s = SetTags(reg, d.run_id, {{"hepml.trigger.id", absl::StrCat(trigger.id)},
                                               {"hepml.cause.key", cause.key}});
      !s.ok()) {
    return fail_registry(s);
  }
  auto started = reg.GetRun(d.run_id);
  d.start_ms = started.ok() ? started->start_ms : 0;

  std::string work_dir = absl::StrCat(job.work_root, "/", job.model, "-run", d.run_id);
  std::string out = absl::StrCat(work_dir, "/", job.output);
  JobSpec spec;
  spec.name = absl::StrCat("hepml-retrain-", job.model, "-", d.run_id);
  spec.work_dir = work_dir;
  spec.env = job.env;
  spec.resources = job.resources;
  spec.command = Substitute(job.command, {{"dataset", cause.dataset ? cause.dataset->dataset : ""},
                                          {"dataset_version", cause.dataset ? absl::StrCat(cause.dataset->version) : ""},
                                          {"out", out},
                                          {"work_dir", work_dir},
                                          {"model", job.model}});

  std::vector<std::pair<std::string, std::string>> tags = {
      {"hepml.trigger.id", absl::StrCat(trigger.id)}, {"hepml.trigger.on", trigger.on},
      {"hepml.cause", cause.text},                    {"hepml.event.id", absl::StrCat(cause.event_id)},
      {"hepml.job.work_dir", work_dir},               {"hepml.job.command", spec.command},
      {"hepml.metric", job.metric}};
  registry::RunEnd end;
  end.status = "failed";

  auto finish = [&]() {
    tags.push_back({"hepml.decision", d.decision});
    tags.push_back({"hepml.decision.reason", d.reason});
    tags.push_back({"hepml.job.state", d.job_state});
    tags.push_back({"hepml.job.exit_code", absl::StrCat(d.exit_code)});
    if (d.version) tags.push_back({"hepml.registered_version", absl::StrCat(*d.version)});
    absl::Status s = SetTags(reg, d.run_id, tags);
    if (s.ok()) s = reg.EndRun(d.run_id, end);
    if (!s.ok()) *registry_error = s;
    if (options.on_decision) options.on_decision(d);
    return d;
  };

  // Run the job.
  absl::StatusOr<std::unique_ptr<Executor>> executor =
      options.make_executor ? options.make_executor(job.executor)
                            : absl::StatusOr<std::unique_ptr<Executor>>(
                                  absl::FailedPreconditionError("no executor factory was given"));
  if (!executor.ok()) {
    d.decision = "failed";
    d.reason = absl::StrCat("no ", job.executor.kind, " executor: ", executor.status().message());
    return finish();
  }
  auto handle = (*executor)->Submit(spec);
  if (!handle.ok()) {
    d.decision = "failed";
    d.reason = absl::StrCat("the training job could not be submitted: ", handle.status().message());
    return finish();
  }
  tags.push_back({"hepml.job.handle", *handle});
  JobStatus st;
  int poll_errors = 0;
  for (;;) {
    auto polled = (*executor)->Poll(*handle);
    if (!polled.ok()) {
      if (++poll_errors >= 30) {
        d.decision = "failed";
        d.reason = absl::StrCat("the training job ", *handle, " cannot be polled: ", polled.status().message());
        d.job_state = "unknown";
        return finish();
      }
    } else {
      poll_errors = 0;
      st = *polled;
      if (st.state != JobState::kQueued && st.state != JobState::kRunning) break;
    }
    for (double slept = 0; slept < options.poll_interval_s; slept += 0.1) {
      if (options.should_stop && options.should_stop()) {
        absl::Status cancelled = (*executor)->Cancel(*handle, 10);
        d.decision = "failed";
        d.job_state = "cancelled";
        d.reason = absl::StrCat("the watcher was stopped while ", *handle, " ran; ",
                                cancelled.ok() ? "the job was cancelled"
                                               : absl::StrCat("cancelling it failed: ", cancelled.message()));
        return finish();
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(std::min(0.1, options.poll_interval_s)));
    }
  }
  d.job_state = JobStateName(st.state);
  d.exit_code = st.exit_code;
  if (st.cpu_s > 0) end.cpu_seconds = st.cpu_s;
  if (st.peak_rss_kb > 0) end.peak_memory_bytes = st.peak_rss_kb * 1024;

  std::map<std::string, double> metrics;
  std::optional<double> value =
      LastMetric(batch::ReadFile(work_dir + "/stdout.log").value_or(""), job.metric, &metrics);
  if (!metrics.empty()) {
    registry::RunBatch b;
    for (const auto& [k, v] : metrics) b.metrics.push_back({k, 0, v, 0});
    absl::Status s = reg.LogBatch(d.run_id, b);
    if (!s.ok()) return fail_registry(s);
  }
  d.metric = value;
  if (st.state != JobState::kSucceeded) {
    d.decision = "failed";
    d.reason = absl::StrCat("the training job ", d.job_state,
                            st.reason.empty() ? "" : absl::StrCat(": ", st.reason), "; nothing registered, ",
                            job.model, "@", job.alias, " left alone");
    return finish();
  }
  if (!value) {
    d.decision = "failed";
    d.reason = absl::StrCat("the training job printed no 'hepml-metric ", job.metric,
                            "=VALUE' line; nothing registered");
    return finish();
  }
  if (!std::filesystem::exists(out)) {
    d.decision = "failed";
    d.reason = absl::StrCat("the training job did not write its output ", out, "; nothing registered");
    return finish();
  }

  // Register the candidate.
  auto model = reg.GetModel(job.model);
  if (!model.ok() && model.status().code() == absl::StatusCode::kNotFound) {
    model = reg.CreateModel(job.model, "retrained by hepml jobs triggers");
  }
  if (!model.ok()) return fail_registry(model.status());
  registry::PushOptions push;
  push.metrics = metrics;
  push.source_run = d.run_id;
  if (cause.dataset) push.datasets.push_back(*cause.dataset);
  push.tags = {{"hepml.trigger.id", absl::StrCat(trigger.id)}, {"hepml.cause", cause.text}};
  auto version = reg.PushModelVersion(job.model, {out}, push);
  if (!version.ok()) {
    d.decision = "failed";
    d.reason = absl::StrCat("the output could not be registered: ", version.status().message());
    return finish();
  }
  d.version = version->version;
  end.status = "finished";

  // The policy.
  bool promote = false;
  std::string ref = absl::StrCat(job.model, "@", job.alias);
  auto current = reg.GetAlias(job.model, job.alias);
  switch (job.policy) {
    case PromotePolicy::kNever:
      d.reason = "policy never: registered only";
      break;
    case PromotePolicy::kAlways:
      promote = true;
      d.reason = "policy always";
      break;
    case PromotePolicy::kBetterOrEqual: {
      const char* cmp = job.direction == Direction::kMaximize ? ">=" : "<=";
      if (!current.ok() && current.status().code() != absl::StatusCode::kNotFound) {
        d.reason = absl::StrCat("cannot read ", ref, " to compare with: ", current.status().message(),
                                "; not promoted");
      } else if (!current.ok()) {
        promote = true;
        d.reason = absl::StrCat(ref, " did not exist");
      } else if (!current->metrics.count(job.metric)) {
        d.reason = absl::StrCat(ref, " (version ", current->version, ") has no metric ", job.metric,
                                " to compare with; not promoted");
      } else {
        double cur = current->metrics.at(job.metric);
        promote = Better(*value, cur, job.direction);
        d.reason = absl::StrCat(job.metric, " ", *value, promote ? " " : " not ", cmp, " ", cur, " of ", ref,
                                " (version ", current->version, ")");
      }
      break;
    }
  }
  if (promote) {
    absl::Status s = reg.SetAlias(job.model, job.alias, *d.version);
    if (!s.ok()) {
      d.decision = "registered";
      d.reason = absl::StrCat(d.reason, "; moving ", ref, " failed: ", s.message());
      return finish();
    }
    d.decision = "promoted";
    d.reason = absl::StrCat(d.reason, "; ", ref, " -> ", *d.version);
  } else {
    d.decision = "registered";
  }
  return finish();
}

struct TriggerState {
  Trigger trigger;
  ParsedOn on;
  absl::StatusOr<RetrainJob> job;
  int64_t after_event = 0;
  int64_t after_drift_run = 0;
  bool drift_above = false;
};

absl::StatusOr<int64_t> StateRun(Registry& reg) {
  HEPML_ASSIGN_OR_RETURN(int64_t exp, ExperimentId(reg, kStateExperiment));
  HEPML_ASSIGN_OR_RETURN(auto runs, reg.SearchRuns({exp}, kMaxRuns));
  int64_t id = 0;
  for (const auto& r : runs)
    if (r.name == "watch" && (id == 0 || r.id < id)) id = r.id;
  if (id != 0) return id;
  registry::RunStart start;
  start.name = "watch";
  start.experiment_id = exp;
  HEPML_ASSIGN_OR_RETURN(id, reg.StartRun(start));
  HEPML_RETURN_IF_ERROR(reg.EndRun(id, {}));
  return id;
}

// The failed decision of a trigger whose stored job file no longer parses.
Decision BadJobDecision(Registry& reg, const TriggerState& t, const Cause& cause, const WatchOptions& options,
                        absl::Status* registry_error) {
  Decision d;
  d.trigger_id = t.trigger.id;
  d.on = t.trigger.on;
  d.cause = cause.text;
  d.decision = "failed";
  d.reason = absl::StrCat("the trigger's job file no longer reads: ", t.job.status().message());
  // Recorded like any other firing, with no job behind it.
  absl::Status s = [&]() -> absl::Status {
    HEPML_ASSIGN_OR_RETURN(int64_t exp, ExperimentId(reg, kRunsExperiment));
    registry::RunStart start;
    start.name = "retrain (bad job file)";
    start.experiment_id = exp;
    HEPML_ASSIGN_OR_RETURN(d.run_id, reg.StartRun(start));
    HEPML_RETURN_IF_ERROR(SetTags(reg, d.run_id,
                                  {{"hepml.trigger.id", absl::StrCat(t.trigger.id)},
                                   {"hepml.trigger.on", t.trigger.on},
                                   {"hepml.cause", cause.text},
                                   {"hepml.cause.key", cause.key},
                                   {"hepml.event.id", absl::StrCat(cause.event_id)},
                                   {"hepml.decision", d.decision},
                                   {"hepml.decision.reason", d.reason}}));
    registry::RunEnd end;
    end.status = "failed";
    return reg.EndRun(d.run_id, end);
  }();
  if (!s.ok()) *registry_error = s;
  if (options.on_decision) options.on_decision(d);
  return d;
}

}  // namespace

absl::StatusOr<std::vector<Decision>> WatchOnce(Registry& reg, const WatchOptions& options) {
  HEPML_ASSIGN_OR_RETURN(int64_t state_run, StateRun(reg));
  HEPML_ASSIGN_OR_RETURN(RunInfo state, reg.GetRun(state_run));
  int64_t last_event = TagInt(state, "hepml.watch.last_event_id");
  int64_t last_drift = TagInt(state, "hepml.watch.last_drift_run");

  HEPML_ASSIGN_OR_RETURN(auto triggers, ListTriggers(reg));
  HEPML_ASSIGN_OR_RETURN(int64_t trig_exp, ExperimentId(reg, kTriggersExperiment));
  HEPML_ASSIGN_OR_RETURN(auto trigger_runs, reg.SearchRuns({trig_exp}, kMaxRuns));
  std::vector<TriggerState> ts;
  for (const auto& t : triggers) {
    TriggerState s{t, {}, absl::UnknownError("")};
    auto on = ParseOn(t.on);
    if (!on.ok()) continue;
    s.on = *on;
    s.job = ParseRetrainJob(t.job_yaml, t.job_file, std::filesystem::path(t.job_file).parent_path().string());
    for (const auto& r : trigger_runs) {
      if (r.id != t.id) continue;
      s.after_event = TagInt(r, "hepml.trigger.after_event");
      s.after_drift_run = TagInt(r, "hepml.trigger.after_drift_run");
      s.drift_above = Tag(r, "hepml.trigger.drift_above") == "1";
    }
    ts.push_back(std::move(s));
  }

  std::vector<Decision> decisions;
  absl::Status registry_error;
  // (trigger, cause) pairs already fired: a watcher that died between
  // starting a job and recording its position does not fire them again.
  std::set<std::pair<int64_t, std::string>> fired;
  {
    HEPML_ASSIGN_OR_RETURN(int64_t runs_exp, ExperimentId(reg, kRunsExperiment));
    HEPML_ASSIGN_OR_RETURN(auto runs, reg.SearchRuns({runs_exp}, kMaxRuns));
    for (const auto& r : runs) {
      if (!Tag(r, "hepml.cause.key").empty()) fired.insert({TagInt(r, "hepml.trigger.id"), Tag(r, "hepml.cause.key")});
    }
  }
  auto fire = [&](TriggerState& t, const Cause& cause) {
    if (!fired.insert({t.trigger.id, cause.key}).second) return;
    if (!t.job.ok()) {
      decisions.push_back(BadJobDecision(reg, t, cause, options, &registry_error));
      return;
    }
    Cause c = cause;
    if (!c.dataset && !t.job->dataset.empty()) {
      auto versions = reg.ListDatasetVersions(t.job->dataset);
      if (versions.ok() && !versions->empty()) {
        const auto& latest = *std::max_element(versions->begin(), versions->end(), [](const auto& a, const auto& b) {
          return a.version < b.version;
        });
        c.dataset = registry::DatasetVersionRef{t.job->dataset, latest.version};
      }
    }
    decisions.push_back(Fire(reg, t.trigger, *t.job, c, options, &registry_error));
  };

  // Registry events: new dataset versions and alias moves.
  HEPML_ASSIGN_OR_RETURN(auto events, reg.Events(last_event));
  for (const auto& e : events) {
    nlohmann::json payload = nlohmann::json::parse(e.payload_json, nullptr, false);
    if (payload.is_object()) {
      for (auto& t : ts) {
        if (e.id <= t.after_event) continue;
        if (t.on.kind == "dataset" && e.kind == "dataset_version.created" &&
            payload.value("dataset", std::string()) == t.on.name && payload["version"].is_number_integer()) {
          int64_t v = payload["version"].get<int64_t>();
          fire(t, {absl::StrCat("dataset ", t.on.name, "@", v), e.id, registry::DatasetVersionRef{t.on.name, v},
                   absl::StrCat("event:", e.id)});
        } else if (t.on.kind == "alias" && e.kind == "alias.moved" &&
                   payload.value("model", std::string()) == t.on.name &&
                   payload.value("alias", std::string()) == t.on.alias && payload["to"].is_number_integer()) {
          fire(t, {absl::StrCat("alias ", t.on.name, "@", t.on.alias, " -> ", payload["to"].get<int64_t>()), e.id,
                   std::nullopt, absl::StrCat("event:", e.id)});
        }
        if (!registry_error.ok()) return registry_error;
        if (options.should_stop && options.should_stop()) return decisions;
      }
    }
    HEPML_RETURN_IF_ERROR(reg.SetRunTag(state_run, "hepml.watch.last_event_id", absl::StrCat(e.id)));
  }

  // Drift reports, oldest first.
  HEPML_ASSIGN_OR_RETURN(int64_t drift_exp, ExperimentId(reg, kDriftExperiment));
  HEPML_ASSIGN_OR_RETURN(auto reports, reg.SearchRuns({drift_exp}, kMaxRuns));
  std::sort(reports.begin(), reports.end(), [](const RunInfo& a, const RunInfo& b) { return a.id < b.id; });
  for (const auto& r : reports) {
    if (r.id <= last_drift) continue;
    std::string model = Tag(r, "hepml.drift.model");
    std::optional<double> value;
    for (const auto& m : r.metrics)
      if (m.key == "drift") value = m.value;
    if (value) {
      for (auto& t : ts) {
        if (t.on.kind != "drift" || t.on.name != model || r.id <= t.after_drift_run) continue;
        double threshold = t.job.ok() && t.job->drift_threshold ? *t.job->drift_threshold : 0;
        bool above = *value >= threshold;
        if (above && !t.drift_above) {
          fire(t, {absl::StrCat("drift ", model, " ", *value, " >= ", threshold), 0, std::nullopt,
                   absl::StrCat("drift:", r.id)});
          if (!registry_error.ok()) return registry_error;
          if (options.should_stop && options.should_stop()) return decisions;
        }
        if (above != t.drift_above) {
          t.drift_above = above;
          HEPML_RETURN_IF_ERROR(reg.SetRunTag(t.trigger.id, "hepml.trigger.drift_above", above ? "1" : "0"));
        }
      }
    }
    HEPML_RETURN_IF_ERROR(reg.SetRunTag(state_run, "hepml.watch.last_drift_run", absl::StrCat(r.id)));
  }
  return decisions;
}

absl::StatusOr<std::vector<Decision>> History(Registry& reg, int64_t max_results) {
  HEPML_ASSIGN_OR_RETURN(int64_t exp, ExperimentId(reg, kRunsExperiment));
  HEPML_ASSIGN_OR_RETURN(auto runs, reg.SearchRuns({exp}, max_results));
  std::vector<Decision> out;
  for (const auto& r : runs) {
    Decision d;
    d.run_id = r.id;
    d.trigger_id = TagInt(r, "hepml.trigger.id");
    d.on = Tag(r, "hepml.trigger.on");
    d.cause = Tag(r, "hepml.cause");
    d.decision = Tag(r, "hepml.decision");
    d.reason = Tag(r, "hepml.decision.reason");
    d.job_state = Tag(r, "hepml.job.state");
    int code = -1;
    if (absl::SimpleAtoi(Tag(r, "hepml.job.exit_code"), &code)) d.exit_code = code;
    int64_t v = 0;
    if (absl::SimpleAtoi(Tag(r, "hepml.registered_version"), &v)) d.version = v;
    d.start_ms = r.start_ms;
    std::string objective = Tag(r, "hepml.metric");
    for (const auto& m : r.metrics)
      if (m.key == objective) d.metric = m.value;
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(), [](const Decision& a, const Decision& b) { return a.run_id > b.run_id; });
  return out;
}

}  // namespace hepml::jobs
