// `hepml hpo`: hyperparameter studies on this machine, Slurm or HTCondor,
// every trial recorded in the registry.
//
//   hepml hpo run STUDY.yaml [--registry DIR] [--executor local|slurm|htcondor] [--gpus 0,1] [--quiet]
//   hepml hpo status NAME [--registry DIR] [--json]
//   hepml hpo resume NAME [--registry DIR] [--executor ...] [--gpus ...] [--quiet]
//   hepml hpo best NAME [--registry DIR] [--json]
//
// The registry: --registry DIR; else, for `run`, the study file's `registry`
// (default: hepml-registry beside the study file); for the others
// $HEPML_REGISTRY, else ./hepml-registry.
//
// Ctrl-C or SIGTERM during `run`/`resume` cancels the running trials
// (SIGTERM to each trial's process group, SIGKILL after 10 s), records them
// as lost and exits 1; `hepml hpo resume NAME` runs their parameters again.
// A second Ctrl-C ends the runner at once; its trials then keep running and
// the next resume re-attaches them. Exit 0 when the trial budget was used up,
// 1 when the study stopped early (max_failures, wall_time, interrupted) or
// could not run, 2 for a bad command line.
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "hepml/registry.h"
#include "jobs/study.h"
#include "nlohmann/json.hpp"

namespace hepml::cli {
namespace {

using namespace hepml::jobs;
constexpr const char* kCmd = "hpo";

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

void InstallStopHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESETHAND;  // a second signal ends the runner
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

struct Flags {
  std::string registry;
  std::string executor;
  std::string gpus;
  bool json = false;
  bool quiet = false;
};

std::string DefaultRegistry(const Flags& f) {
  if (!f.registry.empty()) return f.registry;
  if (const char* env = getenv("HEPML_REGISTRY"); env != nullptr && *env != '\0') return env;
  return "hepml-registry";
}

std::string ParamsText(const ParamSet& params) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : params) parts.push_back(absl::StrCat(k, "=", FormatParam(v)));
  return absl::StrJoin(parts, " ");
}

nlohmann::ordered_json TrialJson(const TrialRecord& t) {
  nlohmann::ordered_json j;
  j["trial"] = t.trial.number;
  j["state"] = TrialStateName(t.trial.state);
  nlohmann::ordered_json p = nlohmann::ordered_json::object();
  for (const auto& [k, v] : t.trial.params) {
    if (const auto* d = std::get_if<double>(&v)) p[k] = *d;
    else if (const auto* i = std::get_if<int64_t>(&v)) p[k] = *i;
    else p[k] = std::get<std::string>(v);
  }
  j["params"] = p;
  j["value"] = t.trial.value ? nlohmann::ordered_json(*t.trial.value) : nlohmann::ordered_json(nullptr);
  j["wall_s"] = t.wall_s;
  j["cpu_s"] = t.cpu_s;
  j["peak_rss_kb"] = t.peak_rss_kb;
  j["exit_code"] = t.exit_code;
  j["gpus"] = t.gpus;
  j["reason"] = t.trial.fail_reason;
  nlohmann::ordered_json steps = nlohmann::ordered_json::object();
  for (const auto& [step, v] : t.trial.intermediate) steps[std::to_string(step)] = v;
  j["intermediate"] = steps;
  j["lost"] = t.lost;
  j["run_id"] = t.run_id;
  j["trial_dir"] = t.trial_dir;
  return j;
}

int Report(const absl::Status& s) {
  PrintError(kCmd, s.message());
  return kExitFailure;
}

