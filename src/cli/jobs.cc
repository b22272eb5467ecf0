// `hepml jobs`: retraining triggers, from the shell.
//
//   hepml jobs trigger add --on dataset:NAME|alias:MODEL@ALIAS|drift:MODEL --run JOB.yaml
//   hepml jobs trigger list | rm ID
//   hepml jobs watch [--once] [--interval SECONDS]
//   hepml jobs history [--limit N] [--json]
//   hepml jobs drift report MODEL VALUE
//
// Every command takes --registry DIR (also $HEPML_REGISTRY) or --metadata
// URI --blobs URI. Triggers, the watcher's position and every decision live
// in the registry (src/jobs/triggers.h). Exit 0 on success, 1 when the
// registry or a job file refuses (one line on stderr says what and why),
// 2 for a bad command line. `watch` exits 0 even when a training job
// failed: that is a recorded decision (see `history`).
#include <signal.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/registry_where.h"
#include "hepml/registry.h"
#include "hepml/status.h"
#include "jobs/batch_executors.h"
#include "jobs/triggers.h"
#include "nlohmann/json.hpp"

namespace hepml::cli {
namespace {

using nlohmann::ordered_json;
using registry::Registry;

constexpr const char* kCmd = "jobs";

struct Context {
  Where where;
  bool json = false;
  int* exit_code = nullptr;
};

void Run(Context& ctx, const std::function<absl::Status(Registry&)>& action) {
  std::string problem = WhereProblem(ctx.where);
  if (!problem.empty()) {
    PrintError(kCmd, problem);
    *ctx.exit_code = kExitUsage;
    return;
  }
  absl::StatusOr<std::unique_ptr<Registry>> reg = OpenFrom(ctx.where, /*create=*/false);
  if (!reg.ok()) {
    PrintError(kCmd, reg.status().message());
    *ctx.exit_code = kExitFailure;
    return;
  }
  absl::Status s = action(**reg);
  if (!s.ok()) {
    PrintError(kCmd, s.message());
    *ctx.exit_code = kExitFailure;
  }
}

CLI::App* Sub(CLI::App* parent, const std::string& name, const std::string& help) {
  CLI::App* c = parent->add_subcommand(name, help);
  c->fallthrough();
  return c;
}

void PrintDecision(const jobs::Decision& d) {
  std::cout << "run " << d.run_id << "  trigger " << d.trigger_id << " (" << d.on << ")  " << d.cause << ": "
            << d.decision;
  if (d.version) std::cout << " version " << *d.version;
  if (d.metric) std::cout << "  metric " << *d.metric;
  std::cout << "  job " << (d.job_state.empty() ? "-" : d.job_state);
  if (d.exit_code >= 0) std::cout << " (exit " << d.exit_code << ")";
  std::cout << "  " << d.reason << "\n";
}

ordered_json DecisionJson(const jobs::Decision& d) {
  ordered_json j = {{"run", d.run_id},         {"trigger", d.trigger_id}, {"on", d.on},
                    {"cause", d.cause},        {"decision", d.decision},  {"reason", d.reason},
                    {"job_state", d.job_state}, {"exit_code", d.exit_code}};
  j["metric"] = d.metric ? ordered_json(*d.metric) : ordered_json(nullptr);
  j["version"] = d.version ? ordered_json(*d.version) : ordered_json(nullptr);
  j["start_ms"] = d.start_ms;
  return j;
}

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

}  // namespace

void AddJobsCommand(CLI::App& app, int* exit_code) {
  auto ctx = std::make_shared<Context>();
  ctx->exit_code = exit_code;
  CLI::App* cmd = app.add_subcommand("jobs", "Retraining jobs: triggers on new data, alias moves and drift");
  cmd->require_subcommand(1);
  cmd->fallthrough();
  cmd->add_option("--registry", ctx->where.dir, "Registry folder (DIR/registry.db, DIR/blobs)")->envname("HEPML_REGISTRY");
  cmd->add_option("--metadata", ctx->where.metadata, "Metadata URI: sqlite:///PATH or postgresql://USER@HOST:PORT/DB");
  cmd->add_option("--blobs", ctx->where.blobs, "Blob store URI: file:///PATH or root://HOST:PORT//PATH");
  cmd->add_flag("--json", ctx->json, "Print JSON (trigger list, history, watch)");

  // trigger add|list
  {
    CLI::App* trigger = Sub(cmd, "trigger", "Add and list retraining triggers");
    trigger->require_subcommand(1);
    auto on = std::make_shared<std::string>();
    auto job = std::make_shared<std::string>();
    CLI::App* add = Sub(trigger, "add", "Run a job file when a dataset, an alias or a model's drift changes");
    add->add_option("--on", *on, "dataset:NAME | alias:MODEL@ALIAS | drift:MODEL")->required();
    add->add_option("--run", *job, "The job file (YAML) to run")->required();
    add->callback([ctx, on, job] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto t = jobs::AddTrigger(r, *on, *job);
        if (!t.ok()) return t.status();
        std::cout << "trigger " << t->id << ": on " << t->on << " run " << t->job_file << "\n";
        return absl::OkStatus();
      });
    });
    auto id = std::make_shared<int64_t>(0);
    CLI::App* rm = Sub(trigger, "rm", "Stop a trigger (its record and decisions stay)");
    rm->add_option("id", *id, "Trigger id (trigger list)")->required();
    rm->callback([ctx, id] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        HEPML_RETURN_IF_ERROR(jobs::RemoveTrigger(r, *id));
        std::cout << "trigger " << *id << " removed\n";
        return absl::OkStatus();
      });
    });
    Sub(trigger, "list", "List the triggers")->callback([ctx] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto triggers = jobs::ListTriggers(r);
        if (!triggers.ok()) return triggers.status();
        ordered_json j = ordered_json::array();
        for (const auto& t : *triggers) {
          if (ctx->json) {
            j.push_back({{"id", t.id}, {"on", t.on}, {"job_file", t.job_file}, {"created_at_ms", t.created_at_ms}});
          } else {
            std::cout << t.id << "  on " << t.on << "  run " << t.job_file << "  (added " << Time(t.created_at_ms)
                      << ")\n";
          }
        }
        if (ctx->json) std::cout << j.dump(2) << "\n";
        return absl::OkStatus();
      });
    });
  }

  // watch
  {
    auto once = std::make_shared<bool>(false);
    auto interval = std::make_shared<double>(30);
    auto poll = std::make_shared<double>(5);
    CLI::App* watch = Sub(cmd, "watch", "Evaluate the triggers against new registry events and drift reports");
    watch->add_flag("--once", *once, "Evaluate once and exit (else every --interval seconds until SIGINT/SIGTERM)");
    watch->add_option("--interval", *interval, "Seconds between evaluations")->check(CLI::PositiveNumber);
    watch->add_option("--poll", *poll, "Seconds between polls of a running training job")->check(CLI::PositiveNumber);
    watch->callback([ctx, once, interval, poll] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        jobs::WatchOptions o;
        o.make_executor = jobs::MakeExecutor;
        o.poll_interval_s = *poll;
        o.on_decision = [&](const jobs::Decision& d) {
          if (ctx->json) {
            std::cout << DecisionJson(d).dump() << std::endl;
          } else {
            PrintDecision(d);
            std::cout.flush();
          }
        };
        // SIGINT/SIGTERM: a running training job is cancelled and recorded,
        // then the watcher exits.
        o.should_stop = [] { return g_stop != 0; };
        signal(SIGINT, OnSignal);
        signal(SIGTERM, OnSignal);
        for (;;) {
          auto decisions = jobs::WatchOnce(r, o);
          if (!decisions.ok()) return decisions.status();
          if (*once || g_stop) {
            if (decisions->empty() && !ctx->json && !g_stop) std::cout << "nothing to do\n";
            return absl::OkStatus();
          }
          for (double waited = 0; waited < *interval && !g_stop; waited += 0.2) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
          }
          if (g_stop) return absl::OkStatus();
        }
      });
    });
  }

  // history
  {
    auto limit = std::make_shared<int64_t>(100);
    CLI::App* history = Sub(cmd, "history", "Every triggered job and its decision, newest first");
    history->add_option("--limit", *limit, "At most this many")->check(CLI::PositiveNumber);
    history->callback([ctx, limit] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto h = jobs::History(r, *limit);
        if (!h.ok()) return h.status();
        ordered_json j = ordered_json::array();
        for (const auto& d : *h) {
          if (ctx->json) {
            j.push_back(DecisionJson(d));
          } else {
            std::cout << Time(d.start_ms) << "  ";
            PrintDecision(d);
          }
        }
        if (ctx->json) std::cout << j.dump(2) << "\n";
        return absl::OkStatus();
      });
    });
  }

  // drift report
  {
    CLI::App* drift = Sub(cmd, "drift", "Drift measurements of served models");
    drift->require_subcommand(1);
    auto model = std::make_shared<std::string>();
    auto value = std::make_shared<std::string>();
    CLI::App* report = Sub(drift, "report", "Record one drift measurement of MODEL (as `hepml serve --drift-window` records them)");
    report->add_option("model", *model, "Model name")->required();
    report->add_option("value", *value, "The measured drift")->required();
    report->callback([ctx, model, value] {
      double v = 0;
      if (!absl::SimpleAtod(*value, &v)) {
        PrintError(kCmd, absl::StrCat("drift value '", *value, "' is not a number"));
        *ctx->exit_code = kExitUsage;
        return;
      }
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto id = jobs::ReportDrift(r, *model, v);
        if (!id.ok()) return id.status();
        std::cout << "drift of " << *model << ": " << v << " (run " << *id << ")\n";
        return absl::OkStatus();
      });
    });
  }
}

}  // namespace hepml::cli
