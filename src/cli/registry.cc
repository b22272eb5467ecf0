// `hepml registry`: the model, dataset and run registry from the shell.
//
//   hepml registry --registry DIR init
//   hepml registry model create|list|show ...
//   hepml registry push MODEL[@V] FILE.onnx [FILE...] [--param k=v] [--metric k=v] [--tag k=v]
//                       [--run ID] [--dataset NAME:V] [--code-version SHA]
//   hepml registry pull MODEL@VERSION|MODEL@ALIAS|MODEL@tag:TAG:RUN DEST
//   hepml registry alias set MODEL ALIAS VERSION | show MODEL [ALIAS] | history MODEL [ALIAS] | rm MODEL ALIAS
//   hepml registry iov add TAG MODEL@V --runs A-B [--times T1-T2] | list TAG
//   hepml registry resolve TAG RUN | resolve TAG --time UNIX_SECONDS
//   hepml registry globaltag create NAME | add GT TAG [--record R] | show GT | resolve GT RECORD RUN
//   hepml registry dataset add NAME FILES... [--schema JSON|@FILE] [--entries N] [--stats JSON|@FILE] [--run ID]
//                         | show NAME[@V]
//   hepml registry run start [--name N] [--param k=v] [--dataset NAME:V] [--model MODEL@V] | log ID ... | end ID ...
//                     | show ID | artifacts ID | get-artifact ID PATH DEST
//   hepml registry lineage MODEL@V [--depth N] [--max-nodes N] [--dot]
//   hepml registry lineage --downstream MODEL@V | DATASET@V | run:ID ...
//   hepml registry hook add EVENT COMMAND|URL | hook list | events [--after ID]
//   hepml registry fsck | gc [--grace SECONDS]
//   hepml registry serve [--host 127.0.0.1] [--port 8080] [--source-root DIR] [--max-body-bytes N]
//
// Every command takes --registry DIR (embedded: DIR/registry.db and
// DIR/blobs; also $HEPML_REGISTRY) or --metadata URI --blobs URI, before or
// after the subcommand. Exit 0 on success, 1 when the registry refuses or
// fails (one line on stderr says what and why), 2 for a bad command line.
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/registry_where.h"
#include "hepml/registry.h"
#include "nlohmann/json.hpp"
#include "registry/registry_json.h"
#include "registry/rest_api.h"
#include "serve/http/http_server.h"

namespace hepml::cli {
namespace {

using nlohmann::ordered_json;
using namespace hepml::registry;

constexpr const char* kCmd = "registry";

// A failure to report: exit code and message.
struct Fail {
  int code;
  std::string message;
};

// "k=v" pairs.
absl::StatusOr<std::map<std::string, std::string>> ParsePairs(const std::string& flag,
                                                              const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat(flag, " '", item, "': expected KEY=VALUE"));
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

absl::StatusOr<std::map<std::string, double>> ParseMetrics(const std::vector<std::string>& items) {
  auto pairs = ParsePairs("--metric", items);
  if (!pairs.ok()) return pairs.status();
  std::map<std::string, double> out;
  for (const auto& [k, v] : *pairs) {
    double d = 0;
    if (!absl::SimpleAtod(v, &d)) {
      return absl::InvalidArgumentError(absl::StrCat("--metric ", k, "=", v, ": the value is not a number"));
    }
    out[k] = d;
  }
  return out;
}

// "NAME:V" or "NAME@V".
absl::StatusOr<DatasetVersionRef> ParseDatasetRef(const std::string& s) {
  auto sep = s.find_last_of(":@");
  DatasetVersionRef ref;
  if (sep == std::string::npos || sep == 0 || !absl::SimpleAtoi(s.substr(sep + 1), &ref.version)) {
    return absl::InvalidArgumentError(absl::StrCat("dataset '", s, "': expected NAME:VERSION"));
  }
  ref.dataset = s.substr(0, sep);
  return ref;
}

// "MODEL@V" with a number.
absl::StatusOr<std::pair<std::string, int64_t>> ParseVersionRef(const std::string& what, const std::string& s) {
  auto at = s.find('@');
  int64_t v = 0;
  if (at == std::string::npos || at == 0 || !absl::SimpleAtoi(s.substr(at + 1), &v)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", s, "': expected NAME@VERSION (a number)"));
  }
  return std::make_pair(s.substr(0, at), v);
}

// "A-B" of two integers.
absl::StatusOr<std::pair<int64_t, int64_t>> ParseRange(const std::string& flag, const std::string& s) {
  std::vector<std::string> parts = absl::StrSplit(s, '-');
  int64_t a = 0, b = 0;
  if (parts.size() == 1 && absl::SimpleAtoi(parts[0], &a)) return std::make_pair(a, a);
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &a) || !absl::SimpleAtoi(parts[1], &b)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " '", s, "': expected FIRST-LAST (non-negative integers)"));
  }
  return std::make_pair(a, b);
}

// A JSON value given inline or as @FILE.
absl::StatusOr<std::string> JsonArg(const std::string& flag, const std::string& s) {
  if (s.empty()) return s;
  std::string text = s;
  if (s[0] == '@') {
    std::ifstream in(s.substr(1), std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat(flag, ": cannot read '", s.substr(1), "'"));
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  if (ordered_json::parse(text, nullptr, false).is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": not valid JSON"));
  }
  return text;
}