int RunStudy(Study& study, const Flags& f) {
  InstallStopHandlers();
  const StudyConfig& c = study.config();
  if (!f.quiet) {
    std::cout << "study " << c.name << ": " << c.budget.trials << " trials, " << c.budget.parallel
              << " in parallel, sampler " << c.sampler.kind << ", pruner " << c.pruner.kind << "; trials in "
              << c.work_dir << std::endl;
  }
  auto summary = study.Run();
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  if (!summary.ok()) return Report(summary.status());
  std::cout << "study " << c.name << ": " << summary->complete << " complete, " << summary->pruned << " pruned, "
            << summary->failed << " failed";
  if (summary->lost > 0) std::cout << " (" << summary->lost << " lost to runner restarts, run again)";
  std::cout << std::endl;
  auto best = study.Best();
  if (best.ok()) {
    std::cout << "best: trial " << best->trial.number << " " << c.objective << "=" << *best->trial.value << " "
              << ParamsText(best->trial.params) << std::endl;
  }
  if (!summary->stopped.empty()) {
    PrintError(kCmd, absl::StrCat("study ", c.name, " stopped: ", summary->stopped, "; `hepml hpo resume ", c.name,
                                  "` continues it"));
    return kExitFailure;
  }
  return kExitOk;
}

StudyOptions MakeOptions(const Flags& f) {
  StudyOptions o;
  if (!f.executor.empty()) o.executor_kind = f.executor;
  if (!f.gpus.empty()) o.gpus = f.gpus;
  o.stop = &g_stop;
  if (!f.quiet) o.log = [](const std::string& line) { std::cout << line << std::endl; };
  return o;
}

int CmdRun(const std::string& file, const Flags& f) {
  auto config = LoadStudyFile(file);
  if (!config.ok()) return Report(config.status());
  if (!f.registry.empty()) {
    config->registry_dir = f.registry;
    config->registry_metadata.clear();
    config->registry_blobs.clear();
  }
  auto reg = OpenStudyRegistry(*config);
  if (!reg.ok()) return Report(reg.status());
  auto study = Study::Create(*config, reg->get(), MakeOptions(f));
  if (!study.ok()) return Report(study.status());
  return RunStudy(**study, f);
}

absl::StatusOr<std::unique_ptr<registry::Registry>> OpenExisting(const Flags& f) {
  std::string dir = DefaultRegistry(f);
  registry::RegistryOptions o;
  o.create_if_missing = false;
  auto reg = registry::Registry::OpenDir(dir, o);
  if (!reg.ok() && absl::IsNotFound(reg.status())) {
    return absl::NotFoundError(absl::StrCat("no registry at ", dir, " (give --registry DIR or set HEPML_REGISTRY)"));
  }
  return reg;
}

int CmdResume(const std::string& name, const Flags& f) {
  auto reg = OpenExisting(f);
  if (!reg.ok()) return Report(reg.status());
  auto study = Study::Open(name, reg->get(), MakeOptions(f));
  if (!study.ok()) return Report(study.status());
  return RunStudy(**study, f);
}

int CmdStatus(const std::string& name, const Flags& f) {
  auto reg = OpenExisting(f);
  if (!reg.ok()) return Report(reg.status());
  auto study = Study::Open(name, reg->get());
  if (!study.ok()) return Report(study.status());
  auto trials = (*study)->Trials();
  if (!trials.ok()) return Report(trials.status());
  const StudyConfig& c = (*study)->config();
  if (f.json) {
    nlohmann::ordered_json j;
    j["study"] = c.name;
    j["objective"] = c.objective;
    j["direction"] = c.direction == Direction::kMinimize ? "minimize" : "maximize";
    j["trials"] = nlohmann::ordered_json::array();
    for (const auto& t : *trials) j["trials"].push_back(TrialJson(t));
    std::cout << j.dump(2) << std::endl;
    return kExitOk;
  }
  std::map<std::string, int64_t> counts;
  std::cout << absl::StrFormat("%-6s %-9s %-14s %-9s %s\n", "trial", "state", c.objective.substr(0, 14), "wall_s",
                               "params");
  for (const auto& t : *trials) {
    std::string state = TrialStateName(t.trial.state);
    if (t.lost) state = "lost";
    ++counts[state];
    std::string value = t.trial.value ? absl::StrFormat("%.6g", *t.trial.value) : "-";
    std::string line = absl::StrFormat("%-6d %-9s %-14s %-9.1f %s", t.trial.number, state, value, t.wall_s,
                                       ParamsText(t.trial.params));
    if (t.trial.state == TrialState::kFailed && !t.trial.fail_reason.empty()) {
      absl::StrAppend(&line, "  [", t.trial.fail_reason.substr(0, 120), "]");
    }
    std::cout << line << "\n";
  }
  std::vector<std::string> parts;
  for (const auto& [k, v] : counts) parts.push_back(absl::StrCat(v, " ", k));
  std::cout << c.name << ": " << trials->size() << " trials (" << absl::StrJoin(parts, ", ") << "), budget "
            << c.budget.trials << std::endl;
  return kExitOk;
}