void PrintVersion(const ModelVersion& v) {
  std::cout << v.model << "@" << v.version;
  if (!v.aliases.empty()) std::cout << " (" << absl::StrJoin(v.aliases, ", ") << ")";
  std::cout << "\n  created " << Time(v.created_at_ms) << " by " << v.created_by << "\n";
  for (const auto& f : v.files) std::cout << "  file " << f.name << " " << f.size << " bytes sha256:" << f.sha256 << "\n";
  for (const auto& t : v.inputs) std::cout << "  input " << t.name << " " << t.type << "\n";
  for (const auto& t : v.outputs) std::cout << "  output " << t.name << " " << t.type << "\n";
  for (const auto& [k, val] : v.params) std::cout << "  param " << k << "=" << val << "\n";
  for (const auto& [k, val] : v.metrics) std::cout << "  metric " << k << "=" << val << "\n";
  for (const auto& [k, val] : v.tags) std::cout << "  tag " << k << "=" << val << "\n";
  if (v.source_run) std::cout << "  run " << *v.source_run << "\n";
  for (const auto& d : v.datasets) std::cout << "  dataset " << d.dataset << "@" << d.version << "\n";
  if (!v.code_version.empty()) std::cout << "  code " << v.code_version << "\n";
}

void PrintInterval(const Interval& iv) {
  std::cout << iv.model << "@" << iv.version << "  runs " << iv.range.first_run << "-" << iv.range.last_run;
  if (iv.range.first_time) std::cout << "  times " << *iv.range.first_time << "-" << *iv.range.last_time;
  std::cout << "  (tag " << iv.tag << ")\n";
}

// Everything the subcommands share: where the registry is, and the
// function that runs once parsing is done.
struct Context {
  Where where;
  bool json = false;
  bool create = false;  // init only
  int* exit_code = nullptr;
};

using Action = std::function<absl::Status(Registry&)>;

void Run(Context& ctx, const Action& action) {
  if (std::string problem = WhereProblem(ctx.where); !problem.empty()) {
    PrintError(kCmd, problem);
    *ctx.exit_code = kExitUsage;
    return;
  }
  auto reg = OpenFrom(ctx.where, ctx.create);
  if (!reg.ok()) {
    PrintError(kCmd, reg.status().message());
    *ctx.exit_code = kExitFailure;
    return;
  }
  absl::Status s = action(**reg);
  for (const HookFailure& f : (*reg)->last_hook_failures()) {
    PrintError(kCmd, absl::StrCat("warning: hook ", f.hook_id, " failed: ", f.message));
  }
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

}  // namespace

void AddRegistryCommand(CLI::App& app, int* exit_code) {
  auto ctx = std::make_shared<Context>();
  ctx->exit_code = exit_code;
  CLI::App* reg = app.add_subcommand("registry", "Models, datasets and runs: versions, aliases, run-range validity, lineage");
  reg->require_subcommand(1);
  reg->fallthrough();
  reg->add_option("--registry", ctx->where.dir, "Registry folder (DIR/registry.db, DIR/blobs)")->envname("HEPML_REGISTRY");
  reg->add_option("--metadata", ctx->where.metadata, "Metadata URI: sqlite:///PATH or postgresql://USER@HOST:PORT/DB");
  reg->add_option("--blobs", ctx->where.blobs, "Blob store URI: file:///PATH or root://HOST:PORT//PATH");
  reg->add_option("--hook-timeout", ctx->where.hook_timeout_s,
                  "Seconds a hook may run (command) or take to answer (URL) before it is killed and reported")
      ->check(CLI::PositiveNumber);
  reg->add_flag("--json", ctx->json, "Print JSON (show, list, resolve, lineage, run show, events)");

  // init
  Sub(reg, "init", "Create (or open and migrate) the registry")->callback([ctx] {
    ctx->create = true;
    Run(*ctx, [ctx](Registry& r) {
      std::cout << "registry ready: metadata " << r.metadata_uri() << ", blobs " << r.blob_uri() << "\n";
      return absl::OkStatus();
    });
  });

  // model create|list|show
  {
    CLI::App* model = Sub(reg, "model", "Create, list and show models");
    model->require_subcommand(1);
    auto name = std::make_shared<std::string>();
    auto desc = std::make_shared<std::string>();
    CLI::App* create = Sub(model, "create", "Create a model");
    create->add_option("name", *name, "Model name")->required();
    create->add_option("--description", *desc, "What the model is");
    create->callback([ctx, name, desc] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto m = r.CreateModel(*name, *desc);
        if (!m.ok()) return m.status();
        std::cout << "created model " << m->name << "\n";
        return absl::OkStatus();
      });
    });
    Sub(model, "list", "List models")->callback([ctx] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto models = r.ListModels();
        if (!models.ok()) return models.status();
        ordered_json j = ordered_json::array();
        for (const auto& m : *models) {
          if (ctx->json) {
            j.push_back({{"name", m.name}, {"description", m.description}, {"latest_version", m.latest_version},
                         {"created_at_ms", m.created_at_ms}});
          } else {
            std::cout << m.name << "  latest " << m.latest_version << "  " << m.description << "\n";
          }
        }
        if (ctx->json) std::cout << j.dump(2) << "\n";
        return absl::OkStatus();
      });
    });
    auto ref = std::make_shared<std::string>();
    CLI::App* show = Sub(model, "show", "Show a model's versions, or one version (MODEL@VERSION|ALIAS|tag:TAG:RUN)");
    show->add_option("model", *ref, "MODEL or a version reference")->required();
    show->callback([ctx, ref] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        if (ref->find('@') != std::string::npos) {
          auto v = r.ResolveRef(*ref);
          if (!v.ok()) return v.status();
          if (ctx->json) std::cout << VersionJson(*v).dump(2) << "\n";
          else PrintVersion(*v);
          return absl::OkStatus();
        }
        auto m = r.GetModel(*ref);
        if (!m.ok()) return m.status();
        auto versions = r.ListVersions(*ref);
        if (!versions.ok()) return versions.status();
        if (ctx->json) {
          ordered_json j = {{"name", m->name}, {"description", m->description}, {"latest_version", m->latest_version}};
          j["versions"] = ordered_json::array();
          for (const auto& v : *versions) j["versions"].push_back(VersionJson(v));
          std::cout << j.dump(2) << "\n";
          return absl::OkStatus();
        }
        std::cout << m->name << ": " << m->description << "\n";
        for (const auto& v : *versions) {
          std::cout << "  " << v.version << "  " << Time(v.created_at_ms) << "  " << v.created_by;
          if (!v.aliases.empty()) std::cout << "  (" << absl::StrJoin(v.aliases, ", ") << ")";
          std::cout << "\n";
        }
        return absl::OkStatus();
      });
    });
  }

  // push
  {
    struct PushArgs {
      std::string model;
      std::vector<std::string> files, params, metrics, tags, datasets;
      int64_t run = -1;
      std::string code_version;
    };
    auto a = std::make_shared<PushArgs>();
    CLI::App* push = Sub(reg, "push", "Store files and publish the model's next version");
    push->add_option("model", a->model, "MODEL (or MODEL@V to insist on version V)")->required();
    push->add_option("files", a->files, "FILE.onnx and any other files of the version")->required();
    push->add_option("--param", a->params, "Training parameter KEY=VALUE");
    push->add_option("--metric", a->metrics, "Metric KEY=NUMBER");
    push->add_option("--tag", a->tags, "Tag KEY=VALUE");
    push->add_option("--run", a->run, "The run that produced it");
    push->add_option("--dataset", a->datasets, "Dataset version NAME:V it was trained on");
    push->add_option("--code-version", a->code_version, "Git commit of the training code");
    push->callback([ctx, a] {
      PushOptions o;
      std::string model = a->model;
      auto parse = [&]() -> absl::Status {
        auto p = ParsePairs("--param", a->params);
        if (!p.ok()) return p.status();
        o.params = *p;
        auto t = ParsePairs("--tag", a->tags);
        if (!t.ok()) return t.status();
        o.tags = *t;
        auto m = ParseMetrics(a->metrics);
        if (!m.ok()) return m.status();
        o.metrics = *m;
        for (const auto& d : a->datasets) {
          auto ref = ParseDatasetRef(d);
          if (!ref.ok()) return ref.status();
          o.datasets.push_back(*ref);
        }
        if (a->run >= 0) o.source_run = a->run;
        o.code_version = a->code_version;
        if (auto at = model.find('@'); at != std::string::npos) {
          auto vr = ParseVersionRef("model", model);
          if (!vr.ok()) return vr.status();
          model = vr->first;
          o.version = vr->second;
        }
        return absl::OkStatus();
      };
      if (absl::Status s = parse(); !s.ok()) {
        PrintError(kCmd, s.message());
        *ctx->exit_code = kExitUsage;
        return;
      }
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto v = r.PushModelVersion(model, a->files, o);
        if (!v.ok()) return v.status();
        if (ctx->json) {
          std::cout << VersionJson(*v).dump(2) << "\n";
        } else {
          std::cout << "pushed " << v->model << "@" << v->version;
          for (const auto& f : v->files) std::cout << "  " << f.name << " sha256:" << f.sha256.substr(0, 12);
          std::cout << "\n";
        }
        return absl::OkStatus();
      });
    });
  }

  // pull
  {
    auto ref = std::make_shared<std::string>();
    auto dest = std::make_shared<std::string>();
    CLI::App* pull = Sub(reg, "pull", "Write a version's files (MODEL@VERSION|MODEL@ALIAS|MODEL@tag:TAG:RUN)");
    pull->add_option("ref", *ref, "Version reference")->required();
    pull->add_option("dest", *dest, "Destination file (one-file versions) or folder")->required();
    pull->callback([ctx, ref, dest] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto paths = r.Pull(*ref, *dest);
        if (!paths.ok()) return paths.status();
        for (const auto& p : *paths) std::cout << p << "\n";
        return absl::OkStatus();
      });
    });
  }

  // alias set|show|history|rm
  {
    CLI::App* alias = Sub(reg, "alias", "Named pointers to versions (production, staging, ...)");
    alias->require_subcommand(1);
    struct AliasArgs {
      std::string model, alias;
      int64_t version = 0;
    };
    auto a = std::make_shared<AliasArgs>();
    CLI::App* set = Sub(alias, "set", "Point ALIAS of MODEL at VERSION");
    set->add_option("model", a->model)->required();
    set->add_option("alias", a->alias)->required();
    set->add_option("version", a->version)->required();
    set->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        absl::Status s = r.SetAlias(a->model, a->alias, a->version);
        if (s.ok()) std::cout << a->model << "@" << a->alias << " -> " << a->version << "\n";
        return s;
      });
    });
    CLI::App* rm = Sub(alias, "rm", "Remove an alias");
    rm->add_option("model", a->model)->required();
    rm->add_option("alias", a->alias)->required();
    rm->callback([ctx, a] { Run(*ctx, [&](Registry& r) { return r.RemoveAlias(a->model, a->alias); }); });
    CLI::App* show = Sub(alias, "show", "Where a model's aliases point");
    show->add_option("model", a->model)->required();
    show->add_option("alias", a->alias);
    show->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        if (!a->alias.empty()) {
          auto v = r.GetAlias(a->model, a->alias);
          if (!v.ok()) return v.status();
          std::cout << a->model << "@" << a->alias << " -> " << v->version << "\n";
          return absl::OkStatus();
        }
        auto versions = r.ListVersions(a->model);
        if (!versions.ok()) return versions.status();
        for (const auto& v : *versions)
          for (const auto& al : v.aliases) std::cout << a->model << "@" << al << " -> " << v.version << "\n";
        return absl::OkStatus();
      });
    });
    CLI::App* hist = Sub(alias, "history", "Every move of a model's aliases: when, who, from, to");
    hist->add_option("model", a->model)->required();
    hist->add_option("alias", a->alias);
    hist->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto h = r.AliasHistory(a->model, a->alias);
        if (!h.ok()) return h.status();
        ordered_json j = ordered_json::array();
        for (const auto& m : *h) {
          auto opt = [](const std::optional<int64_t>& v) { return v ? ordered_json(*v) : ordered_json(nullptr); };
          if (ctx->json) {
            j.push_back({{"alias", m.alias}, {"from", opt(m.from_version)}, {"to", opt(m.to_version)},
                         {"by", m.moved_by}, {"at_ms", m.moved_at_ms}});
            continue;
          }
          std::cout << Time(m.moved_at_ms) << "  " << m.moved_by << "  " << m.alias << ": "
                    << (m.from_version ? std::to_string(*m.from_version) : "-") << " -> "
                    << (m.to_version ? std::to_string(*m.to_version) : "-") << "\n";
        }
        if (ctx->json) std::cout << j.dump(2) << "\n";
        return absl::OkStatus();
      });
    });
  }

  // iov add|list, resolve
  {
    CLI::App* iov = Sub(reg, "iov", "Intervals of validity: run ranges of a tag mapped to versions");
    iov->require_subcommand(1);
    struct IovArgs {
      std::string tag, ref, runs, times;
      int64_t run = 0, time = 0;
    };
    auto a = std::make_shared<IovArgs>();
    CLI::App* add = Sub(iov, "add", "Map runs FIRST-LAST of TAG to MODEL@V");
    add->add_option("tag", a->tag)->required();
    add->add_option("ref", a->ref, "MODEL@VERSION")->required();
    add->add_option("--runs", a->runs, "FIRST-LAST (inclusive)")->required();
    add->add_option("--times", a->times, "FIRST-LAST Unix seconds (optional)");
    add->callback([ctx, a] {
      IntervalSpec spec;
      std::pair<std::string, int64_t> ref;
      auto parse = [&]() -> absl::Status {
        auto vr = ParseVersionRef("model version", a->ref);
        if (!vr.ok()) return vr.status();
        ref = *vr;
        auto runs = ParseRange("--runs", a->runs);
        if (!runs.ok()) return runs.status();
        spec.first_run = runs->first;
        spec.last_run = runs->second;
        if (!a->times.empty()) {
          auto t = ParseRange("--times", a->times);
          if (!t.ok()) return t.status();
          spec.first_time = t->first;
          spec.last_time = t->second;
        }
        return absl::OkStatus();
      };
      if (absl::Status s = parse(); !s.ok()) {
        PrintError(kCmd, s.message());
        *ctx->exit_code = kExitUsage;
        return;
      }
      Run(*ctx, [&](Registry& r) -> absl::Status {
        absl::Status s = r.AddInterval(a->tag, ref.first, ref.second, spec);
        if (s.ok()) std::cout << a->tag << ": runs " << spec.first_run << "-" << spec.last_run << " -> " << a->ref << "\n";
        return s;
      });
    });
    CLI::App* list = Sub(iov, "list", "A tag's intervals");
    list->add_option("tag", a->tag)->required();
    list->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto ivs = r.ListIntervals(a->tag);
        if (!ivs.ok()) return ivs.status();
        ordered_json j = ordered_json::array();
        for (const auto& iv : *ivs) {
          if (ctx->json) j.push_back(IntervalJson(iv));
          else PrintInterval(iv);
        }
        if (ctx->json) std::cout << j.dump(2) << "\n";
        return absl::OkStatus();
      });
    });
    CLI::App* resolve = Sub(reg, "resolve", "The version TAG gives for RUN (or for --time T)");
    resolve->add_option("tag", a->tag)->required();
    auto* run_opt = resolve->add_option("run", a->run);
    auto* time_opt = resolve->add_option("--time", a->time, "Unix seconds: the interval whose time range covers T");
    run_opt->excludes(time_opt);
    resolve->callback([ctx, a, run_opt, time_opt] {
      if (run_opt->count() == 0 && time_opt->count() == 0) {
        PrintError(kCmd, "resolve needs a RUN or --time T");
        *ctx->exit_code = kExitUsage;
        return;
      }
      bool by_time = time_opt->count() > 0;
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto iv = by_time ? r.ResolveTime(a->tag, a->time) : r.Resolve(a->tag, a->run);
        if (!iv.ok()) return iv.status();
        if (ctx->json) std::cout << IntervalJson(*iv).dump(2) << "\n";
        else std::cout << iv->model << "@" << iv->version << "\n";
        return absl::OkStatus();
      });
    });
  }

  // globaltag create|add|show|resolve
  {
    CLI::App* gt = Sub(reg, "globaltag", "Global tags: a fixed set of tags under record names");
    gt->require_subcommand(1);
    struct GtArgs {
      std::string name, tag, record, description;
      int64_t run = 0;
    };
    auto a = std::make_shared<GtArgs>();
    CLI::App* create = Sub(gt, "create", "Create a global tag");
    create->add_option("name", a->name)->required();
    create->add_option("--description", a->description);
    create->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) { return r.CreateGlobalTag(a->name, a->description); });
    });
    CLI::App* add = Sub(gt, "add", "Pin TAG in the global tag (as --record, default the tag's name)");
    add->add_option("name", a->name)->required();
    add->add_option("tag", a->tag)->required();
    add->add_option("--record", a->record);
    add->callback([ctx, a] { Run(*ctx, [&](Registry& r) { return r.AddToGlobalTag(a->name, a->tag, a->record); }); });
    CLI::App* show = Sub(gt, "show", "A global tag's records");
    show->add_option("name", a->name)->required();
    show->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto entries = r.ListGlobalTag(a->name);
        if (!entries.ok()) return entries.status();
        for (const auto& e : *entries) std::cout << e.record << " -> " << e.tag << "\n";
        return absl::OkStatus();
      });
    });
    CLI::App* resolve = Sub(gt, "resolve", "The version a global tag's RECORD gives for RUN");
    resolve->add_option("name", a->name)->required();
    resolve->add_option("record", a->record)->required();
    resolve->add_option("run", a->run)->required();
    resolve->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto iv = r.Resolve(a->name, a->record, a->run);
        if (!iv.ok()) return iv.status();
        if (ctx->json) std::cout << IntervalJson(*iv).dump(2) << "\n";
        else std::cout << iv->model << "@" << iv->version << "\n";
        return absl::OkStatus();
      });
    });
  }

  // dataset add|show
  {
    CLI::App* ds = Sub(reg, "dataset", "Versioned datasets (file manifests, schema, entries, statistics)");
    ds->require_subcommand(1);
    struct DsArgs {
      std::string name, schema, stats, description;
      std::vector<std::string> files;
      int64_t entries = -1;
      int64_t run = -1;
    };
    auto a = std::make_shared<DsArgs>();
    CLI::App* add = Sub(ds, "add", "Store files as the dataset's next version");
    add->add_option("name", a->name)->required();
    add->add_option("files", a->files)->required();
    add->add_option("--schema", a->schema, "Schema JSON (inline or @FILE)");
    add->add_option("--entries", a->entries, "Number of entries");
    add->add_option("--stats", a->stats, "Statistics JSON (inline or @FILE)");
    add->add_option("--description", a->description);
    add->add_option("--run", a->run, "The run that produced this version (lineage)");
    add->callback([ctx, a] {
      DatasetOptions o;
      if (a->run >= 0) o.source_run = a->run;
      auto parse = [&]() -> absl::Status {
        auto schema = JsonArg("--schema", a->schema);
        if (!schema.ok()) return schema.status();
        auto stats = JsonArg("--stats", a->stats);
        if (!stats.ok()) return stats.status();
        o.schema_json = *schema;
        o.stats_json = *stats;
        if (a->entries >= 0) o.entries = a->entries;
        o.description = a->description;
        return absl::OkStatus();
      };
      if (absl::Status s = parse(); !s.ok()) {
        PrintError(kCmd, s.message());
        *ctx->exit_code = kExitUsage;
        return;
      }
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto v = r.AddDatasetVersion(a->name, a->files, o);
        if (!v.ok()) return v.status();
        std::cout << "added " << v->dataset << "@" << v->version << " (" << v->files.size() << " files)\n";
        return absl::OkStatus();
      });
    });
    CLI::App* show = Sub(ds, "show", "A dataset's versions, or one (NAME@V)");
    show->add_option("name", a->name)->required();
    show->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        std::vector<DatasetVersion> versions;
        if (a->name.find('@') != std::string::npos) {
          auto ref = ParseVersionRef("dataset", a->name);
          if (!ref.ok()) return ref.status();
          auto v = r.GetDatasetVersion(ref->first, ref->second);
          if (!v.ok()) return v.status();
          versions.push_back(*v);
        } else {
          auto all = r.ListDatasetVersions(a->name);
          if (!all.ok()) return all.status();
          versions = *all;
        }
        ordered_json j = ordered_json::array();
        for (const auto& v : versions) {
          if (ctx->json) {
            j.push_back(DatasetVersionJson(v));
            continue;
          }
          std::cout << v.dataset << "@" << v.version << "  " << Time(v.created_at_ms) << "  " << v.created_by;
          if (v.entries) std::cout << "  " << *v.entries << " entries";
          if (v.source_run) std::cout << "  made by run " << *v.source_run;
          std::cout << "\n";
          for (const auto& f : v.files) std::cout << "  file " << f.name << " " << f.size << " bytes sha256:" << f.sha256 << "\n";
        }
        if (ctx->json) std::cout << j.dump(2) << "\n";
        return absl::OkStatus();
      });
    });
  }

  // run start|log|end|show
  {
    CLI::App* run = Sub(reg, "run", "Training runs: parameters, metrics, artifacts, resources");
    run->require_subcommand(1);
    struct RunArgs {
      int64_t id = 0;
      std::string name, code_version, status = "finished";
      std::vector<std::string> params, metrics, datasets, models, artifacts;
      std::string path, dest;
      int64_t step = -1;
      double cpu = -1, gpu = -1;
      int64_t peak = -1;
    };
    auto a = std::make_shared<RunArgs>();
    CLI::App* start = Sub(run, "start", "Start a run; prints its id");
    start->add_option("--name", a->name);
    start->add_option("--param", a->params, "KEY=VALUE");
    start->add_option("--dataset", a->datasets, "Input dataset version NAME:V");
    start->add_option("--model", a->models, "Input model version MODEL@V (the base model of a fine-tuning run)");
    start->add_option("--code-version", a->code_version);
    start->callback([ctx, a] {
      RunStart rs;
      rs.name = a->name;
      rs.code_version = a->code_version;
      auto parse = [&]() -> absl::Status {
        auto p = ParsePairs("--param", a->params);
        if (!p.ok()) return p.status();
        rs.params = *p;
        for (const auto& d : a->datasets) {
          auto ref = ParseDatasetRef(d);
          if (!ref.ok()) return ref.status();
          rs.inputs.push_back(*ref);
        }
        for (const auto& m : a->models) {
          auto ref = ParseVersionRef("--model", m);
          if (!ref.ok()) return ref.status();
          rs.model_inputs.push_back({ref->first, ref->second});
        }
        return absl::OkStatus();
      };
      if (absl::Status s = parse(); !s.ok()) {
        PrintError(kCmd, s.message());
        *ctx->exit_code = kExitUsage;
        return;
      }
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto id = r.StartRun(rs);
        if (!id.ok()) return id.status();
        std::cout << *id << "\n";
        return absl::OkStatus();
      });
    });
    CLI::App* log = Sub(run, "log", "Log parameters, metrics (at --step, default the next) and artifacts");
    log->add_option("id", a->id)->required();
    log->add_option("--param", a->params, "KEY=VALUE");
    log->add_option("--metric", a->metrics, "KEY=NUMBER");
    log->add_option("--step", a->step, "Step of the metrics (default: one after the last logged)");
    log->add_option("--artifact", a->artifacts, "File to store with the run");
    log->callback([ctx, a] {
      std::map<std::string, std::string> params;
      std::map<std::string, double> metrics;
      auto parse = [&]() -> absl::Status {
        auto p = ParsePairs("--param", a->params);
        if (!p.ok()) return p.status();
        params = *p;
        auto m = ParseMetrics(a->metrics);
        if (!m.ok()) return m.status();
        metrics = *m;
        return absl::OkStatus();
      };
      if (absl::Status s = parse(); !s.ok()) {
        PrintError(kCmd, s.message());
        *ctx->exit_code = kExitUsage;
        return;
      }
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto info = r.GetRun(a->id);
        if (!info.ok()) return info.status();
        for (const auto& [k, v] : params)
          if (absl::Status s = r.LogParam(a->id, k, v); !s.ok()) return s;
        for (const auto& [k, v] : metrics) {
          int64_t step = a->step;
          if (step < 0) {
            step = 0;
            for (const auto& p : info->metrics)
              if (p.key == k) step = std::max(step, p.step + 1);
          }
          if (absl::Status s = r.LogMetric(a->id, k, v, step); !s.ok()) return s;
        }
        for (const auto& f : a->artifacts) {
          auto e = r.LogArtifact(a->id, f);
          if (!e.ok()) return e.status();
        }
        return absl::OkStatus();
      });
    });
    CLI::App* end = Sub(run, "end", "End a run with its status and resource use");
    end->add_option("id", a->id)->required();
    end->add_option("--status", a->status, "finished, failed or killed")->check(CLI::IsMember({"finished", "failed", "killed"}));
    end->add_option("--cpu-seconds", a->cpu);
    end->add_option("--gpu-seconds", a->gpu);
    end->add_option("--peak-memory", a->peak, "Bytes");
    end->callback([ctx, a] {
      RunEnd e;
      e.status = a->status;
      if (a->cpu >= 0) e.cpu_seconds = a->cpu;
      if (a->gpu >= 0) e.gpu_seconds = a->gpu;
      if (a->peak >= 0) e.peak_memory_bytes = a->peak;
      Run(*ctx, [&](Registry& r) { return r.EndRun(a->id, e); });
    });
    CLI::App* show = Sub(run, "show", "A run's record");
    show->add_option("id", a->id)->required();
    show->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto info = r.GetRun(a->id);
        if (!info.ok()) return info.status();
        ordered_json j = RunJson(*info);
        std::cout << j.dump(2) << "\n";
        return absl::OkStatus();
      });
    });
    CLI::App* artifacts = Sub(run, "artifacts", "A run's artifacts: path, size, sha256");
    artifacts->add_option("id", a->id)->required();
    artifacts->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto info = r.GetRun(a->id);
        if (!info.ok()) return info.status();
        if (ctx->json) {
          std::cout << FilesJson(info->artifacts).dump(2) << "\n";
          return absl::OkStatus();
        }
        for (const auto& f : info->artifacts) std::cout << f.name << "  " << f.size << "  sha256:" << f.sha256 << "\n";
        return absl::OkStatus();
      });
    });
    CLI::App* get = Sub(run, "get-artifact", "Write artifact PATH of a run to the file DEST");
    get->add_option("id", a->id)->required();
    get->add_option("path", a->path, "The artifact's path in the run")->required();
    get->add_option("dest", a->dest, "Destination file")->required();
    get->callback([ctx, a] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto f = r.GetArtifact(a->id, a->path, a->dest);
        if (!f.ok()) return f.status();
        std::cout << a->dest << "\n";
        return absl::OkStatus();
      });
    });
  }

  // lineage
  {
    auto depth = std::make_shared<int>(-1);
    auto max_nodes = std::make_shared<int64_t>(LineageOptions().max_nodes);
    auto dot = std::make_shared<bool>(false);
    auto ref = std::make_shared<std::string>();
    auto down = std::make_shared<bool>(false);
    CLI::App* lineage = Sub(reg, "lineage",
                            "Everything MODEL@V was made from (runs, datasets, base models, transitively), or"
                            " --downstream: everything made from a model version, dataset version or run, and the"
                            " aliases and IOV tags pointing at what was made");
    lineage->add_option("ref", *ref,
                        "MODEL@V; with --downstream also DATASET@V, run:ID, or model:NAME@V / dataset:NAME@V when a"
                        " model and a dataset share the name")
        ->required();
    lineage->add_flag("--downstream,--down", *down,
                      "Downstream: the runs that used REF, what they made, the runs that used that, ...");
    lineage->add_option("--depth", *depth, "Follow at most N edges from the start (default: all)")
        ->check(CLI::Range(0, 1000000));
    lineage->add_option("--max-nodes", *max_nodes, "Stop after N nodes (default 10000; the output says so)")
        ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
    lineage->add_flag("--dot", *dot, "Print a Graphviz digraph (dot -Tsvg)");
    lineage->callback([ctx, ref, down, depth, max_nodes, dot] {
      // The start: run:ID, model:NAME@V, dataset:NAME@V or NAME@V.
      enum class Start { kAny, kModel, kDataset, kRun } start = Start::kAny;
      std::string text = *ref;
      int64_t run_id = 0;
      absl::StatusOr<std::pair<std::string, int64_t>> vr = std::make_pair(std::string(), int64_t{0});
      if (absl::StartsWith(text, "run:")) {
        start = Start::kRun;
        if (!absl::SimpleAtoi(text.substr(4), &run_id) || run_id <= 0) {
          vr = absl::InvalidArgumentError(absl::StrCat("run '", text, "': expected run:ID (a positive integer)"));
        }
      } else {
        if (absl::StartsWith(text, "model:")) start = Start::kModel;
        if (absl::StartsWith(text, "dataset:")) start = Start::kDataset;
        if (start != Start::kAny) text = text.substr(text.find(':') + 1);
        vr = ParseVersionRef(start == Start::kDataset ? "dataset version" : "model version", text);
      }
      if (vr.ok() && !*down && (start == Start::kRun || start == Start::kDataset)) {
        vr = absl::InvalidArgumentError(
            absl::StrCat("lineage of '", *ref, "': upstream lineage starts at a model version; add --downstream"));
      }
      if (!vr.ok()) {
        PrintError(kCmd, vr.status().message());
        *ctx->exit_code = kExitUsage;
        return;
      }
      Run(*ctx, [&](Registry& r) -> absl::Status {
        LineageOptions lo;
        lo.max_depth = *depth;
        lo.max_nodes = *max_nodes;
        if (*down && start == Start::kAny) {
          // NAME@V: the model version or the dataset version of that name.
          bool model = r.GetModel(vr->first).ok();
          bool dataset = r.GetDatasetVersion(vr->first, vr->second).ok();
          if (model && dataset) {
            return absl::InvalidArgumentError(absl::StrCat("'", *ref, "' names both a model version and a dataset"
                                                           " version: write model:", *ref, " or dataset:", *ref));
          }
          start = model ? Start::kModel : Start::kDataset;
        }
        absl::StatusOr<Lineage> l;
        if (!*down) l = r.Upstream(vr->first, vr->second, lo);
        else if (start == Start::kRun) l = r.DownstreamOfRun(run_id, lo);
        else if (start == Start::kModel) l = r.DownstreamOfModel(vr->first, vr->second, lo);
        else l = r.Downstream(vr->first, vr->second, lo);
        if (!l.ok()) return l.status();
        if (l->truncated) {
          PrintError(kCmd, absl::StrCat("warning: lineage of ", *ref, " has more than ", *max_nodes,
                                        " nodes; showing the first ", l->nodes.size(), " (raise --max-nodes)"));
        }
        if (*dot) {
          std::cout << LineageDot(*l);
        } else if (ctx->json) {
          std::cout << LineageJson(*l).dump(2) << "\n";
        } else {
          for (const auto& e : l->edges) std::cout << e.from << " " << e.relation << " " << e.to << "\n";
          if (l->edges.empty()) std::cout << "(no lineage recorded for " << *ref << ")\n";
        }
        return absl::OkStatus();
      });
    });
  }

  // hook add|list, events
  {
    CLI::App* hook = Sub(reg, "hook", "Commands or HTTP URLs run after events commit");
    hook->require_subcommand(1);
    auto event = std::make_shared<std::string>();
    auto target = std::make_shared<std::string>();
    CLI::App* add = Sub(hook, "add", "Run COMMAND (event JSON on stdin) or POST to http://URL on EVENT");
    add->add_option("event", *event, "model_version.created, alias.moved, dataset_version.created or *")->required();
    add->add_option("target", *target, "Shell command or http:// URL")->required();
    add->callback([ctx, event, target] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto h = r.AddHook(*event, *target);
        if (!h.ok()) return h.status();
        std::cout << "hook " << h->id << "\n";
        return absl::OkStatus();
      });
    });
    Sub(hook, "list", "Registered hooks")->callback([ctx] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto hooks = r.ListHooks();
        if (!hooks.ok()) return hooks.status();
        for (const auto& h : *hooks)
          std::cout << h.id << "  " << h.event_kind << "  " << (h.url.empty() ? h.command : h.url) << "\n";
        return absl::OkStatus();
      });
    });
    auto after = std::make_shared<int64_t>(0);
    CLI::App* events = Sub(reg, "events", "Recorded events, oldest first");
    events->add_option("--after", *after, "Only events after this id");
    events->callback([ctx, after] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto ev = r.Events(*after);
        if (!ev.ok()) return ev.status();
        for (const auto& e : *ev) {
          std::cout << ordered_json({{"id", e.id}, {"kind", e.kind}, {"created_at_ms", e.created_at_ms},
                                     {"payload", ordered_json::parse(e.payload_json, nullptr, false)}})
                           .dump()
                    << "\n";
        }
        return absl::OkStatus();
      });
    });
  }

  // fsck, gc
  Sub(reg, "fsck", "Check every blob the metadata references, and every stored chunk")->callback([ctx] {
    Run(*ctx, [&](Registry& r) -> absl::Status {
      auto f = r.Fsck();
      if (!f.ok()) return f.status();
      for (const auto& p : f->problems) std::cout << "problem: " << p << "\n";
      std::cout << f->referenced << " referenced manifests, " << f->manifests_checked << " manifests and "
                << f->chunks_checked << " chunks checked, " << f->problems.size() << " problems\n";
      if (!f->ok()) return absl::DataLossError(absl::StrCat("fsck found ", f->problems.size(), " problems"));
      return absl::OkStatus();
    });
  });
  {
    auto grace = std::make_shared<int64_t>(3600);
    CLI::App* gc = Sub(reg, "gc", "Remove blobs no version, dataset or run references");
    gc->add_option("--grace", *grace, "Keep objects younger than this many seconds (default 3600)");
    gc->callback([ctx, grace] {
      Run(*ctx, [&](Registry& r) -> absl::Status {
        auto g = r.Gc(*grace);
        if (!g.ok()) return g.status();
        std::cout << g->live_manifests << " live manifests; removed " << g->manifests_removed << " manifests, "
                  << g->chunks_removed << " chunks, " << g->bytes_freed << " bytes\n";
        return absl::OkStatus();
      });
    });
  }

  // serve: the REST API until SIGTERM or SIGINT.
  {
    struct ServeArgs {
      std::string host = "127.0.0.1";
      int port = 8080;
      std::string source_root;
      uint64_t max_body_bytes = uint64_t{16} << 20;
    };
    auto args = std::make_shared<ServeArgs>();
    CLI::App* serve = Sub(reg, "serve", "Serve the registry's REST API (native /api/v1 and MLflow-compatible /api/2.0/mlflow)");
    serve->add_option("--host", args->host, "Address to listen on (default 127.0.0.1)");
    serve->add_option("--port", args->port, "Port (default 8080; 0: any free port, printed)")->check(CLI::Range(0, 65535));
    serve->add_option("--source-root", args->source_root,
                      "Folder under which MLflow model-versions/create may read a version's files (default: none)");
    serve->add_option("--max-body-bytes", args->max_body_bytes, "Largest request body accepted, else 413 (default 16 MiB)")
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
    serve->callback([ctx, args] {
      // Signals are taken by sigwait below: block them before any thread starts.
      sigset_t signals;
      sigemptyset(&signals);
      sigaddset(&signals, SIGTERM);
      sigaddset(&signals, SIGINT);
      pthread_sigmask(SIG_BLOCK, &signals, nullptr);
      signal(SIGPIPE, SIG_IGN);
      Run(*ctx, [&](Registry& r) -> absl::Status {
        std::string staging = (std::filesystem::temp_directory_path() / "hepml-registry-serve-XXXXXX").string();
        if (mkdtemp(staging.data()) == nullptr) {
          return absl::UnavailableError(absl::StrCat("cannot create a staging folder under ",
                                                     std::filesystem::temp_directory_path().string()));
        }
        hepml::registry::RestApiOptions options;
        options.staging_dir = staging;
        options.source_root = args->source_root;
        auto api = std::make_shared<hepml::registry::RestApi>(&r, options);
        hepml::serve::HttpServerOptions http_options;
        http_options.max_body_bytes = args->max_body_bytes;
        auto server = hepml::serve::HttpServer::Start(
            args->host, args->port,
            [api](const hepml::serve::HttpRequest& req, hepml::serve::HttpResponse& res,
                  hepml::serve::HttpFileReply* file) { api->Handle(req, res, file); },
            http_options);
        if (!server.ok()) {
          std::filesystem::remove_all(staging);
          return server.status();
        }
        std::cout << "serving the registry at http://" << args->host << ":" << (*server)->port() << " (metadata "
                  << r.metadata_uri() << ", blobs " << r.blob_uri() << ")" << std::endl;
        int sig = 0;
        sigwait(&signals, &sig);
        std::cerr << "hepml registry serve: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
                  << ", answering the requests in flight" << std::endl;
        (*server)->Shutdown();
        std::error_code ec;
        std::filesystem::remove_all(staging, ec);
        return absl::OkStatus();
      });
    });
  }
}

}  // namespace hepml::cli