int CmdBest(const std::string& name, const Flags& f) {
  auto reg = OpenExisting(f);
  if (!reg.ok()) return Report(reg.status());
  auto study = Study::Open(name, reg->get());
  if (!study.ok()) return Report(study.status());
  auto best = (*study)->Best();
  if (!best.ok()) return Report(best.status());
  const StudyConfig& c = (*study)->config();
  if (f.json) {
    nlohmann::ordered_json j = TrialJson(*best);
    j["study"] = c.name;
    j["objective"] = c.objective;
    std::cout << j.dump(2) << std::endl;
    return kExitOk;
  }
  std::cout << "trial " << best->trial.number << ": " << c.objective << "=" << *best->trial.value << "\n";
  for (const auto& [k, v] : best->trial.params) std::cout << "  " << k << " = " << FormatParam(v) << "\n";
  std::cout << "  trial folder: " << best->trial_dir << "\n  registry run: " << best->run_id << std::endl;
  return kExitOk;
}

}  // namespace

void AddHpoCommand(CLI::App& app, int* exit_code) {
  CLI::App* hpo = app.add_subcommand("hpo", "Hyperparameter studies (local, Slurm, HTCondor), recorded in the registry");
  hpo->require_subcommand(1);
  hpo->footer(
      "Registry: --registry DIR; else, for run, the study file's `registry` (default: hepml-registry beside the "
      "study file); for status, resume and best, $HEPML_REGISTRY, else ./hepml-registry.");
  auto flags = std::make_shared<Flags>();
  auto add_registry = [flags](CLI::App* sub) {
    sub->add_option("--registry", flags->registry, "Registry folder (default: see hepml hpo --help)");
  };
  auto add_exec = [flags](CLI::App* sub) {
    sub->add_option("--executor", flags->executor, "Override the study's executor")
        ->check(CLI::IsMember({"local", "slurm", "htcondor"}));
    sub->add_option("--gpus", flags->gpus, "GPU ids for the local executor, e.g. 0,1");
    sub->add_flag("--quiet", flags->quiet, "Print only the summary");
  };
  auto file = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();

  CLI::App* run = hpo->add_subcommand("run", "Start a study from its YAML file and run it");
  run->add_option("STUDY", *file, "The study file (YAML)")->required();
  add_registry(run);
  add_exec(run);
  run->callback([=] { *exit_code = CmdRun(*file, *flags); });

  CLI::App* resume = hpo->add_subcommand("resume", "Continue a study: re-attach or re-run its unfinished trials");
  resume->add_option("NAME", *name, "The study's name")->required();
  add_registry(resume);
  add_exec(resume);
  resume->callback([=] { *exit_code = CmdResume(*name, *flags); });

  CLI::App* status = hpo->add_subcommand("status", "The trials of a study: state, value, wall time, parameters");
  status->add_option("NAME", *name, "The study's name")->required();
  add_registry(status);
  status->add_flag("--json", flags->json, "JSON instead of a table");
  status->callback([=] { *exit_code = CmdStatus(*name, *flags); });

  CLI::App* best = hpo->add_subcommand("best", "The best complete trial of a study");
  best->add_option("NAME", *name, "The study's name")->required();
  add_registry(best);
  best->add_flag("--json", flags->json, "JSON instead of text");
  best->callback([=] { *exit_code = CmdBest(*name, *flags); });
}

}  // namespace hepml::cli
